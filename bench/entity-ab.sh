#!/usr/bin/env bash
# kubeplex builds side by side on Backstage's entity route (SPEC §10), uncached: each build in
# turn serves the embedded default (simulated clusters in its own process) with
# `kubeplex.aggregate.cacheTtl: 0s`, and wrk (one thread, 4 connections) posts
# `POST {base}/services/checkout {"entity": ...}` for SECONDS; printed per round and build:
# requests, p50 and the process's CPU per request (kubeplex and its simulated clusters, which
# answer the fan-out). Use it to check that a build (e.g. one with a new PGO profile) does not
# slow the entity routes, which bench/pgo.sh does not train on.
#
# usage: bench/entity-ab.sh SECONDS ROUNDS NAME=BINARY [NAME=BINARY...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:?seconds}
rounds=${2:?rounds}
shift 2
[ $# -ge 1 ] || { echo "give at least one NAME=BINARY" >&2; exit 2; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
tmp=$(mktemp -d)
kp=
trap 'kill $kp 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
printf 'kubeplex:\n  aggregate:\n    cacheTtl: 0s\n' >"$tmp/nocache.yaml"
cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"entity":{"kind":"Component","metadata":{"name":"checkout"}}}'
wrk.headers["Content-Type"] = "application/json"
LUA
url=http://127.0.0.1:7098/api/kubernetes/services/checkout
hz=$(getconf CLK_TCK)
echo "load$(uptime | sed 's/.*load average//'); ${secs} s per build, ${rounds} rounds"
for r in $(seq "$rounds"); do
  for nb in "$@"; do
    name=${nb%%=*}
    bin=${nb#*=}
    KUBEPLEX_SERVER_LISTEN=127.0.0.1:7098 RUST_LOG=warn "$bin" \
      --config "$root/config/default.yaml" --config "$tmp/nocache.yaml" serve 2>"$tmp/log" &
    kp=$!
    for _ in $(seq 300); do curl -sf -o /dev/null http://127.0.0.1:7098/readyz && break; sleep 0.1; done
    wrk -t1 -c4 -d1s -s "$tmp/post.lua" "$url" >/dev/null
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$kp/stat")
    out=$(wrk -t1 -c4 -d"${secs}s" --latency -s "$tmp/post.lua" "$url")
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$kp/stat")
    kill $kp
    wait $kp 2>/dev/null || true
    kp=
    n=$(awk '/requests in/{print $1}' <<<"$out")
    bad=$(awk '/Non-2xx/{print $5}' <<<"$out")
    printf 'round %d %-10s requests=%-6s p50=%-8s CPU ms/request=%s non-2xx=%s\n' "$r" "$name" "$n" \
      "$(awk '$1=="50%"{print $2}' <<<"$out")" \
      "$(awk -v n="$n" -v t=$((u1 - u0 + s1 - s0)) -v k="$hz" 'BEGIN{printf "%.3f", t / k * 1000 / n}')" "${bad:-0}"
  done
done
