#!/usr/bin/env bash
# bench/instructions.sh — user-space instructions (callgrind) and system
# calls (perf tracepoints, or strace -c) per request, for sockloop's echo and
# http examples and their peers. Exact and repeatable where bench/compare.sh's
# CPU times are noisy.
#
# Usage: bench/instructions.sh [--build] [--only NAME[,NAME...]] [--no-syscalls]
#   --build        build sockloop's examples and the peers first
#   --only LIST    servers to measure (default: all): sockloop-echo,
#                  sockloop-echo-2loops, sockloop-echo-4loops, mio-echo,
#                  c-echo, tokio-echo, sockloop-http, sockloop-http-2loops,
#                  sockloop-http-4loops, mio-http, mio-httparse, c-http,
#                  tokio-http (the -Nloops rows run the example with
#                  --threads N: what more loops add per request, exactly,
#                  where CPU time on 2 shared cores cannot tell)
#   --no-syscalls  skip the syscall counts
# Environment: ECHO_N1 [2000] ECHO_N2 [12000] round trips; HTTP_N1 [20000]
# HTTP_N2 [100000] requests; HTTP_CONNS [10]; HTTP_DEPTH [16]; BASE_PORT
# [24100]; RESULTS [bench/results/instructions.md].
#
# How it counts. Each server runs twice under `valgrind --tool=callgrind`,
# once serving N1 and once N2 requests from the same client; a figure is
# (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up, accept, shutdown and the
# client's connection set-up cancel and what is left is the per-request
# cost (Ir = every user-space instruction of the process: our code, std,
# libc, the vDSO; kernel work is not counted).
# * echo: one connection, a 64-byte message, the next sent when its echo is
#   back (a Python client: one round trip at a time, deterministic).
# * http: `h2load --h1 -c HTTP_CONNS -m HTTP_DEPTH -n N` (GET /, pipelined
#   HTTP_DEPTH deep on each of HTTP_CONNS connections). Under valgrind the
#   server is the bottleneck, so its reads find full pipelines: the
#   per-request figure is the pipelined one. Requests per read still vary a
#   little with timing (about ±1 %).
# Syscalls: the same two client runs against one server started without
# valgrind, counted with `perf stat -e raw_syscalls:sys_enter` attached for
# each run (strace -c -f if perf cannot), difference ÷ (N2 - N1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
PEERS=$BENCH/peers/target/release
EX=${SOCKLOOP_EXAMPLES:-$ROOT/target/release/examples}
ECHO_N1=${ECHO_N1:-2000}
ECHO_N2=${ECHO_N2:-12000}
HTTP_N1=${HTTP_N1:-20000}
HTTP_N2=${HTTP_N2:-100000}
HTTP_CONNS=${HTTP_CONNS:-10}
HTTP_DEPTH=${HTTP_DEPTH:-16}
PORT=${BASE_PORT:-24100}
RESULTS=${RESULTS:-$BENCH/results/instructions.md}
BUILD=0
SYSCALLS=1
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=1 ;;
        --only) ONLY=$2; shift ;;
        --only=*) ONLY=${1#*=} ;;
        --no-syscalls) SYSCALLS=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "instructions.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# "name|suite|command" ({ADDR} is filled in).
SERVERS=(
    "sockloop-echo|echo|$EX/echo --addr {ADDR}"
    "sockloop-echo-2loops|echo|$EX/echo --addr {ADDR} --threads 2"
    "sockloop-echo-4loops|echo|$EX/echo --addr {ADDR} --threads 4"
    "mio-echo|echo|$PEERS/mio-echo --addr {ADDR}"
    "c-echo|echo|$PEERS/c-echo --addr {ADDR}"
    "tokio-echo|echo|$PEERS/tokio-echo --addr {ADDR}"
    "sockloop-http|http|$EX/http --addr {ADDR}"
    "sockloop-http-2loops|http|$EX/http --addr {ADDR} --threads 2"
    "sockloop-http-4loops|http|$EX/http --addr {ADDR} --threads 4"
    "mio-http|http|$PEERS/mio-http --addr {ADDR}"
    "mio-httparse|http|$PEERS/mio-httparse --addr {ADDR}"
    "c-http|http|$PEERS/c-http --addr {ADDR}"
    "tokio-http|http|$PEERS/tokio-http --addr {ADDR}"
)

