#!/usr/bin/env bash
# The floor under item 1 (issue 16): how much of kubeplex's cost per request is the HTTP
# layer it is built on. Three anchor runs (../shared/bench/anchors/run.sh, small body, 32
# connections), each with PROJECT_URL at one of:
#   floor-static  actix-web alone answering with the stand-in's 1.2 KB body (examples/floor.rs)
#   floor-proxy   actix-web + hyper-util's client forwarding verbatim, nothing else
#   kubeplex      the release binary, one worker, default log level
# All three run one worker, as nginx (1 worker process) and HAProxy (1 thread) do. Prints,
# per run, nginx's and the target's requests per CPU-second and their ratio.
#
# usage: bench/floor.sh [SECONDS]    (env ANCHORS: path to run.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchors=${ANCHORS:-$root/../shared/bench/anchors/run.sh}
secs=${1:-5}
work=${ANCHORS_WORK:-/tmp/kubeplex-anchors}
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bins --example floor
[ -f "$work/www/api/v1/services" ] || python3 "$(dirname "$anchors")/make-fixtures.py" "$work"
uptime
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
"$root/target/release/examples/floor" static 127.0.0.1:7081 "$work/www/api/v1/services" & pids+=($!)
"$root/target/release/examples/floor" proxy 127.0.0.1:7082 http://127.0.0.1:9000 & pids+=($!)
RUST_LOG=${RUST_LOG:-info} "$root/target/release/kubeplex" --config "$root/bench/kubeplex-bench.yaml" serve \
  2>"${KUBEPLEX_LOG:-/tmp/kubeplex-bench.log}" & pids+=($!)
for port in 7081 7082 7077; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
for target in floor-static:http://127.0.0.1:7081 floor-proxy:http://127.0.0.1:7082/api/kubernetes/proxy \
  kubeplex:http://127.0.0.1:7077/api/kubernetes/proxy; do
  name=${target%%:*}
  PROJECT_URL=${target#*:} "$anchors" "$secs" 32 | awk -v name="$name" '
    { print }
    $2 ~ /^rps=/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[$1, kv[1]] = kv[2] } }
    END { printf "floor (%s): req/cpu-s %s, nginx %s, ratio %.2f; p99 %s, nginx %s\n\n", name,
      f["project", "req/cpu-s"], f["nginx", "req/cpu-s"], f["project", "req/cpu-s"] / f["nginx", "req/cpu-s"],
      f["project", "p99"], f["nginx", "p99"] }'
done
