#!/usr/bin/env bash
# Profile-guided optimization of the release binary (issue 16): the build that ships
# (docker/Dockerfile) and that the benchmarks measure.
#
#   bench/pgo.sh build   builds target/pgo/release/kubeplex with the committed profile
#                        (pgo/kubeplex.profdata) and prints its path. Only rustc is needed.
#                        Without the profile it builds and prints target/release/kubeplex.
#   bench/pgo.sh train   makes pgo/kubeplex.profdata again: an instrumented build
#                        (target/pgo-generate), run under the benchmarks' loads, its counters
#                        merged with llvm-profdata. Run it after changing the request path.
#
# The training covers what kubeplex serves, so that no route is laid out as cold code: the
# header route (1.2 KB and 7.7 MB answers) and the path route over HTTP to the anchors'
# stand-in API server; the core and plugin routes over TLS (bench/plugin-proxy.sh); the
# identity bench's `mode: none` and `mode: jwt`; aggregated lists, cached lists and merged
# watches (bench/aggregate.sh a, b, c on 10 clusters); watches and WebSocket tunnels
# (bench/watches.sh, small counts). Each kubeplex is stopped with SIGTERM, as a deployment
# stops it, and writes its counters as it exits.
#
# A profile made from older code still builds: functions whose code changed since get no
# profile (LLVM skips them) and are optimized as without PGO.
#
# usage: bench/pgo.sh build|train   (env LLVM_PROFDATA for train: an llvm-profdata that
#                                    reads this rustc's raw profiles; default: the newest
#                                    /usr/lib/llvm-*/bin/llvm-profdata, llvm-19 installed
#                                    from apt if there is none from 19 on)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
profile=$root/pgo/kubeplex.profdata

build() {
  if [ ! -f "$profile" ]; then
    echo "bench/pgo.sh: no $profile, building without it" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" >&2
    echo "$root/target/release/kubeplex"
    return
  fi
  stale
  RUSTFLAGS="-Cprofile-use=$profile" CARGO_TARGET_DIR="$root/target/pgo" \
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" >&2
  echo "$root/target/pgo/release/kubeplex"
}

# Says on stderr how many commits changed the code (src/, vendor/) since the profile was
# committed, when any did: their functions build without the profile.
stale() {
  local at n
  at=$(git -C "$root" log -1 --format=%H -- pgo/kubeplex.profdata 2>/dev/null) || return 0
  [ -n "$at" ] || return 0
  n=$(git -C "$root" rev-list --count "$at..HEAD" -- src vendor 2>/dev/null) || return 0
  if [ "$n" -gt 0 ]; then
    echo "bench/pgo.sh: $n commit(s) changed src/ or vendor/ since the profile was made;" \
      "the functions they changed build without it (bench/pgo.sh train makes it again)" >&2
  fi
}

profdata() {
  if [ -n "${LLVM_PROFDATA:-}" ]; then echo "$LLVM_PROFDATA"; return; fi
  local v
  for v in $(ls /usr/lib | sed -n 's/^llvm-\([0-9]*\)$/\1/p' | sort -rn); do
    if [ "$v" -ge 19 ] && [ -x "/usr/lib/llvm-$v/bin/llvm-profdata" ]; then
      echo "/usr/lib/llvm-$v/bin/llvm-profdata"
      return
    fi
  done
  apt-get install -y -qq llvm-19 >/dev/null
  echo /usr/lib/llvm-19/bin/llvm-profdata
}

# The header and path routes over HTTP: the anchors' stand-in API server (nginx) and
# bench/kubeplex-bench.yaml, as bench/proxy.sh runs them.
http_routes() {
  local bin=$1 anchors=$root/../shared/bench/anchors work=/tmp/kubeplex-anchors tmp up kp
  command -v wrk >/dev/null && command -v nginx >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null; }
  [ -f "$work/www/api/v1/bigservices" ] || python3 "$anchors/make-fixtures.py" "$work"
  tmp=$(mktemp -d)
  sed -e "s#@TMP@#$tmp#g" -e "s#@WWW@#$work/www#g" "$anchors/nginx-upstream.conf.in" >"$tmp/up.conf"
  nginx -c "$tmp/up.conf" >/dev/null 2>&1 &
  up=$!
  RUST_LOG=info "$bin" --config "$root/bench/kubeplex-bench.yaml" serve 2>/dev/null &
  kp=$!
  for port in 9000 7077; do
    for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  done
  local auth='Authorization: Bearer bench-token' base=http://127.0.0.1:7077/api/kubernetes
  wrk -t1 -c32 -d8s -H "$auth" "$base/proxy/api/v1/services" | grep -E 'Requests/sec|Non-2xx' || true
  wrk -t1 -c32 -d2s -H "$auth" "$base/clusters/bench/api/v1/services" | grep -E 'Requests/sec|Non-2xx' || true
  wrk -t1 -c8 -d3s -H "$auth" "$base/proxy/api/v1/bigservices" | grep -E 'Requests/sec|Non-2xx' || true
  kill -TERM "$kp"
  wait "$kp" || true
  kill "$up"
  wait "$up" 2>/dev/null || true
  rm -rf "$tmp"
}

train() {
  local dir=$root/target/pgo-profiles gen=$root/target/pgo-generate/release/kubeplex tool
  tool=$(profdata)
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "== instrumented build (target/pgo-generate)"
  RUSTFLAGS="-Cprofile-generate=$dir" CARGO_TARGET_DIR="$root/target/pgo-generate" \
    cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  # The build scripts wrote profiles too: only kubeplex's are kept.
  rm -f "$dir"/*.profraw
  export LLVM_PROFILE_FILE="$dir/kubeplex-%m.profraw" KUBEPLEX_BIN=$gen
  echo "== header and path routes over HTTP"
  http_routes "$gen"
  echo "== core and plugin routes over TLS"
  "$root/bench/plugin-proxy.sh" 2 1
  echo "== identity (mode none and jwt)"
  env SECONDS=2 ROUNDS=2 FRESH=2000 cargo bench --quiet --manifest-path "$root/Cargo.toml" --bench identity
  echo "== aggregation"
  CLUSTERS=10 SERVICES=50 ROUNDS=15 "$root/bench/aggregate.sh" a
  env CLUSTERS=10 SERVICES=50 SECONDS=2 "$root/bench/aggregate.sh" b
  CLUSTERS=10 SERVICES=50 WATCH_ROUNDS=100 "$root/bench/aggregate.sh" c
  echo "== watches and tunnels"
  WATCHES=300 TUNNELS=300 SETTLE=3 IDLE=1 "$root/bench/watches.sh"
  mkdir -p "$(dirname "$profile")"
  "$tool" merge --sparse -o "$profile" "$dir"/*.profraw
  echo "wrote $profile ($(du -h "$profile" | cut -f1)) from $(ls "$dir"/*.profraw | wc -l) raw profiles"
}

case "${1:-}" in
  build) build ;;
  train) train ;;
  *) echo "usage: bench/pgo.sh build|train" >&2; exit 2 ;;
esac
