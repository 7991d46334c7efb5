#!/usr/bin/env bash
# HTTP/2 to clusters (issue 16 item 4): kubeplex (release) in front of one simulated cluster
# over HTTPS (`kubeplex sim --tls-self-signed`, which offers h2 and http/1.1 by ALPN, as an
# API server does), defined twice: cluster `h2` (HTTP/2, the default) and cluster `h1`
# (the same server with `http2: false`: HTTP/1.1).
#
# 1. Watches: for each N and each cluster, a fresh kubeplex; N concurrent watches (raw
#    HTTP/1.1 client connections to kubeplex, one watch each) on ConfigMaps; once every
#    watch has its response head (so its upstream watch is open), prints the upstream
#    connections kubeplex holds to the sim (ss, established, to the sim's port), watches
#    per upstream connection, kubeplex's open files (ls /proc/PID/fd | wc -l) and RSS
#    (VmRSS); then one ConfigMap is created and the time until every watch has its ADDED
#    event is printed (fan-out through kubeplex, for both protocols).
# 2. Small bodies: wrk -t1 -c32 against /api/v1/namespaces of each cluster through one
#    kubeplex: requests/s and requests per CPU-second of kubeplex's process, counted as
#    ../shared/bench/anchors/run.sh counts them (utime+stime ticks before and after).
#
# usage: bench/watches-h2.sh [N ...]   (default: 1000 5000)
#   env SECS (wrk seconds, default 5), CONNS (wrk connections, default 32), RUST_LOG
#   (kubeplex's, default info: one audit line per request, as bench/proxy.sh)
# Needs python3, ss, wrk. Raises the open-file limit to 20000 (the watches need 2 per N).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release/kubeplex
counts=("${@:-1000 5000}")
read -r -a counts <<<"${counts[*]}"
secs=${SECS:-5}
conns=${CONNS:-32}
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT

# Waits until file $1 has a line matching $2; prints the line.
wait_line() {
  for _ in $(seq 300); do
    if grep -m1 "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "no line matching $2 in $1" >&2
  cat "$1" >&2
  return 1
}

"$bin" --log-format json sim --listen 127.0.0.1:0 --tls-self-signed \
  --kubeconfig-out "$tmp/sim-kubeconfig.yaml" 2>"$tmp/sim.log" &
