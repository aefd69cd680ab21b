//! UDP echo server: every datagram is sent back to its sender.
//!
//! ```text
//! cargo run --release --example udp_echo -- --addr 127.0.0.1:7002
//! socat - UDP:127.0.0.1:7002
//! ```
//! Prints `listening on ADDR` on stderr once bound. Datagrams larger than
//! the 64 KiB receive buffer are detected (MSG_TRUNC) and dropped with a
//! log line instead of echoing a truncated copy.

use sockloop::net::UdpSocket;
use sockloop::poll::Interest;
use sockloop::EventLoop;
use sockloop::{SIGINT, SIGTERM};
use std::io::ErrorKind;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut addr: std::net::SocketAddr = "127.0.0.1:7002".parse().expect("default address");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(v)) => match v.parse() {
                Ok(a) => addr = a,
                Err(e) => {
                    eprintln!("--addr: {e}");
                    std::process::exit(2);
                }
            },
            _ => {
                eprintln!("usage: udp_echo [--addr HOST:PORT]");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = serve(addr) {
        eprintln!("udp_echo: {e}");
        std::process::exit(1);
    }
}

fn serve(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut ev = EventLoop::new()?;
    ev.shutdown_on_signals(&[SIGINT, SIGTERM])?;
    let socket = UdpSocket::bind(addr)?;
    eprintln!("listening on {}", socket.local_addr()?);
    let mut buf = vec![0u8; 65536];
    ev.watch(socket, Interest::READABLE, move |sock, ctx, _ready| {
        // Edge-triggered: drain every queued datagram.
        let mut errors = 0;
        loop {
            match sock.recv_from(&mut buf) {
                Ok(d) if d.truncated => {
                    log::warn!(
                        "dropped a {}-byte datagram from {} (truncated)",
                        d.full_len,
                        d.from
                    )
                }
                Ok(d) => match sock.send_to(&buf[..d.len], d.from) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        log::debug!("send buffer full: dropped a reply (UDP may drop)")
                    }
                    Err(e) => log::debug!("send_to {}: {e}", d.from),
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors from earlier sends surface here once each;
                    // anything persistent must not spin the loop.
                    log::debug!("recv_from: {e}");
                    errors += 1;
                    if errors > 16 {
                        break;
                    }
                }
            }
        }
        let _ = ctx;
    })?;
    ev.run()
}
