#!/usr/bin/env python3
"""RSS per idle connection, for bench/compare.sh (standard library only).

Reads the server's VmRSS (summed over PID and its child processes), opens N
TCP connections that send nothing, waits until the server holds N more file
descriptors (so it has accepted them all), lets it settle, reads VmRSS again.
With --touch-echo it then sends 64 bytes on every connection, reads the echo
back, and reads VmRSS a third time (memory a connection keeps after one round
trip). With --tls every connection first completes a TLS handshake (no
certificate check: the server is ours, on loopback), so what is measured is an
idle *established* TLS connection. Prints one JSON line. Only ever connects to the address it is given,
which compare.sh keeps on 127.0.0.1.
"""
import argparse
import json
import os
import resource
import socket
import ssl
import sys
import time


def pids(pid):
    out = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def rss_kb(pid):
    total = 0
    for p in pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def nfds(pid):
    n = 0
    for p in pids(pid):
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return n


def settle(pid, secs=0.3):
    """Waits until VmRSS stops moving (or 3 s)."""
    last, deadline = rss_kb(pid), time.time() + 3
    while time.time() < deadline:
        time.sleep(secs)
        cur = rss_kb(pid)
        if cur == last:
            return cur
        last = cur
    return last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True, help="HOST:PORT")
    ap.add_argument("--pid", type=int, required=True, help="server pid")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--touch-echo", action="store_true")
    ap.add_argument("--tls", action="store_true", help="handshake TLS on each connection")
    a = ap.parse_args()
    tls = None
    if a.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    host, port = a.addr.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.conns + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    before_fds = nfds(a.pid)
    before = settle(a.pid)
    socks = []
    t0 = time.time()
    try:
        for _ in range(a.conns):
            s = socket.create_connection((host, int(port)), timeout=10)
            if tls is not None:
                s = tls.wrap_socket(s, server_hostname="localhost")
            socks.append(s)
    except OSError as e:
        print(json.dumps({"error": f"connect #{len(socks)}: {e}"}))
        return 1
    deadline = time.time() + 30
    while nfds(a.pid) < before_fds + a.conns and time.time() < deadline:
        time.sleep(0.05)
    accepted = nfds(a.pid) - before_fds
    idle = settle(a.pid)
    res = {
        "conns": a.conns,
        "tls": a.tls,
        "accepted": accepted,
        "connect_s": round(time.time() - t0, 2),
        "rss_before_kb": before,
        "rss_idle_kb": idle,
        "idle_bytes_per_conn": round((idle - before) * 1024 / a.conns, 1),
    }
    if a.touch_echo:
        msg = b"x" * 64
        for s in socks:
            s.sendall(msg)
        bad = 0
        for s in socks:
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(len(msg) - len(got))
                if not chunk:
                    break
                got += chunk
            bad += got != msg
        touched = settle(a.pid)
        res["rss_touched_kb"] = touched
        res["touched_bytes_per_conn"] = round((touched - before) * 1024 / a.conns, 1)
        res["echo_errors"] = bad
    for s in socks:
        s.close()
    print(json.dumps(res))
    return 0 if accepted >= a.conns else 1


if __name__ == "__main__":
    sys.exit(main())
