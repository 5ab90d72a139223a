#!/usr/bin/env bash
# Side-by-side baseline: a 3-member etcd cluster on loopback (fsync on, as etcd always
# does), driven by `rsm-kv-load --etcd` at 1, 16 and 256 clients with 100-byte values.
# Needs `etcd` and `etcdctl` (Debian: apt-get install etcd-server etcd-client) and a
# release build of rsm-kv-load. Members and their data are removed on every exit.
set -euo pipefail

LOAD=${LOAD:-target/release/rsm-kv-load}
OPS=${OPS:-"1:1000 16:10000 256:40000"}
BASE_PORT=${BASE_PORT:-23790}
DATA=$(mktemp -d -t rsm-etcd-XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT

cluster=""
for i in 1 2 3; do
    cluster+="${cluster:+,}e$i=http://127.0.0.1:$((BASE_PORT + 10 * i + 1))"
done
for i in 1 2 3; do
    client=$((BASE_PORT + 10 * i))
    peer=$((client + 1))
    etcd --name "e$i" --data-dir "$DATA/e$i" \
        --listen-client-urls "http://127.0.0.1:$client" \
        --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$cluster" --initial-cluster-state new \
        --log-level error >"$DATA/e$i.log" 2>&1 &
    PIDS+=($!)
done

endpoints=""
for i in 1 2 3; do endpoints+="${endpoints:+,}127.0.0.1:$((BASE_PORT + 10 * i))"; done
leader=""
for _ in $(seq 1 100); do
    leader=$(etcdctl --endpoints "$endpoints" endpoint status 2>/dev/null \
        | awk -F', ' '$5 == "true" { print $1 }' | head -n1) || true
    [ -n "$leader" ] && break
    sleep 0.2
done
[ -n "$leader" ] || { echo "etcd elected no leader" >&2; exit 1; }
echo "etcd $(etcd --version | head -n1 | awk '{print $3}') leader at $leader"

for run in $OPS; do
    "$LOAD" --etcd "$leader" --clients "${run%%:*}" --ops "${run##*:}" --value-size 100
done
