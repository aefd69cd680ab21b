//! tokio echo server (comparison peer): current_thread runtime
//! (multi_thread with N workers under `--threads N`), one task per
//! connection, read into a 64 KiB buffer (allocated on first readiness),
//! write_all what was read.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    // --threads N > 1: tokio's multi-threaded runtime with N workers.
    let (addr, threads) = sockloop_bench_peers::addr_and_threads_from_args();
    let rt = sockloop_bench_peers::tokio_runtime(threads)?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        sockloop_bench_peers::announce(listener.local_addr()?);
        loop {
            let (sock, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(echo(sock));
        }
    })
}

async fn echo(mut sock: TcpStream) {
    // The buffer is allocated once there is something to read, so an idle
    // connection costs only the task and its registration (bench/compare.sh
    // measures RSS of idle connections, then again after one round trip).
    // (tokio reports a new socket readable at once, so wait with a 1-byte peek.)
    match sock.peek(&mut [0u8; 1]).await {
        Ok(0) | Err(_) => return,
        Ok(_) => {}
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if sock.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
