#!/usr/bin/env bash
# bench/compare.sh — sockloop against its comparison peers, on one machine.
#
# One invocation runs every server of a suite in turn on the same workload,
# interleaved (A B C, A B C, ...) for ROUNDS rounds, the server pinned to one
# CPU and the client to another, and records per run: requests/s, p99 (from
# the client) and server CPU time per request. Then, once per server: syscalls
# per request (perf raw_syscalls tracepoint, or strace -c) and RSS per idle
# connection. Writes bench/results/latest.md (medians, ratios to sockloop),
# raw.csv, syscalls.csv, rss.csv and ratios.svg.
#
# Multi-core suites echo2 and http2 (scenarios mc-*): the server and the
# client both allowed on MC_CPUS [0,1]; sockloop with --threads 1/2/4 and
# each --balance mode, tokio's multi-threaded runtime with 2 workers, the C
# epoll loop on 2 threads with SO_REUSEPORT, nginx with 2 workers.
#
# Usage: bench/compare.sh [--smoke] [--suites echo,http,resp,echo2,http2,syscalls,rss,tls,tlsresume]
#                         [--rounds N] [--build] [--require-all]
#   --smoke        ~1 s per scenario, 1 round, results in bench/results/smoke/
#   --suites LIST  comma-separated subset (default: all but the TLS suites)
#   --build        build sockloop's examples (with --features tls) and the
#                  peers first (cargo -j$JOBS)
#   --require-all  a missing server binary is an error, not a loud skip
# Environment (defaults in brackets): ROUNDS [3], SECS [5] seconds per timed
# run, WARMUP [1] (loadgen), RESP_N [150000] / RESP_N_PIPE [1500000] requests
# per redis-benchmark run (-P 1 / -P 16), RSS_CONNS [10000], SYSCALL_SECS [2],
# SYSCALL_METHOD [auto|perf|strace|none], SERVER_CPU [0], CLIENT_CPU [1],
# BASE_PORT [23000], BASELINE [sockloop], JOBS [1], RESULTS_DIR,
# SOCKLOOP_EXAMPLES [target/release/examples], LOADGEN [$SOCKLOOP_EXAMPLES/loadgen].
#
# Needs python3, taskset, ss, pgrep; per suite: the sockloop loadgen (echo),
# wrk and nginx (http), redis-benchmark and redis-server (resp), perf or
# strace (syscalls). bench/install-deps.sh installs them from Debian's
# packages. A missing server or client is skipped with a loud message.
#
# TLS suites (tls, tlsresume; not in the default list): sockloop's http
# example with --features tls against nginx with TLS, the same ECDSA P-256
# certificate (made here with openssl), TLS 1.3, one core each, session
# resumption on for both. tls: wrk over https, keep-alive (-c50) and one
# request per connection (Connection: close: a full handshake each, wrk
# does not resume). tlsresume: `openssl s_time -reuse` (resumed handshakes,
# one request each). Needs openssl and curl too.
#
# To add a server: one line in the *_SERVERS table of its suite. To add a
# workload: one line in SCENARIOS. Everything talks to 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
PEERS_DIR=$BENCH/peers
PEERS=$PEERS_DIR/target/release
LIB="python3 $BENCH/benchlib.py"

