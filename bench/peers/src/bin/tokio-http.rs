//! tokio HTTP/1.1 "Hello, World!" server (comparison peer): current_thread
//! runtime (multi_thread with `--threads N`), keep-alive, answers every complete request head found in what has
//! been read so far with one write for the whole pipelined batch.

use sockloop_bench_peers::{count_http_requests, HTTP_RESPONSE};
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
            tokio::spawn(serve(sock));
        }
    })
}

async fn serve(mut sock: TcpStream) {
    let mut inbuf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        if inbuf.len() > 1 << 20 {
            return; // an unterminated head this long is not a benchmark client
        }
        match sock.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (n, used) = count_http_requests(&inbuf);
        if n == 0 {
            continue;
        }
        inbuf.drain(..used);
        out.clear();
        for _ in 0..n {
            out.extend_from_slice(HTTP_RESPONSE);
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}
