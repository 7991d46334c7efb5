#!/usr/bin/env bash
# kubeplex builds side by side against nginx as a reverse proxy, in interleaved rounds: the
# CPU each spends per proxied request (user and system time from /proc/{pid}/stat around a
# wrk run), its requests per CPU-second and that over nginx's in the same round. The load is
# issue 16's item 1 (the 1.2 KB body, 32 connections, one worker each) on the anchors'
# stand-in API server (../shared/bench/anchors: nginx-upstream.conf.in, nginx.conf.in).
# Each build starts fresh in each round, at the default log level unless RUST_LOG says
# otherwise, with bench/kubeplex-bench.yaml. Use it to compare two builds on a machine whose
# speed drifts between runs (round by round, against the same nginx).
#
# usage: bench/cpu-ab.sh SECONDS ROUNDS NAME=BINARY [NAME=BINARY...]
#   e.g. bench/cpu-ab.sh 5 3 before=/tmp/kubeplex-old after=target/release/kubeplex
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchors=${ANCHORS:-$root/../shared/bench/anchors}
secs=${1:?seconds}
rounds=${2:?rounds}
shift 2
[ $# -ge 1 ] || { echo "give at least one NAME=BINARY" >&2; exit 2; }
www=${WWW:-/tmp/kubeplex-anchors/www}
[ -f "$www/api/v1/services" ] || { echo "no $www/api/v1/services: run bench/proxy.sh (or the anchors' run.sh) once first" >&2; exit 2; }
tmp=$(mktemp -d)
sed -e "s#@TMP@#$tmp#g" -e "s#@WWW@#$www#g" "$anchors/nginx-upstream.conf.in" >"$tmp/upstream.conf"
mkdir -p "$tmp/p"
sed -e "s#@TMP@#$tmp/p#g" "$anchors/nginx.conf.in" >"$tmp/proxy.conf"
nginx -c "$tmp/upstream.conf" >/dev/null 2>&1 &
up=$!
nginx -c "$tmp/proxy.conf" >/dev/null 2>&1 &
px=$!
kp=
trap 'kill $up $px $kp 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
wait_port 9000
wait_port 9001
worker=$(pgrep -P $px nginx | head -1)
auth='Authorization: Bearer bench-token'
nginx_rate=0
# name pid url: one line, and the rate in $rate
measure() {
  wrk -t1 -c32 -d1s -H "$auth" "$3" >/dev/null
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$2/stat")
  wrk -t1 -c32 -d"${secs}s" --latency -H "$auth" "$3" >"$tmp/wrk"
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$2/stat")
  local n p99 tck
  n=$(awk '/requests in/{print $1}' "$tmp/wrk")
  p99=$(awk '$1=="99%"{print $2}' "$tmp/wrk")
  tck=$(getconf CLK_TCK)
  rate=$(awk -v n="$n" -v t=$((u1 - u0 + s1 - s0)) -v k="$tck" 'BEGIN{printf "%.0f", n / (t / k)}')
  awk -v name="$1" -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v k="$tck" -v p99="$p99" -v r="$rate" -v base="$nginx_rate" \
    'BEGIN{printf "%-12s requests=%-7d user=%5.2f µs sys=%5.2f µs req/CPU-s=%-6d p99=%-7s", name, n, u/k*1e6/n, s/k*1e6/n, r, p99;
           if (base > 0) printf " ÷ nginx %.2f", r/base; printf "\n"}'
}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $secs s per target, $rounds rounds"
for round in $(seq "$rounds"); do
  echo "round $round"
  nginx_rate=0
  measure nginx "$worker" http://127.0.0.1:9001/api/kubernetes/proxy/api/v1/services
  nginx_rate=$rate
  for build in "$@"; do
    name=${build%%=*}
    bin=${build#*=}
    RUST_LOG=${RUST_LOG:-info} "$bin" --config "$root/bench/kubeplex-bench.yaml" serve 2>"$tmp/$name.log" &
    kp=$!
    wait_port 7077
    measure "$name" "$kp" http://127.0.0.1:7077/api/kubernetes/proxy/api/v1/services
    kill $kp
    wait $kp 2>/dev/null || true
    kp=
  done
done