SMOKE=0
BUILD=0
REQUIRE_ALL=0
SUITES=${SUITES:-echo,http,resp,echo2,http2,syscalls,rss}
# (tls and tlsresume run only when asked for: they need --features tls.)
ARGS_TEXT="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --build) BUILD=1 ;;
        --require-all) REQUIRE_ALL=1 ;;
        --suites) SUITES=$2; shift ;;
        --suites=*) SUITES=${1#*=} ;;
        --rounds) ROUNDS=$2; shift ;;
        --rounds=*) ROUNDS=${1#*=} ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$SMOKE" = 1 ]; then
    ROUNDS=${ROUNDS:-1}; SECS=${SECS:-1}; WARMUP=${WARMUP:-0}
    RESP_N=${RESP_N:-20000}; RESP_N_PIPE=${RESP_N_PIPE:-150000}
    RSS_CONNS=${RSS_CONNS:-1000}; SYSCALL_SECS=${SYSCALL_SECS:-1}
    RESULTS_DIR=${RESULTS_DIR:-$BENCH/results/smoke}
fi
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
WARMUP=${WARMUP:-1}
RESP_N=${RESP_N:-150000}
RESP_N_PIPE=${RESP_N_PIPE:-1500000}
RSS_CONNS=${RSS_CONNS:-10000}
SYSCALL_SECS=${SYSCALL_SECS:-2}
SYSCALL_METHOD=${SYSCALL_METHOD:-auto}
SERVER_CPU=${SERVER_CPU:-0}
MC_CPUS=${MC_CPUS:-0,1}
SCPU=$SERVER_CPU # the CPU list of the server being started
CLIENT_CPU=${CLIENT_CPU:-1}
BASE_PORT=${BASE_PORT:-23000}
BASELINE=${BASELINE:-sockloop}
JOBS=${JOBS:-1}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
EX=${SOCKLOOP_EXAMPLES:-$ROOT/target/release/examples}
LOADGEN=${LOADGEN:-$EX/loadgen}

q() { printf '%q' "$1"; }

# ------------------------------------------------------------------ servers
# "name|command". {ADDR} {PORT} {TMP} are filled in per run ({TMP} is a fresh
# scratch directory). The command is eval'ed, so quote like a shell line.
# Every server must print "listening on ADDR" to stderr, or just listen.
ECHO_SERVERS=(
    "sockloop|$(q "$EX/echo") --addr {ADDR}"
    "mio|$(q "$PEERS/mio-echo") --addr {ADDR}"
    "tokio|$(q "$PEERS/tokio-echo") --addr {ADDR}"
    "c-epoll|$(q "$PEERS/c-echo") --addr {ADDR}"
)
HTTP_SERVERS=(
    "sockloop|$(q "$EX/http") --addr {ADDR}"
    "mio|$(q "$PEERS/mio-http") --addr {ADDR}"
    "mio-httparse|$(q "$PEERS/mio-httparse") --addr {ADDR}"
    "tokio|$(q "$PEERS/tokio-http") --addr {ADDR}"
    "c-epoll|$(q "$PEERS/c-http") --addr {ADDR}"
    "nginx|nginx -p {TMP} -e {TMP}/error.log -c {TMP}/nginx.conf"
)
# Multi-core: "sockloop" (the baseline of the ratios) is 2 loops, reuseport.
ECHO2_SERVERS=(
    "sockloop|$(q "$EX/echo") --addr {ADDR} --threads 2"
    "sockloop-1loop|$(q "$EX/echo") --addr {ADDR} --threads 1"
    "sockloop-4loops|$(q "$EX/echo") --addr {ADDR} --threads 4"
    "sockloop-exclusive|$(q "$EX/echo") --addr {ADDR} --threads 2 --balance exclusive"
    "sockloop-handoff|$(q "$EX/echo") --addr {ADDR} --threads 2 --balance handoff"
    "tokio-mt|$(q "$PEERS/tokio-echo") --addr {ADDR} --threads 2"
    "c-epoll-2t|$(q "$PEERS/c-echo") --addr {ADDR} --threads 2"
)
HTTP2_SERVERS=(
    "sockloop|$(q "$EX/http") --addr {ADDR} --threads 2"
    "sockloop-1loop|$(q "$EX/http") --addr {ADDR} --threads 1"
    "sockloop-4loops|$(q "$EX/http") --addr {ADDR} --threads 4"
    "sockloop-exclusive|$(q "$EX/http") --addr {ADDR} --threads 2 --balance exclusive"
    "sockloop-handoff|$(q "$EX/http") --addr {ADDR} --threads 2 --balance handoff"
    "tokio-mt|$(q "$PEERS/tokio-http") --addr {ADDR} --threads 2"
    "c-epoll-2t|$(q "$PEERS/c-http") --addr {ADDR} --threads 2"
    "nginx-2w|nginx -p {TMP} -e {TMP}/error.log -c {TMP}/nginx2.conf"
)
TLS_SERVERS=(
    "sockloop|$(q "$EX/http") --addr {ADDR} --tls-cert {TMP}/cert.pem --tls-key {TMP}/key.pem"
    "nginx|nginx -p {TMP} -e {TMP}/error.log -c {TMP}/nginx-tls.conf"
)
RESP_SERVERS=(
    "sockloop|$(q "$EX/resp") --addr {ADDR}"
    "mio|$(q "$PEERS/mio-resp") --addr {ADDR}"
    "redis|redis-server --bind 127.0.0.1 --port {PORT} --save '' --appendonly no --dir {TMP} --logfile ''"
)

# ---------------------------------------------------------------- scenarios
# "suite|name|client arguments". The suite picks the server table and the
# client (client_echo / client_http / client_resp below). Placeholders:
# {N} = RESP_N, {NP} = RESP_N_PIPE, {BENCH} = this directory.
SCENARIOS=(
    "echo|echo-64B-c1-d1|--conns 1 --size 64 --depth 1"
    "echo|echo-64B-c50-d1|--conns 50 --size 64 --depth 1"
    "echo|echo-64B-c50-d16|--conns 50 --size 64 --depth 16"
    "echo|echo-4KiB-c50-d1|--conns 50 --size 4096 --depth 1"
    "echo|echo-64B-c1000-d1|--conns 1000 --size 64 --depth 1"
    "http|http-c50|-c50"
    "http|http-c256|-c256"
    "http|http-c50-pipe16|-c50 -s {BENCH}/pipeline.lua -- 16"
    "echo2|mc-echo-64B-c50-d16|--conns 25 --size 64 --depth 16"
    "echo2|mc-echo-64B-c100-d1|--conns 50 --size 64 --depth 1"
    "http2|mc-http-c50|-c50"
    "http2|mc-http-c256|-c256"
    "http2|mc-http-c50-pipe16|-c50 -s {BENCH}/pipeline.lua -- 16"
    "tls|tls-keepalive-c50|-c50"
    "tls|tls-handshake-c50|-c50 -H 'Connection: close'"
    "tlsresume|tls-resumed-handshake|-reuse"
    "resp|resp-ping-P1|-t ping_mbulk -n {N} -P 1"
    "resp|resp-set-P1|-t set -n {N} -P 1"
    "resp|resp-get-P1|-t get -n {N} -P 1"
    "resp|resp-ping-P16|-t ping_mbulk -n {NP} -P 16"
    "resp|resp-set-P16|-t set -n {NP} -P 16"
    "resp|resp-get-P16|-t get -n {NP} -P 16"
)

# Fixed workloads for the once-per-server syscall count: "suite|client args".
SYSCALL_WORKLOADS=(
    "echo|--conns 50 --size 64 --depth 1"
    "http|-c50"
    "resp|-t set -n {N} -P 1"
)

# ------------------------------------------------------------------ helpers
log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
loud() {
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    printf '!!! %s\n' "$@" >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}
has_suite() { [[ ",$SUITES," == *",$1,"* ]]; }

servers_of() { # suite -> name of the table array
    case "$1" in
        echo) echo ECHO_SERVERS ;;
        http) echo HTTP_SERVERS ;;
        resp) echo RESP_SERVERS ;;
        echo2) echo ECHO2_SERVERS ;;
        http2) echo HTTP2_SERVERS ;;
        tls|tlsresume) echo TLS_SERVERS ;;
        *) echo "unknown suite $1" >&2; exit 2 ;;
    esac
}