pids+=($!)
sim_url=$(wait_line "$tmp/sim.log" '"url"' | python3 -c 'import json,sys; print(json.load(sys.stdin)["fields"]["url"])')
sim_url=${sim_url%/}
sim_port=${sim_url##*:}
for _ in $(seq 100); do [ -s "$tmp/sim-kubeconfig.yaml" ] && break; sleep 0.1; done
ca=$(awk '/certificate-authority-data:/{print $2; exit}' "$tmp/sim-kubeconfig.yaml")
cat >"$tmp/kubeplex.yaml" <<EOF
kubeplex:
  server:
    listen: 127.0.0.1:0
    probeInterval: 0s
kubernetes:
  clusterLocatorMethods:
    - type: config
      clusters:
        - name: h2
          url: $sim_url
          caData: $ca
        - name: h1
          url: $sim_url
          caData: $ca
          http2: false
EOF

kp_pid=
kp_addr=
start_kubeplex() {
  RUST_LOG=${RUST_LOG:-info} "$bin" --log-format json --config "$tmp/kubeplex.yaml" serve \
    2>"$tmp/kubeplex.log" &
  kp_pid=$!
  pids+=("$kp_pid")
  kp_addr=$(wait_line "$tmp/kubeplex.log" 'kubeplex listening' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["fields"]["addr"])')
}
stop_kubeplex() {
  kill "$kp_pid" 2>/dev/null || true
  wait "$kp_pid" 2>/dev/null || true
}
upstream_conns() { ss -Htn state established "( dport = :$sim_port )" | wc -l; }
rss_mib() { awk '/VmRSS/{printf "%.1f", $2 / 1024}' "/proc/$kp_pid/status"; }
fds() { ls "/proc/$kp_pid/fd" | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$kp_pid/stat"; }

# The watch client: opens N watches through kubeplex, waits for every response head,
# signals (prints "open"), waits for a line on stdin, then reads until every watch has an
# ADDED event and prints the seconds that took.
cat >"$tmp/watches.py" <<'EOF'
import asyncio, sys, time
host, port = sys.argv[1].rsplit(":", 1)
cluster, n = sys.argv[2], int(sys.argv[3])
path = (f"/api/kubernetes/clusters/{cluster}/api/v1/namespaces/default/configmaps"
        "?watch=1&fieldSelector=metadata.name%3Dbench-watched")
req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
async def open_one(sem):
    async with sem:
        r, w = await asyncio.open_connection(host, int(port))
        w.write(req)
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        return r, w
async def added(r):
    buf = b""
    while b"ADDED" not in buf:
        chunk = await r.read(65536)
        assert chunk, "watch ended"
        buf += chunk
async def main():
    sem = asyncio.Semaphore(200)
    socks = await asyncio.gather(*(open_one(sem) for _ in range(n)))
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    t = time.monotonic()
    await asyncio.gather(*(added(r) for r, _ in socks))
    print(f"fanout {time.monotonic() - t:.3f}", flush=True)
    for _, w in socks:
        w.close()
asyncio.run(main())
EOF

echo "# $(date -u +%FT%TZ) $(uptime)"
echo "== watches: N concurrent watches through kubeplex to one TLS cluster"
printf '%-6s %-6s %-10s %-12s %-10s %-9s %-10s\n' N proto upstream watch/conn fds rss_MiB fanout_s
run=0
for n in "${counts[@]}"; do
  for cluster in h2 h1; do
    run=$((run + 1))
    start_kubeplex
    coproc W { python3 "$tmp/watches.py" "$kp_addr" "$cluster" "$n"; }
    read -r line <&"${W[0]}"
    [ "$line" = open ] || { echo "watch client: $line" >&2; exit 1; }
    up=$(upstream_conns)
    f=$(fds)
    r=$(rss_mib)
    curl -s -o /dev/null -H 'content-type: application/json' \
      -d "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"bench-watched\"}}" \
      "http://$kp_addr/api/kubernetes/clusters/$cluster/api/v1/namespaces/default/configmaps"
    echo go >&"${W[1]}"
    read -r _ fan <&"${W[0]}"
    wait "$W_PID" 2>/dev/null || true
    curl -s -o /dev/null -X DELETE \
      "http://$kp_addr/api/kubernetes/clusters/$cluster/api/v1/namespaces/default/configmaps/bench-watched"
    printf '%-6s %-6s %-10s %-12s %-10s %-9s %-10s\n' "$n" "$cluster" "$up" \
      "$(awk -v n="$n" -v u="$up" 'BEGIN{ if (u > 0) printf "%.1f", n / u; else print "-" }')" \
      "$f" "$r" "$fan"
    stop_kubeplex
  done
done

echo "== small bodies: wrk -t1 -c$conns -d${secs}s, /api/v1/namespaces of the TLS cluster through kubeplex"
start_kubeplex
hz=$(getconf CLK_TCK)
for cluster in h2 h1; do
  url="http://$kp_addr/api/kubernetes/clusters/$cluster/api/v1/namespaces"
  wrk -t1 -c"$conns" -d1s "$url" >/dev/null 2>&1 # warm the pools
  c0=$(cpu_ticks)
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$url" 2>&1)
  c1=$(cpu_ticks)
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/{print $5}' <<<"$out")
  cps=$(awk -v n="$reqs" -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN{ if (t > 0) printf "%.0f", n / (t / hz); else print "-" }')
  printf '%-4s rps=%-10s p50=%-9s p99=%-9s non2xx=%-6s req/cpu-s=%-8s upstream_conns=%s\n' \
    "$cluster" "$rps" "$p50" "$p99" "${bad:-0}" "$cps" "$(upstream_conns)"
done
echo "kubeplex peak RSS: $(awk '/VmHWM/{print $2, $3}' "/proc/$kp_pid/status")"
stop_kubeplex