log() { printf '[instructions %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for tool in valgrind python3 ss; do
    command -v "$tool" >/dev/null || { echo "instructions.sh: $tool not found (bench/install-deps.sh)" >&2; exit 1; }
done

if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release --example echo --example http -j"${JOBS:-1}")
    (cd "$BENCH/peers" && cargo build --release -j"${JOBS:-1}")
    gcc -O2 -Wall -o "$PEERS/c-echo" "$BENCH/peers/c-echo.c"
    gcc -O2 -Wall -o "$PEERS/c-http" "$BENCH/peers/c-http.c"
fi

TMP=$(mktemp -d /tmp/sockloop-instructions.XXXXXX)
SPID=""
PERF_PID=""
cleanup() {
    [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null || true
    [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
next_port() {
    PORT=$((PORT + 1))
    while port_listening "$PORT"; do PORT=$((PORT + 1)); done
}

start() { # log command... -> SPID, waits until the port listens (valgrind is slow to start)
    local logf=$1 i
    shift
    "$@" >"$logf" 2>&1 &
    SPID=$!
    for i in $(seq 1 600); do
        port_listening "$PORT" && return 0
        kill -0 "$SPID" 2>/dev/null || { echo "server exited; log:" >&2; cat "$logf" >&2; SPID=""; return 1; }
        sleep 0.05
    done
    echo "server did not listen on $PORT in 30 s" >&2
    return 1
}

stop() { # SIGTERM, then wait (callgrind writes its profile at exit)
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}

echo_client() { # port n
    python3 - "$1" "$2" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
msg = bytes(range(64))
s = socket.create_connection(("127.0.0.1", port), timeout=60)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(n):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            sys.exit("echo server closed early")
        got += chunk
    if got != msg:
        sys.exit("wrong echo")
s.close()
PY
}

http_client() { # port n
    local out
    out=$(h2load --h1 -n "$2" -c "$HTTP_CONNS" -m "$HTTP_DEPTH" "http://127.0.0.1:$1/" 2>&1) || {
        echo "$out" >&2; return 1; }
    grep -q "$2 succeeded, 0 failed" <<<"$out" || { echo "$out" >&2; return 1; }
}

client() { # suite port n
    if [ "$1" = echo ]; then echo_client "$2" "$3"; else http_client "$2" "$3"; fi
}

n_of() { # suite which(1|2)
    if [ "$1" = echo ]; then
        [ "$2" = 1 ] && echo "$ECHO_N1" || echo "$ECHO_N2"
    else
        [ "$2" = 1 ] && echo "$HTTP_N1" || echo "$HTTP_N2"
    fi
}

ir_of_run() { # name suite cmd n -> total Ir
    local name=$1 suite=$2 cmd=$3 n=$4 out
    next_port
    out=$TMP/$name.$n.callgrind
    # shellcheck disable=SC2086
    start "$TMP/$name.$n.log" valgrind --tool=callgrind --callgrind-out-file="$out" \
        ${cmd//\{ADDR\}/127.0.0.1:$PORT} || return 1
    client "$suite" "$PORT" "$n" || { stop; return 1; }
    stop
    # "summary: N" (or "totals: N") is the whole run's Ir.
    sed -n 's/^\(summary\|totals\): \([0-9]*\).*/\2/p' "$out" | head -1
}

perf_events() {
    local ev=raw_syscalls:sys_enter s list
    list=$(perf list 'syscalls:sys_enter_*' 2>/dev/null || true)
    for s in read recvfrom write sendto writev epoll_wait epoll_pwait epoll_ctl; do
        grep -q "syscalls:sys_enter_$s " <<<"$list" && ev="$ev,syscalls:sys_enter_$s"
    done
    echo "$ev"
}

SYS_METHOD=none
if [ "$SYSCALLS" = 1 ]; then
    if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -o /dev/null -- true >/dev/null 2>&1; then
        SYS_METHOD=perf
    elif command -v strace >/dev/null; then
        SYS_METHOD=strace
    fi
fi

count_syscalls() { # suite n file -> counts the server's syscalls during one client run into file
    local suite=$1 n=$2 f=$3
    if [ "$SYS_METHOD" = perf ]; then
        perf stat -x, -e "$(perf_events)" -p "$SPID" -o "$f" 2>/dev/null &
    else
        strace -c -f -p "$SPID" -o "$f" 2>/dev/null &
    fi
    PERF_PID=$!
    sleep 0.5 # attach
    client "$suite" "$PORT" "$n" || { kill -INT "$PERF_PID" 2>/dev/null; PERF_PID=""; return 1; }
    sleep 0.2 # the server's last calls after the client's last read
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
}

syscalls_of() { # name suite cmd -> "per_req breakdown"
    local name=$1 suite=$2 cmd=$3 n1 n2
    n1=$(n_of "$suite" 1); n2=$(n_of "$suite" 2)
    next_port
    # shellcheck disable=SC2086
    start "$TMP/$name.sys.log" ${cmd//\{ADDR\}/127.0.0.1:$PORT} || return 1
    count_syscalls "$suite" "$n1" "$TMP/$name.sys1" || { stop; return 1; }
    count_syscalls "$suite" "$n2" "$TMP/$name.sys2" || { stop; return 1; }
    stop
    python3 - "$SYS_METHOD" "$TMP/$name.sys1" "$TMP/$name.sys2" "$n1" "$n2" <<'PY'
import sys, re
method, f1, f2, n1, n2 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def counts(path):
    c = {}
    for line in open(path):
        if method == "perf":
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                ev = parts[2]
                name = "total" if ev == "raw_syscalls:sys_enter" else ev.replace("syscalls:sys_enter_", "")
                c[name] = c.get(name, 0) + int(float(parts[0]))
        else:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m:
                c[m.group(2)] = c.get(m.group(2), 0) + int(m.group(1))
                c["total"] = c.get("total", 0) + int(m.group(1))
    return c
a, b = counts(f1), counts(f2)
d = n2 - n1
per = {k: (b.get(k, 0) - a.get(k, 0)) / d for k in set(a) | set(b)}
parts = [f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if k != "total" and v >= 0.005]
print(f"{per.get('total', 0):.2f}", "; ".join(parts) or "-")
PY
}

ROWS=()
for entry in "${SERVERS[@]}"; do
    IFS='|' read -r name suite cmd <<<"$entry"
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then continue; fi
    bin=${cmd%% *}
    if [ ! -x "$bin" ]; then
        log "SKIPPING $name: $bin not built (--build)"
        continue
    fi
    if [ "$suite" = http ] && ! command -v h2load >/dev/null; then
        log "SKIPPING $name: h2load not found (apt-get install nghttp2-client)"
        continue
    fi
    n1=$(n_of "$suite" 1); n2=$(n_of "$suite" 2)
    log "$name: callgrind, $n1 then $n2 requests"
    ir1=$(ir_of_run "$name" "$suite" "$cmd" "$n1") || { log "FAILED: $name ($n1)"; continue; }
    ir2=$(ir_of_run "$name" "$suite" "$cmd" "$n2") || { log "FAILED: $name ($n2)"; continue; }
    per=$(python3 -c "print(f'{($ir2 - $ir1) / ($n2 - $n1):,.0f}')")
    sys="- -"
    if [ "$SYS_METHOD" != none ]; then
        log "$name: syscalls ($SYS_METHOD)"
        sys=$(syscalls_of "$name" "$suite" "$cmd") || sys="- failed"
    fi
    read -r sys_total sys_break <<<"$sys"
    log "$name: $per instructions/request, $sys_total syscalls/request"
    ROWS+=("| $suite | $name | $per | $sys_total | $sys_break | $ir1 | $ir2 |")
done

{
    echo "Generated by \`bench/instructions.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), revision $(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo '?')."
    echo "echo: 1 connection, 64 B, N = $ECHO_N1 / $ECHO_N2 round trips; http: \`h2load --h1 -c $HTTP_CONNS -m $HTTP_DEPTH\`, N = $HTTP_N1 / $HTTP_N2 requests."
    echo "Instructions: callgrind Ir, (Ir(N2) - Ir(N1)) / (N2 - N1). Syscalls: $SYS_METHOD, same difference."
    echo
    echo "| workload | server | instructions / request | syscalls / request | syscalls by name | Ir at N1 | Ir at N2 |"
    echo "|---|---|---:|---:|---|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$RESULTS"