fill() { # template port tmpdir -> command/args with placeholders filled
    local s=$1
    s=${s//\{ADDR\}/127.0.0.1:$2}
    s=${s//\{PORT\}/$2}
    s=${s//\{TMP\}/$(q "$3")}
    s=${s//\{N\}/$RESP_N}
    s=${s//\{NP\}/$RESP_N_PIPE}
    s=${s//\{BENCH\}/$(q "$BENCH")}
    printf '%s' "$s"
}

shown() { # client args as recorded in the results
    local s=${1//\{N\}/$RESP_N}
    s=${s//\{NP\}/$RESP_N_PIPE}
    printf '%s' "${s//\{BENCH\}/bench}"
}

first_word() { eval "set -- $1"; printf '%s' "$1"; }

server_available() { # command template -> 0 if its program exists
    local bin
    bin=$(first_word "$1")
    if [[ $bin == */* ]]; then [ -x "$bin" ]; else command -v "$bin" >/dev/null 2>&1; fi
}

port_listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

PORT_SEQ=$BASE_PORT
next_port() { # a port nobody listens on, never the same twice per invocation
    while port_listening "$PORT_SEQ"; do PORT_SEQ=$((PORT_SEQ + 1)); done
    PORT=$PORT_SEQ
    PORT_SEQ=$((PORT_SEQ + 1))
}

tree_pids() { # pid -> pid and its direct children, comma separated
    local kids
    kids=$(pgrep -P "$1" 2>/dev/null | paste -sd, - || true)
    printf '%s%s' "$1" "${kids:+,$kids}"
}

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # pid -> utime+stime (ticks) of the pid and its direct children
    local total=0 p line rest
    local -a f
    for p in ${1//,/ }; do
        line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${line##*) }          # fields from 3 (state) on
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))   # fields 14 (utime) and 15 (stime)
    done
    echo "$total"
}

SPID=""
start_server() { # name command-template port tmpdir logfile -> sets SPID
    local name=$1 tmpl=$2 port=$3 tmp=$4 logf=$5 cmd i
    sed -e "s|@PORT@|$port|g" -e "s|@TMP@|$tmp|g" "$BENCH/nginx.conf" >"$tmp/nginx.conf"
    sed -e 's/^worker_processes 1;/worker_processes 2;/' "$tmp/nginx.conf" >"$tmp/nginx2.conf"
    sed -e "s|@PORT@|$port|g" -e "s|@TMP@|$tmp|g" "$BENCH/nginx-tls.conf" >"$tmp/nginx-tls.conf"
    if [ -n "${PKI:-}" ]; then cp "$PKI/cert.pem" "$PKI/key.pem" "$tmp/"; fi
    cmd=$(fill "$tmpl" "$port" "$tmp")
    echo "+ taskset -c $SCPU $cmd" >"$logf"
    ( eval "exec taskset -c $SCPU $cmd" ) >>"$logf" 2>&1 &
    SPID=$!
    for i in $(seq 1 200); do # up to 10 s
        if ! kill -0 "$SPID" 2>/dev/null; then
            log "$name exited before listening; log $logf:"; sed 's/^/    /' "$logf" >&2
            wait "$SPID" 2>/dev/null || true
            SPID=""
            return 1
        fi
        # Ready once the port is in LISTEN state: that covers our servers'
        # "listening on ADDR" line (printed once bound) and nginx/redis alike.
        port_listening "$port" && return 0
        sleep 0.05
    done
    log "$name did not listen on $port within 10 s; log $logf"
    stop_server
    return 1
}

stop_server() {
    [ -n "$SPID" ] || return 0
    local i
    kill -TERM "$SPID" 2>/dev/null || true
    for i in $(seq 1 60); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$SPID" 2>/dev/null; then
        log "server $SPID ignored SIGTERM for 3 s; SIGKILL"
        pkill -KILL -P "$SPID" 2>/dev/null || true
        kill -KILL "$SPID" 2>/dev/null || true
    fi
    wait "$SPID" 2>/dev/null || true
    SPID=""
}

PERF_PID=""
cleanup() {
    [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null || true
    stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check_server() { # suite port logfile -> 0 if the server answers correctly
    case "$1" in
        tls|tlsresume) # verified against the CA, TLS 1.3, the expected body
            [ "$(curl -sS --max-time 10 --tlsv1.3 --cacert "$PKI/ca.pem" \
                --resolve "localhost:$2:127.0.0.1" "https://localhost:$2/" 2>>"$3")" = "Hello, World!" ] ;;
        *) timeout 10 $LIB check "${1%2}" "$2" 2>>"$3" ;;
    esac
}

# Clients: client_SUITE port server-pids args outfile; the output is parsed
# by parse_SUITE, which prints: requests rps p50 p99 p999 errors cpu_s|-
client_echo() {
    local pid=${2%%,*}
    eval "taskset -c $CLIENT_CPU $(q "$LOADGEN") --mode echo --addr 127.0.0.1:$1 $3 \
        --secs $SECS --warmup $WARMUP --server-pid $pid" >"$4" 2>&1
}
parse_echo() { $LIB parse-loadgen "$1"; }
# Multi-core echo: one loadgen is one thread, so two of them, in parallel,
# both allowed on MC_CPUS like the server; their figures are summed.
client_echo2() {
    local pid=${2%%,*} a ok=0
    local -a lg=()
    for a in 1 2; do
        eval "taskset -c $MC_CPUS $(q "$LOADGEN") --mode echo --addr 127.0.0.1:$1 $3 \
            --secs $SECS --warmup $WARMUP --server-pid $pid" >"$4.$a" 2>&1 &
        lg+=($!)
    done
    for a in "${lg[@]}"; do wait "$a" || ok=1; done
    cat "$4.1" "$4.2" >"$4"
    return $ok
}
parse_echo2() { $LIB parse-loadgen-sum "$1"; }
client_http2() {
    eval "taskset -c $MC_CPUS wrk -t2 -d${SECS}s --latency $(first_args "$3") \
        http://127.0.0.1:$1/ $(script_args "$3")" >"$4" 2>&1
}
parse_http2() { $LIB parse-wrk "$1"; }
client_http() {
    eval "taskset -c $CLIENT_CPU wrk -t1 -d${SECS}s --latency $(first_args "$3") \
        http://127.0.0.1:$1/ $(script_args "$3")" >"$4" 2>&1
}
parse_http() { $LIB parse-wrk "$1"; }
client_resp() {
    eval "taskset -c $CLIENT_CPU redis-benchmark -h 127.0.0.1 -p $1 -c 50 -q --csv $3" >"$4" 2>&1
}
client_tls() {
    eval "taskset -c $CLIENT_CPU wrk -t1 -d${SECS}s --latency $3 https://127.0.0.1:$1/" >"$4" 2>&1
}
parse_tls() { $LIB parse-wrk "$1"; }
client_tlsresume() { # openssl s_time: a (resumed, with -reuse) handshake + GET / per connection
    taskset -c "$CLIENT_CPU" openssl s_time -connect "127.0.0.1:$1" -www / -time "$SECS" \
        -CAfile "$PKI/ca.pem" $3 >"$4" 2>&1
}
parse_tlsresume() { # "N connections in T real seconds" -> requests rps - - - errors -
    awk '/connections in [0-9.]+ real seconds/ {n=$1; t=$4}
         END {if (n > 0 && t > 0) printf "%d %.1f - - - 0 -\n", n, n/t; else exit 1}' "$1"
}
parse_resp() { local n; n=$(sed -n 's/.*-n \([0-9]*\).*/\1/p' <<<"$2"); $LIB parse-redis "$1" "$n"; }
# wrk wants the URL before "-- script args"
first_args() { printf '%s' "${1%% -- *}"; }
script_args() { [[ $1 == *" -- "* ]] && printf -- '-- %s' "${1#* -- }" || true; }

# Syscall-count variants: fixed workload, no warmup, shorter.
sys_client_echo() {
    eval "taskset -c $CLIENT_CPU $(q "$LOADGEN") --mode echo --addr 127.0.0.1:$1 $2 \
        --secs $SYSCALL_SECS --warmup 0" >"$3" 2>&1
}
sys_client_http() {
    eval "taskset -c $CLIENT_CPU wrk -t1 -d${SYSCALL_SECS}s $2 http://127.0.0.1:$1/" >"$3" 2>&1
}
sys_client_resp() { client_resp "$1" "" "$2" "$3"; }

client_available() { # suite -> 0 if its client exists
    case "$1" in
        echo|echo2) [ -x "$LOADGEN" ] ;;
        http|http2) command -v wrk >/dev/null ;;
        resp) command -v redis-benchmark >/dev/null ;;
        tls) command -v wrk >/dev/null && command -v curl >/dev/null && [ -n "${PKI:-}" ] ;;
        tlsresume) command -v openssl >/dev/null && command -v curl >/dev/null && [ -n "${PKI:-}" ] ;;
    esac
}
client_name() {
    case "$1" in
        echo|echo2) echo "loadgen ($LOADGEN)" ;;
        http|http2) echo wrk ;;
        resp) echo redis-benchmark ;;
        tls) echo "wrk, curl and openssl" ;;
        tlsresume) echo "openssl (s_time) and curl" ;;
    esac
}

# ------------------------------------------------------------------- set-up
for tool in taskset ss pgrep python3 timeout; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is required" >&2; exit 1; }
done

if [ "$BUILD" = 1 ]; then
    log "building sockloop examples (cargo -j$JOBS)"
    (cd "$ROOT" && cargo build --release --examples --features tls -j"$JOBS")
fi
build_peers() {
    log "building comparison peers in $PEERS_DIR (cargo -j$JOBS, gcc)"
    (cd "$PEERS_DIR" && cargo build --release -j"$JOBS" --quiet)
    mkdir -p "$PEERS"
    gcc -O2 -Wall -pthread -o "$PEERS/c-echo" "$PEERS_DIR/c-echo.c"
    gcc -O2 -Wall -pthread -o "$PEERS/c-http" "$PEERS_DIR/c-http.c"
}
need_peers=$BUILD
for b in mio-echo tokio-echo mio-http mio-httparse tokio-http mio-resp c-echo c-http; do
    [ -x "$PEERS/$b" ] || need_peers=1
done
for c in c-echo c-http; do
    [ "$PEERS_DIR/$c.c" -nt "$PEERS/$c" ] && need_peers=1
done
[ "$need_peers" = 1 ] && build_peers

# Enough descriptors for RSS_CONNS connections in the server (inherited).
hard=$(ulimit -Hn)
want=$((RSS_CONNS + 1024))
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    want=$hard
    if has_suite rss && [ $((hard - 1024)) -lt "$RSS_CONNS" ]; then
        log "ulimit -Hn is $hard: RSS test lowered to $((hard - 1024)) connections"
        RSS_CONNS=$((hard - 1024))
    fi
fi
ulimit -n "$want"

mkdir -p "$RESULTS_DIR"
RESULTS_DIR=$(cd "$RESULTS_DIR" && pwd) # nginx -p/-c need absolute paths
RUNDIR=$RESULTS_DIR/logs
rm -rf "$RUNDIR"
mkdir -p "$RUNDIR"

# TLS suites: one ECDSA P-256 CA and leaf (localhost, 127.0.0.1) for every
# server of the run.
PKI=""
if has_suite tls || has_suite tlsresume; then
    if command -v openssl >/dev/null; then
        PKI=$RUNDIR/pki
        mkdir -p "$PKI"
        (
            cd "$PKI"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
                -keyout ca.key -out ca.pem -subj /CN=bench-ca
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout key.pem -out leaf.csr -subj /CN=localhost
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >leaf.ext
            openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
                -extfile leaf.ext -out cert.pem
        ) >"$RUNDIR/pki.log" 2>&1 || { log "openssl could not make the test certificate"; PKI=""; }
    fi
fi
RAW=$RESULTS_DIR/raw.csv
SYSCSV=$RESULTS_DIR/syscalls.csv
RSSCSV=$RESULTS_DIR/rss.csv
echo "suite,scenario,round,server,status,requests,rps,p50_us,p99_us,p999_us,errors,server_cpu_s,cpu_source,cpu_us_per_req,proc_window_cpu_s,client_args" >"$RAW"
echo "suite,server,status,workload,requests,syscalls,breakdown" >"$SYSCSV"
echo "server,status,conns,rss_before_kb,rss_idle_kb,idle_bytes_per_conn,rss_touched_kb,touched_bytes_per_conn" >"$RSSCSV"
FAILURES=0
declare -A SKIPPED=()

skip_missing() { # suite name template -> 0 if it must be skipped
    if server_available "$3"; then return 1; fi
    if [ -z "${SKIPPED[$2 ($1)]:-}" ]; then
        SKIPPED["$2 ($1)"]=1
        loud "SKIPPING server '$2' for the $1 suite: $(first_word "$3") not found." \
             "Build it (cargo build --release --examples, or bench/compare.sh --build)."
        [ "$REQUIRE_ALL" = 1 ] && FAILURES=$((FAILURES + 1))
    fi
    return 0
}

read_rev() { # the checked-out commit, read from .git without running git
    local g=$ROOT/.git c head ref
    # A worktree's .git is a file naming its git dir; refs live in the
    # common dir that one names.
    [ -f "$g" ] && g=$(sed -n 's/^gitdir: //p' "$g")
    c=$g
    [ -f "$g/commondir" ] && c="$g/$(cat "$g/commondir")"
    [ -f "$g/HEAD" ] || { echo "?"; return; }
    head=$(cat "$g/HEAD")
    if [[ $head == ref:* ]]; then
        ref=${head#ref: }
        if [ -f "$c/$ref" ]; then cut -c1-12 "$c/$ref"
        else grep " $ref\$" "$c/packed-refs" 2>/dev/null | cut -c1-12 || echo "?"; fi
    else
        echo "${head:0:12}"
    fi
}

{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "args=$ARGS_TEXT"
    echo "host=$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "rev=$(read_rev)"
    echo "rustc=$(rustc --version 2>/dev/null || echo '?')"
    echo "tools=$( (wrk -v 2>&1 || true) | head -1 | cut -d' ' -f1-2); $(nginx -v 2>&1 | sed 's/.*: //'); $(redis-server --version 2>/dev/null | cut -d' ' -f1-3)"
    echo "rounds=$ROUNDS"
    echo "server_cpu=$SERVER_CPU"
    echo "mc_cpus=$MC_CPUS"
    echo "client_cpu=$CLIENT_CPU"
    echo "baseline=$BASELINE"
    echo "smoke=$SMOKE"
    if [ -n "$PKI" ]; then
        echo "tls=ECDSA P-256 certificate (openssl req), TLS 1.3, session cache and tickets on for both; $(openssl version)"
    fi
} >"$RESULTS_DIR/meta.txt"

# --------------------------------------------------------------- timed runs
run_one() { # suite scenario round server template args
    local suite=$1 scen=$2 round=$3 name=$4 tmpl=$5 args=$6
    local tag="$scen.$name.r$round" tmp out status=ok c0 c1 pids
    case "$suite" in *2) SCPU=$MC_CPUS ;; *) SCPU=$SERVER_CPU ;; esac
    local requests=- rps=- p50=- p99=- p999=- errors=- ccpu=- cpu_s=- src=- per=- win=-
    next_port
    tmp=$RUNDIR/$tag.tmp
    mkdir -p "$tmp"
    out=$RUNDIR/$tag.client.txt
    if ! start_server "$name" "$tmpl" "$PORT" "$tmp" "$RUNDIR/$tag.server.txt"; then
        status=start-failed
    elif ! check_server "$suite" "$PORT" "$RUNDIR/$tag.server.txt"; then
        status=bad-response
        log "$name gave a wrong answer to the $suite check"
    else
        pids=$(tree_pids "$SPID")
        c0=$(cpu_ticks "$pids")
        if ! "client_$suite" "$PORT" "$pids" "$(fill "$args" "$PORT" "$tmp")" "$out"; then
            status=client-failed
        fi
        c1=$(cpu_ticks "$pids")
        # Server CPU over the whole client run, as the harness saw it.
        win=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN {printf "%.3f", (b-a)/t}')
        if ! kill -0 "$SPID" 2>/dev/null; then status=server-died; fi
        if [ "$status" = ok ] && read -r requests rps p50 p99 p999 errors ccpu \
                < <("parse_$suite" "$out" "$(fill "$args" "$PORT" "$tmp")" 2>>"$out"); then
            :
        elif [ "$status" = ok ]; then
            status=unparsable
        fi
        if [ "$status" = ok ]; then
            if [ "$ccpu" != - ] && [ "$ccpu" != 0 ]; then
                # loadgen --server-pid read the same /proc/PID/stat fields
                # around its measured window (warmup excluded): use that.
                cpu_s=$ccpu; src=client
            else
                cpu_s=$win
                src=proc
                if [ "$suite" = echo ]; then # window included the warmup
                    cpu_s=$(awk -v c="$cpu_s" -v s="$SECS" -v w="$WARMUP" 'BEGIN {printf "%.3f", c*s/(s+w)}')
                    src=proc-scaled
                fi
            fi
            if [ "$requests" = - ] || [ "$rps" = - ]; then status=unparsable; fi
            per=$(awk -v c="$cpu_s" -v r="$requests" 'BEGIN {if (r > 0) printf "%.3f", c*1e6/r; else print "-"}')
            if [ "$errors" != - ] && [ "$errors" != 0 ]; then status=errors; fi
        fi
    fi
    stop_server
    SCPU=$SERVER_CPU
    [ "$status" = ok ] || { FAILURES=$((FAILURES + 1)); log "FAILED: $tag ($status); logs in $RUNDIR/$tag.*"; }
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,"%s"\n' "$suite" "$scen" "$round" "$name" "$status" \
        "$requests" "$rps" "$p50" "$p99" "$p999" "$errors" "$cpu_s" "$src" "$per" "$win" "$(shown "$args")" >>"$RAW"
    log "$(printf '%-18s r%s %-9s %-13s %12s req/s  p99 %8s us  cpu %8s us/req' \
        "$scen" "$round" "$name" "$status" "$rps" "$p99" "$per")"
}

