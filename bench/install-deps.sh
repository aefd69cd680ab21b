#!/usr/bin/env bash
# Installs what bench/compare.sh uses, from Debian's packages (run as root):
# wrk (HTTP client), nginx-light (HTTP peer), redis-server and redis-tools
# (RESP peer and redis-benchmark), linux-perf and strace (syscall counts),
# util-linux/procps/iproute2 (taskset, pgrep, ss), gcc (C peers).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends wrk nginx-light redis-server redis-tools \
    linux-perf strace util-linux procps iproute2 gcc libc6-dev python3
# Debian starts the packaged daemons; the benchmarks start their own.
for svc in nginx redis-server; do
    (command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null) || service "$svc" stop 2>/dev/null || true
done
