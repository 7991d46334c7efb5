#!/usr/bin/env bash
# Many watches and idle tunnels (issue 16, item 3): benches/watches.rs with the open-file
# limit raised to 20000 (kubeplex holds two sockets per watch or tunnel). Prints, for 1000,
# 2000 and 5000 watches with events flowing, kubeplex's RSS per watch against 20 KB and
# the p99 of ordinary GETs against 10 ms; for 5000 idle WebSocket tunnels, the RSS per
# tunnel against 30 KB. Prints `uptime` first: the machine's load is part of the figures.
#
# usage: bench/watches.sh   (env WATCHES=1000,2000,5000 TUNNELS=5000 RATE=50 SETTLE=15
#                            IDLE=3 KUBEPLEX_BIN; CARGO_TARGET_DIR as for cargo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ulimit -n 20000
echo "$(date -u +%FT%TZ) load:$(uptime | sed 's/.*load average//')"
# The build that ships (bench/pgo.sh build) unless KUBEPLEX_BIN names another.
export KUBEPLEX_BIN=${KUBEPLEX_BIN:-$("$root/bench/pgo.sh" build)}
cargo bench --quiet --manifest-path "$root/Cargo.toml" --bench watches