# Smoke runs keep one scenario per multi-core suite (the harness check).
SMOKE_SKIP=" mc-echo-64B-c50-d16 mc-http-c256 mc-http-c50-pipe16 "
for entry in "${SCENARIOS[@]}"; do
    IFS='|' read -r suite scen args <<<"$entry"
    has_suite "$suite" || continue
    [ "$SMOKE" = 1 ] && [[ $SMOKE_SKIP == *" $scen "* ]] && continue
    if ! client_available "$suite"; then
        loud "SKIPPING scenario $scen: client $(client_name "$suite") not found."
        [ "$REQUIRE_ALL" = 1 ] && FAILURES=$((FAILURES + 1))
        continue
    fi
    table=$(servers_of "$suite")
    declare -n servers=$table
    for round in $(seq 1 "$ROUNDS"); do
        for s in "${servers[@]}"; do
            name=${s%%|*}; tmpl=${s#*|}
            skip_missing "$suite" "$name" "$tmpl" && continue
            run_one "$suite" "$scen" "$round" "$name" "$tmpl" "$args"
        done
    done
    unset -n servers
done

# ------------------------------------------------------------- syscall count
perf_events() { # raw_syscalls total + the per-syscall tracepoints that exist here
    local ev=raw_syscalls:sys_enter s list
    list=$(perf list 'syscalls:sys_enter_*' 2>/dev/null || true)
    for s in read write readv writev recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait \
             epoll_pwait2 epoll_ctl accept4 accept close io_uring_enter; do
        grep -q "syscalls:sys_enter_$s " <<<"$list" && ev="$ev,syscalls:sys_enter_$s"
    done
    echo "$ev"
}

pick_syscall_method() {
    case "$SYSCALL_METHOD" in
        perf|strace|none) echo "$SYSCALL_METHOD"; return ;;
    esac
    if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -o /dev/null -- true >/dev/null 2>&1; then
        echo perf
    elif command -v strace >/dev/null; then
        echo strace
    else
        echo none
    fi
}

