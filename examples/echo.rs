//! Echo server: every byte received is sent back.
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:7000 \
//!     --idle-timeout-secs 60 --max-conns 100000 [--nofile N] \
//!     [--threads N] [--balance reuseport|exclusive|handoff] [--pin]
//! ```
//! `--threads N` runs N loops on N threads (`sockloop-0`..), spreading
//! connections by `--balance`; `--pin` pins loop K to the K-th CPU.
//! `--nofile N` lowers the soft RLIMIT_NOFILE to N after the loop is
//! created (the reliability tests use it to exhaust descriptors).
//! Prints `listening on ADDR` on stderr once bound; logs via `RUST_LOG`;
//! SIGINT/SIGTERM stop it gracefully. A client that sends without reading
//! is throttled by backpressure: once its unsent echo passes the
//! high-water mark the server stops reading from it until it drains.

#[path = "common/cli.rs"]
mod cli;

use sockloop::{Buffer, Context, Handler};

struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if ctx.write(input.as_slice()).is_ok() {
            input.clear();
        }
    }
}

fn main() {
    let cli = cli::Cli::parse_cluster(
        "echo",
        "echo [--addr HOST:PORT] [--idle-timeout-secs N (0: never)] [--max-conns N] [--nofile N]",
        &["--addr", "--idle-timeout-secs", "--max-conns", "--nofile"],
    );
    let addr = cli.addr("--addr", "127.0.0.1:7000");
    let config = cli.server_config(60, 100_000);
    let nofile = match cli.get("--nofile", 0u64) {
        0 => None,
        n => Some(n),
    };
    cli::serve_cluster(
        &cli,
        "echo",
        addr,
        config,
        move |_ev| {
            if let Some(n) = nofile {
                // After the loops raised the soft limit to the hard one.
                match sockloop::sys::rlimit::nofile() {
                    Ok((_, hard)) => {
                        if let Err(e) = sockloop::sys::rlimit::set_nofile(n.min(hard), hard) {
                            eprintln!("echo: --nofile {n}: {e}");
                        }
                    }
                    Err(e) => eprintln!("echo: --nofile: {e}"),
                }
            }
        },
        |_loop| |_id| Box::new(Echo) as Box<dyn Handler>,
    )
}
