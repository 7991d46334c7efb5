#!/usr/bin/env bash
# Proxy benchmark: builds kubeplex (`bench/pgo.sh build`), starts it with one cluster `bench` at the
# stand-in API server (http://127.0.0.1:9000), and runs ../shared/bench/anchors/run.sh with
# PROJECT_URL set: the 1.2 KB body at 32 connections and the 7.7 MB body at 8 connections.
# Prints the anchor tables, the ratios issue 16 judges items 1 and 2 by (small body: kubeplex's
# requests per CPU-second over nginx's, its p99 over the best anchor's; large body: its
# requests/s over the direct run's, its requests per CPU-second over the best anchor's), and
# kubeplex's peak RSS (VmHWM) over the whole run.
# kubeplex runs at the default log level (`info`: one audit line per request, written off
# the request path) unless RUST_LOG says otherwise; its log goes to $KUBEPLEX_LOG.
#
# With SCRAPE=1, /metrics is scraped once a second while the load runs (as a Prometheus
# with a 1s interval would).
#
# kubeplex runs one worker, as the anchors do (WORKERS=2 for two).
#
# kubeplex is the build that ships (`bench/pgo.sh build`: the release profile with the
# committed PGO profile) unless KUBEPLEX_BIN names another.
#
# usage: bench/proxy.sh [SECONDS]    (env ANCHORS: path to run.sh; RUST_LOG; KUBEPLEX_LOG; SCRAPE; WORKERS; KUBEPLEX_BIN)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchors=${ANCHORS:-$root/../shared/bench/anchors/run.sh}
secs=${1:-5}
bin=${KUBEPLEX_BIN:-$("$root/bench/pgo.sh" build)}
log=${KUBEPLEX_LOG:-/tmp/kubeplex-bench.log}
config=$(mktemp --suffix .yaml)
sed "s/^    workers: 1$/    workers: ${WORKERS:-1}/" "$root/bench/kubeplex-bench.yaml" >"$config"
RUST_LOG=${RUST_LOG:-info} "$bin" --config "$config" serve 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$config"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/7077) 2>/dev/null && break; sleep 0.1; done
if [ "${SCRAPE:-0}" = 1 ]; then
  (while kill -0 $pid 2>/dev/null; do curl -s -o /dev/null http://127.0.0.1:7077/metrics; sleep 1; done) &
  scraper=$!
  trap 'kill $pid $scraper 2>/dev/null; rm -f "$config"' EXIT
fi
export PROJECT_URL=http://127.0.0.1:7077/api/kubernetes/proxy
# judge SMALL|LARGE < run.sh output: the ratios issue 16 judges by (items 1 and 2).
judge() {
  awk -v what="$1" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    { print }
    $1 != "" && $2 ~ /^rps=/ {
      name = $1; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[name, kv[1]] = kv[2] }
      if (name != "direct" && name != "project") anchors[name] = 1
    }
    END {
      best_cps = 0; best_p99 = 1e18
      for (a in anchors) {
        if (f[a, "req/cpu-s"] + 0 > best_cps) { best_cps = f[a, "req/cpu-s"] + 0; best_cps_name = a }
        if (ms(f[a, "p99"]) < best_p99) { best_p99 = ms(f[a, "p99"]); best_p99_name = a }
      }
      if (f["project", "req/cpu-s"] == "") exit
      if (what == "SMALL") {
        printf "judged (item 1): kubeplex req/cpu-s / nginx = %.2f (target >= 1); kubeplex p99 / best anchor p99 (%s) = %.2f (target <= 1.2)\n",
          f["project", "req/cpu-s"] / f["nginx", "req/cpu-s"], best_p99_name, ms(f["project", "p99"]) / best_p99
      } else {
        printf "judged (item 2): kubeplex rps / direct = %.3f (target >= 0.9); kubeplex req/cpu-s / best anchor (%s) = %.2f (target > 1)\n",
          f["project", "ratio"], best_cps_name, f["project", "req/cpu-s"] / best_cps
      }
    }'
}
echo "== 1.2 KB body (/api/v1/services), 32 connections, ${secs}s"
bash "$anchors" "$secs" 32 /api/v1/services | judge SMALL
echo "== 7.7 MB body (/api/v1/bigservices), 8 connections, ${secs}s"
bash "$anchors" "$secs" 8 /api/v1/bigservices | judge LARGE
echo "kubeplex peak RSS: $(awk '/VmHWM/{print $2, $3}' /proc/$pid/status)"
echo "kubeplex log lines (RUST_LOG=${RUST_LOG:-info}): $(wc -l <"$log")"
if [ "${SCRAPE:-0}" = 1 ]; then
  echo "requests kubeplex counted: $(curl -s http://127.0.0.1:7077/metrics | awk '/^kubeplex_requests_total/ {s += $2} END {print s}')"
fi
