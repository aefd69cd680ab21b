#!/usr/bin/env python3
"""Helpers for bench/compare.sh (python3, standard library only).

  benchlib.py parse-loadgen FILE          loadgen's one-line JSON summary
  benchlib.py parse-wrk FILE              wrk --latency output
  benchlib.py parse-redis FILE N          redis-benchmark -q --csv output
      each prints: requests rps p50_us p99_us p999_us errors client_cpu_s
      (space separated, "-" when the client does not report it)
  benchlib.py parse-perf FILE             perf stat -x, output -> "total name=count ..."
  benchlib.py parse-strace FILE           strace -c output   -> same form
  benchlib.py json-get FILE KEY...        fields of a one-line JSON object
  benchlib.py check SUITE PORT            does the server on 127.0.0.1:PORT answer
                                          right (echo / http / resp)? exit 0 if so
  benchlib.py summarize RESULTS_DIR       raw.csv (+ syscalls.csv, rss.csv,
                                          meta.txt) -> latest.md on stdout
"""
import csv
import json
import os
import re
import socket
import statistics
import sys

NA = "-"


def fmt(v):
    if v is None or v == "":
        return NA
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def last_json(path):
    """The last line of the file that parses as a JSON object."""
    obj = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    pass
    if obj is None:
        raise SystemExit(f"no JSON summary line in {path}")
    return obj


def parse_loadgen(path):
    j = last_json(path)
    get = lambda k: j.get(k)
    out = [get("requests"), get("rps"), get("p50_us"), get("p99_us"), get("p999_us"),
           get("errors"), get("server_cpu_s")]
    print(" ".join(fmt(v) for v in out))


def parse_loadgen_sum(path):
    """Several loadgen processes (one JSON line each) against one server
    over the same window: requests, rps and errors add up; p50 is the
    largest median and p99/p99.9 the largest of the processes' (an upper
    bound of the merged percentile); server CPU is the first process's
    reading (each read the same server over the same window)."""
    objs = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    objs.append(json.loads(line))
                except ValueError:
                    pass
    if not objs:
        raise SystemExit(f"no JSON summary line in {path}")
    total = lambda k: sum((o.get(k) or 0) for o in objs)
    worst = lambda k: max((o.get(k) or 0) for o in objs)
    out = [total("requests"), total("rps"), worst("p50_us"), worst("p99_us"), worst("p999_us"),
           total("errors"), objs[0].get("server_cpu_s")]
    print(" ".join(fmt(v) for v in out))


UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(s):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", s)
    if not m:
        return None
    return float(m.group(1)) * UNITS_US[m.group(2)]