if has_suite syscalls; then
    method=$(pick_syscall_method)
    case "$method" in
        perf) echo "syscall_method=perf stat -e raw_syscalls:sys_enter (+ syscalls:sys_enter_* for the breakdown)" >>"$RESULTS_DIR/meta.txt" ;;
        strace) echo "syscall_method=strace -c -f (slows the server a lot; counts are still exact)" >>"$RESULTS_DIR/meta.txt" ;;
    esac
    if [ "$method" = none ]; then
        loud "SKIPPING syscall counts: neither perf (raw_syscalls tracepoint) nor strace works here"
    else
        events=$( [ "$method" = perf ] && perf_events || true )
        log "syscall counts with $method"
        for w in "${SYSCALL_WORKLOADS[@]}"; do
            IFS='|' read -r suite args <<<"$w"
            client_available "$suite" || { loud "SKIPPING $suite syscall count: no $(client_name "$suite")"; continue; }
            table=$(servers_of "$suite")
            declare -n servers=$table
            for s in "${servers[@]}"; do
                name=${s%%|*}; tmpl=${s#*|}
                skip_missing "$suite" "$name" "$tmpl" && continue
                tag="syscalls-$suite.$name"; tmp=$RUNDIR/$tag.tmp; mkdir -p "$tmp"
                status=ok; requests=-; total=-; breakdown=""
                next_port
                fargs=$(fill "$args" "$PORT" "$tmp")
                if start_server "$name" "$tmpl" "$PORT" "$tmp" "$RUNDIR/$tag.server.txt"; then
                    pids=$(tree_pids "$SPID")
                    if [ "$method" = perf ]; then
                        perf stat -x, -e "$events" -p "$pids" -o "$RUNDIR/$tag.count.txt" 2>"$RUNDIR/$tag.perf.err" &
                    else
                        # shellcheck disable=SC2046
                        strace -c -f $(printf -- '-p %s ' ${pids//,/ }) -o "$RUNDIR/$tag.count.txt" 2>"$RUNDIR/$tag.perf.err" &
                    fi
                    PERF_PID=$!
                    sleep 0.5 # attach
                    "sys_client_$suite" "$PORT" "$fargs" "$RUNDIR/$tag.client.txt" || status=client-failed
                    kill -INT "$PERF_PID" 2>/dev/null || true
                    wait "$PERF_PID" 2>/dev/null || true
                    PERF_PID=""
                    if [ "$status" = ok ]; then
                        read -r requests _ < <("parse_$suite" "$RUNDIR/$tag.client.txt" "$fargs" 2>/dev/null) || status=unparsable
                        read -r total breakdown < <($LIB "parse-$method" "$RUNDIR/$tag.count.txt" 2>/dev/null) || status=no-count
                    fi
                    stop_server
                else
                    status=start-failed
                fi
                [ "$status" = ok ] || { FAILURES=$((FAILURES + 1)); log "FAILED: $tag ($status)"; }
                printf '%s,%s,%s,"%s",%s,%s,"%s"\n' "$suite" "$name" "$status" "$(shown "$args")" "$requests" "$total" "$breakdown" >>"$SYSCSV"
                log "$(printf 'syscalls %-5s %-9s %s: %s syscalls / %s requests' "$suite" "$name" "$status" "$total" "$requests")"
            done
            unset -n servers
        done
    fi
fi

# ----------------------------------------------------------- RSS per conn
if has_suite rss; then
    for s in "${ECHO_SERVERS[@]}"; do
        name=${s%%|*}; tmpl=${s#*|}
        skip_missing echo "$name" "$tmpl" && continue
        tag="rss.$name"; tmp=$RUNDIR/$tag.tmp; mkdir -p "$tmp"
        status=ok
        next_port
        if start_server "$name" "$tmpl" "$PORT" "$tmp" "$RUNDIR/$tag.server.txt"; then
            taskset -c "$CLIENT_CPU" python3 "$BENCH/idle_conns.py" --addr "127.0.0.1:$PORT" --pid "$SPID" \
                --conns "$RSS_CONNS" --touch-echo >"$RUNDIR/$tag.client.txt" 2>&1 || status=client-failed
            stop_server
        else
            status=start-failed
        fi
        vals="- - - - - -"
        if [ "$status" = ok ]; then
            vals=$($LIB json-get "$RUNDIR/$tag.client.txt" conns rss_before_kb rss_idle_kb \
                idle_bytes_per_conn rss_touched_kb touched_bytes_per_conn) || status=unparsable
        fi
        [ "$status" = ok ] || { FAILURES=$((FAILURES + 1)); log "FAILED: $tag ($status); see $RUNDIR/$tag.client.txt"; }
        echo "$name,$status,${vals// /,}" >>"$RSSCSV"
        log "rss $name $status: $vals (conns before_kb idle_kb B/idle-conn touched_kb B/touched-conn)"
    done
fi

# ------------------------------------------------------------------ report
if [ "${#SKIPPED[@]}" -gt 0 ]; then
    echo "skipped=$(printf '%s; ' "${!SKIPPED[@]}" | sed 's/; $//')" >>"$RESULTS_DIR/meta.txt"
fi
$LIB summarize "$RESULTS_DIR" >"$RESULTS_DIR/latest.md"
python3 "$BENCH/chart.py" --results "$RESULTS_DIR" --baseline "$BASELINE" || log "chart.py failed"
log "wrote $RESULTS_DIR/latest.md, raw.csv, syscalls.csv, rss.csv, ratios.svg (logs in $RUNDIR)"
if [ "${#SKIPPED[@]}" -gt 0 ]; then
    loud "These servers were SKIPPED (binary missing): ${!SKIPPED[*]}"
fi
if [ "$FAILURES" -gt 0 ]; then
    log "$FAILURES run(s) failed"
    exit 1
fi
