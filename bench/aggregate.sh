#!/usr/bin/env bash
# Aggregation targets of issue 16 item 5, one per run (benches/aggregate_targets.rs):
#   a  aggregated list over CLUSTERS (100) x SERVICES (200): p50 minus the slowest member's
#      own p50 (measured directly in the same run), vs +5 ms; also kubeplex's CPU per list.
#      PERF=file adds a perf profile of kubeplex over ROUNDS more lists (PERF_G=1: with
#      call graphs)
#   b  cached aggregated lists: requests/s (wrk, CONNECTIONS 32, SECONDS 5), vs 20,000
#   c  merged watch over CLUSTERS members: write -> client p50 / p99 (WATCH_ROUNDS 300), vs 5 ms
# The simulated clusters and the client run in the bench process, kubeplex (release binary,
# 2 workers) in its own. Prints `uptime` first (the machine is shared).
#
# usage: bench/aggregate.sh a|b|c    (env: CLUSTERS, SERVICES, ROUNDS, CONNECTIONS, SECONDS,
#                                     WATCH_ROUNDS, KUBEPLEX_BIN, PERF, PERF_G)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: bench/aggregate.sh a|b|c}
uptime
# The build that ships (bench/pgo.sh build) unless KUBEPLEX_BIN names another.
export KUBEPLEX_BIN=${KUBEPLEX_BIN:-$("$root/bench/pgo.sh" build)}
TARGET=$target cargo bench --quiet --manifest-path "$root/Cargo.toml" --bench aggregate_targets