def parse_wrk(path):
    text = open(path, errors="replace").read()
    req = re.search(r"^\s*(\d+) requests in ", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    pct = dict(re.findall(r"^\s*(50|75|90|99)%\s+(\S+)", text, re.M))
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    if not (req and rps):
        raise SystemExit(f"cannot parse wrk output in {path}")
    # With pipelining wrk's latency histogram is mostly zeros: report nothing then.
    p50 = to_us(pct["50"]) if "50" in pct else None
    p99 = to_us(pct["99"]) if "99" in pct else None
    p50, p99 = (p50 or None), (p99 or None)
    print(" ".join(fmt(v) for v in [int(req.group(1)), float(rps.group(1)), p50, p99, None, errors, None]))


def parse_redis(path, n):
    rows = []
    with open(path, errors="replace") as f:
        for row in csv.reader(f):
            if len(row) >= 7 and row[0] != "test":
                rows.append(row)
    if len(rows) != 1:
        raise SystemExit(f"expected one redis-benchmark CSV row in {path}, got {len(rows)}")
    r = rows[0]
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    rps, p50, p99 = float(r[1]), float(r[4]) * 1000, float(r[6]) * 1000
    print(" ".join(fmt(v) for v in [int(n), rps, p50, p99, None, 0, None]))


def parse_perf(path):
    counts = {}
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or line.startswith("#"):
                continue
            val, name = parts[0], parts[2]
            if not val.replace(".", "").isdigit():
                continue  # "<not counted>" / "<not supported>"
            counts[name] = int(float(val))
    total = counts.pop("raw_syscalls:sys_enter", None)
    if total is None:
        raise SystemExit(f"no raw_syscalls:sys_enter count in {path}")
    parts = [str(total)]
    for name, v in sorted(counts.items(), key=lambda kv: -kv[1]):
        if v:
            parts.append(f"{name.replace('syscalls:sys_enter_', '')}={v}")
    print(" ".join(parts))


def parse_strace(path):
    counts = {}
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            cols = line.split()
            # % time  seconds  usecs/call  calls  [errors]  syscall
            if len(cols) >= 5 and re.fullmatch(r"[\d.]+", cols[0]) and cols[3].isdigit():
                name = cols[-1]
                if name == "total":
                    total = int(cols[3])
                else:
                    counts[name] = int(cols[3])
    if total is None:
        total = sum(counts.values())
    parts = [str(total)] + [f"{k}={v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    print(" ".join(parts))


def json_get(path, keys):
    j = last_json(path)
    print(" ".join(fmt(j.get(k)) for k in keys))


# -------------------------------------------------------------------- check

HTTP_BODY = b"Hello, World!"
HTTP_EXACT = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" + HTTP_BODY


def check(suite, port):
    """One request on a fresh connection; exit status says if the answer is right."""
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        def read_until(done):
            buf = b""
            while not done(buf):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return buf

        if suite == "echo":
            msg = b"sockloop-bench-check\n" * 100
            s.sendall(msg)
            got = read_until(lambda b: len(b) >= len(msg))
            ok = got == msg
        elif suite == "http":
            # Two pipelined requests in one write: both must be answered.
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2)

            def two_responses(b):
                return b.count(HTTP_BODY) >= 2 and b.endswith(HTTP_BODY)
            got = read_until(two_responses)
            heads = got.split(HTTP_BODY)[:2]
            ok = (two_responses(got) and all(h.startswith(b"HTTP/1.1 200 OK\r\n") and
                  b"content-length: 13\r\n" in h.lower() for h in heads))
            exact = got == HTTP_EXACT * 2
            if ok and not exact:
                print("http check: right body, but headers differ from the reference bytes", file=sys.stderr)
        elif suite == "resp":
            s.sendall(b"*1\r\n$4\r\nPING\r\nPING\r\n")
            got = read_until(lambda b: len(b) >= 14)
            ok = got == b"+PONG\r\n+PONG\r\n"
        else:
            raise SystemExit(f"unknown suite {suite}")
    if not ok:
        print(f"{suite} check on port {port} got {got[:200]!r}", file=sys.stderr)
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------- summarize


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f_int(v):
    return NA if v is None else f"{v:,.0f}"


def f_dec(v, places=2):
    return NA if v is None else f"{v:.{places}f}"


def f_ratio(v):
    return NA if v is None else f"{v:.2f}×"


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_meta(path):
    meta = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


SUITE_TITLES = {
    "echo": "Echo (client: sockloop loadgen)",
    "http": "HTTP/1.1 \"Hello, World!\" (client: wrk -t1)",
    "resp": "RESP / Redis protocol (client: redis-benchmark -c 50)",
}


def medians(rows):
    """{(suite, scenario): {server: dict}} with medians over the ok rounds."""
    groups = {}
    order = {}
    for r in rows:
        key = (r["suite"], r["scenario"])
        order.setdefault(key, len(order))
        groups.setdefault(key, {}).setdefault(r["server"], []).append(r)
    out = {}
    for key in sorted(groups, key=lambda k: order[k]):
        out[key] = {}
        for server, rs in groups[key].items():
            ok = [r for r in rs if r["status"] == "ok"]
            out[key][server] = {
                "runs": len(rs),
                "ok": len(ok),
                "rps": med([num(r["rps"]) for r in ok]),
                "p99": med([num(r["p99_us"]) for r in ok]),
                "cpu": med([num(r["cpu_us_per_req"]) for r in ok]),
                "errors": sum(int(num(r["errors"]) or 0) for r in rs),
                "status": ",".join(sorted({r["status"] for r in rs if r["status"] != "ok"})),
            }
    return out


def summarize(results):
    meta = read_meta(os.path.join(results, "meta.txt"))
    base = meta.get("baseline", "sockloop")
    rows = read_csv(os.path.join(results, "raw.csv"))
    w = sys.stdout.write
    w("# sockloop benchmarks vs comparison peers\n\n")
    w(f"Generated by `bench/compare.sh{(' ' + meta['args']) if meta.get('args') else ''}` "
      f"on {meta.get('date', '?')}.\n\n")
    for k, label in [("host", "Host"), ("kernel", "Kernel"), ("cpu", "CPU"), ("rev", "sockloop revision"),
                     ("rustc", "rustc"), ("tools", "Tools")]:
        if meta.get(k):
            w(f"- {label}: {meta[k]}\n")
    w(f"- Rounds: {meta.get('rounds', '?')}, interleaved (every server once per round, in turn, "
      f"for each scenario); each figure is the median over rounds.\n")
    w(f"- Server pinned to CPU {meta.get('server_cpu', '?')}, client to CPU {meta.get('client_cpu', '?')} "
      f"(`taskset`). Server CPU time = utime+stime from /proc/PID/stat (server and its child "
      f"processes), delta over the measured window, divided by the requests the client completed "
      f"in it.\n")
    w(f"- Ratios are *server ÷ {base}*: req/s ratio above 1 means the peer served more requests per "
      f"second; CPU ratio above 1 means the peer spent more CPU per request.\n")
    if meta.get("mc_cpus"):
        w(f"- Multi-core suites (`echo2`, `http2`, scenarios `mc-*`): server *and* client allowed on "
          f"CPUs {meta['mc_cpus']} (the client shares the cores with the server: equal conditions "
          f"for every server); echo2 runs two loadgen processes, http2 runs `wrk -t2`.\n")
    if meta.get("skipped"):
        w(f"- **Skipped (binary missing):** {meta['skipped']}\n")
    if meta.get("smoke") == "1":
        w("- **Smoke run** (short runs, one round): checks the harness works, figures are not meaningful.\n")
    w("\n")

    by_scn = medians(rows)
    suite_seen = None
    for (suite, scen), servers in by_scn.items():
        if suite != suite_seen:
            w(f"## {SUITE_TITLES.get(suite, suite)}\n\n")
            suite_seen = suite
        args = next((r["client_args"] for r in rows if r["scenario"] == scen and r["suite"] == suite), "")
        w(f"### {scen}\n\n`{args}`\n\n")
        b = servers.get(base)
        w(f"| server | req/s | p99 µs | server CPU µs/req | req/s ÷ {base} | CPU/req ÷ {base} | ok runs | errors |\n")
        w("|---|---:|---:|---:|---:|---:|---:|---:|\n")
        for server, s in servers.items():
            r_rps = s["rps"] / b["rps"] if b and b["rps"] and s["rps"] else None
            r_cpu = s["cpu"] / b["cpu"] if b and b["cpu"] and s["cpu"] else None
            status = f" ({s['status']})" if s["status"] else ""
            w(f"| {server} | {f_int(s['rps'])} | {f_int(s['p99'])} | {f_dec(s['cpu'])} | {f_ratio(r_rps)} | "
              f"{f_ratio(r_cpu)} | {s['ok']}/{s['runs']}{status} | {s['errors']} |\n")
        w("\n")

    sc = read_csv(os.path.join(results, "syscalls.csv"))
    if sc:
        w("## Syscalls per request\n\n")
        w(f"Counted with {meta.get('syscall_method', '?')} on the server's pids over one fixed run per "
          f"server (not part of the timed rounds); per request = count ÷ requests the client completed.\n\n")
        w("| suite | server | workload | requests | syscalls/req | breakdown (per req) |\n|---|---|---|---:|---:|---|\n")
        for r in sc:
            reqs = num(r["requests"]) or 0
            per = (num(r["syscalls"]) or 0) / reqs if reqs else None
            parts = []
            for item in (r.get("breakdown") or "").split():
                name, _, cnt = item.partition("=")
                if reqs and num(cnt):
                    v = num(cnt) / reqs
                    if v >= 0.005:
                        parts.append(f"{name} {v:.2f}")
            st = "" if r["status"] == "ok" else f" ({r['status']})"
            w(f"| {r['suite']} | {r['server']}{st} | `{r['workload']}` | {f_int(num(r['requests']))} | "
              f"{f_dec(per)} | {', '.join(parts)} |\n")
        w("\n")

    rss = read_csv(os.path.join(results, "rss.csv"))
    if rss:
        w("## Memory per connection (echo servers)\n\n")
        w("VmRSS of the server (with children) before and after opening N connections that send nothing, "
          "then after one 64-byte echo round trip on each. Kernel socket memory is not in RSS.\n\n")
        w("| server | conns | RSS before KiB | RSS idle KiB | bytes/idle conn | bytes/conn after 1 round trip |\n"
          "|---|---:|---:|---:|---:|---:|\n")
        for r in rss:
            st = "" if r["status"] == "ok" else f" ({r['status']})"
            w(f"| {r['server']}{st} | {r['conns']} | {r['rss_before_kb']} | {r['rss_idle_kb']} | "
              f"{r['idle_bytes_per_conn']} | {r['touched_bytes_per_conn']} |\n")
        w("\n")
    w("Raw data: `raw.csv` (one row per run), `syscalls.csv`, `rss.csv`; chart: `ratios.svg` "
      "(`python3 bench/chart.py`).\n")


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "parse-loadgen":
        parse_loadgen(args[0])
    elif cmd == "parse-loadgen-sum":
        parse_loadgen_sum(args[0])
    elif cmd == "parse-wrk":
        parse_wrk(args[0])
    elif cmd == "parse-redis":
        parse_redis(args[0], args[1])
    elif cmd == "parse-perf":
        parse_perf(args[0])
    elif cmd == "parse-strace":
        parse_strace(args[0])
    elif cmd == "json-get":
        json_get(args[0], args[1:])
    elif cmd == "check":
        try:
            check(args[0], args[1])
        except OSError as e:
            raise SystemExit(f"{args[0]} check on port {args[1]}: {e}")
    elif cmd == "summarize":
        summarize(args[0])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
