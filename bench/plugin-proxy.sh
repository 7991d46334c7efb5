#!/usr/bin/env bash
# Plugin proxy benchmark (SPEC §7, issue 13): the plugin route
# (/api/proxy/plugin/bench/api/...) against the core proxy route (/api/kubernetes/proxy/...)
# in the same run, both forwarding to the same HTTPS upstream (nginx with a certificate from
# a CA made here with openssl, serving the anchor fixtures): the cluster `bench` is
# https://127.0.0.1:9443 with that CA as caFile; the plugin entry (`via: direct`,
# `authorization: UserToken`) is web.bench.svc.cluster.local:9443, verified with that CA as
# the service CA bundle and resolved to 127.0.0.1:9443 by `resolve`. Both carry the same
# `Authorization: Bearer` header (rule 3 on the core route, the caller's token for
# UserToken).
#
# wrk (one thread) runs the two routes alternately, ROUNDS times each, for the 1.2 KB body
# at 32 connections and the 7.7 MB body at 8. Printed per route: requests/s (mean of the
# rounds), p99 (worst round), and requests per CPU-second of the kubeplex process (its
# utime+stime from /proc over all rounds; nginx and wrk are not counted), then the plugin
# route's ratio to the core route's for both. kubeplex is the release build at the default
# log level (`info`: one audit line per request) unless RUST_LOG says otherwise.
#
# With CALLGRIND=1, kubeplex runs under valgrind's callgrind instead, and what is printed
# is its instructions per request on each route (counters zeroed after a warm-up, then
# `wrk -c4` for SECONDS on one route, dumped, the same on the other): a figure that does not
# move with the machine's load, as requests/s and CPU time on a shared machine do.
#
# usage: bench/plugin-proxy.sh [SECONDS] [ROUNDS]   (defaults 5 and 3)
#   env ANCHORS_WORK (fixtures, default /tmp/kubeplex-anchors), RUST_LOG, KUBEPLEX_LOG,
#   CALLGRIND=1, KUBEPLEX_BIN (default: the build that ships, `bench/pgo.sh build`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchors=$root/../shared/bench/anchors
secs=${1:-5}
rounds=${2:-3}
work=${ANCHORS_WORK:-/tmp/kubeplex-anchors}
command -v wrk >/dev/null && command -v nginx >/dev/null ||
  { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null; }
[ -f "$work/www/api/v1/bigservices" ] || python3 "$anchors/make-fixtures.py" "$work"
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$tmp"' EXIT

# A CA and the Service's certificate (the Service name and 127.0.0.1, for the cluster URL).
host=web.bench.svc.cluster.local
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench-service-ca -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=$host" -keyout "$tmp/svc.key" -out "$tmp/svc.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$host" >"$tmp/ext"
openssl x509 -req -in "$tmp/svc.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 2 -extfile "$tmp/ext" -out "$tmp/svc.crt" 2>/dev/null

cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log stderr warn;
pid $tmp/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:9443 ssl;
    ssl_certificate $tmp/svc.crt;
    ssl_certificate_key $tmp/svc.key;
    root $work/www;
    location / { try_files \$uri =404; }
  }
}
EOF
nginx -c "$tmp/nginx.conf" >"$tmp/nginx.log" 2>&1 & pids+=($!)

cat >"$tmp/kubeplex.yaml" <<EOF
kubeplex:
  server:
    listen: 127.0.0.1:7078
  pluginProxy:
    serviceCaFile: $tmp/ca.crt
    resolve:
      "$host:9443": "127.0.0.1:9443"
    plugins:
      - name: bench
        proxy:
          - alias: api
            authorization: UserToken
            endpoint:
              type: Service
              service: {name: web, namespace: bench, port: 9443}
kubernetes:
  clusterLocatorMethods:
    - type: config
      clusters:
        - name: bench
          url: https://127.0.0.1:9443
          caFile: $tmp/ca.crt
EOF
log=${KUBEPLEX_LOG:-/tmp/kubeplex-plugin-bench.log}
bin=${KUBEPLEX_BIN:-$("$root/bench/pgo.sh" build)}
if [ -n "${CALLGRIND:-}" ]; then
  RUST_LOG=${RUST_LOG:-info} valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.%p" \
    "$bin" --config "$tmp/kubeplex.yaml" serve 2>"$log" & kp=$!
else
  RUST_LOG=${RUST_LOG:-info} "$bin" --config "$tmp/kubeplex.yaml" serve 2>"$log" & kp=$!
fi
pids+=($kp)
for port in 9443 7078; do
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$kp/stat"; }
hdr=(-H 'Authorization: Bearer bench-token' -H 'X-Kubernetes-Cluster: bench')
core=http://127.0.0.1:7078/api/kubernetes/proxy
plugin=http://127.0.0.1:7078/api/proxy/plugin/bench/api
# Both routes must answer 200 before anything is measured.
for u in "$core/api/v1/services" "$plugin/api/v1/services"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "${hdr[@]}" "$u")
  [ "$code" = 200 ] || { echo "$u answered $code"; cat "$log"; exit 1; }
done

if [ -n "${CALLGRIND:-}" ]; then
  # instructions NAME URL -> instructions per request over SECONDS of wrk -c4
  instructions() {
    local out reqs before after
    wrk -t1 -c4 -d2s "${hdr[@]}" "$2" >/dev/null 2>&1   # warm-up: connections, pools
    callgrind_control -z "$kp" >/dev/null 2>&1
    out=$(wrk -t1 -c4 -d"${secs}s" "${hdr[@]}" "$2" 2>&1)
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    before=$(ls "$tmp"/cg.* 2>/dev/null | wc -l)
    callgrind_control -d "$1" "$kp" >/dev/null 2>&1
    for _ in $(seq 100); do
      after=$(ls "$tmp"/cg.* 2>/dev/null | wc -l)
      [ "$after" -gt "$before" ] && break
      sleep 0.1
    done
    sleep 0.5
    local f total
    f=$(ls -t "$tmp"/cg.* | head -1)
    total=$(awk '/^summary:|^totals:/{print $2; exit}' "$f")
    printf '%-8s %s requests, %s instructions, %.0f per request\n' "$1" "$reqs" "$total" \
      "$(awk -v t="$total" -v n="$reqs" 'BEGIN{print t / n}')"
  }
  echo "== instructions per request under callgrind, 1.2 KB body, 4 connections, ${secs}s"
  instructions core "$core/api/v1/services"
  instructions plugin "$plugin/api/v1/services"
  instructions core "$core/api/v1/services"
  instructions plugin "$plugin/api/v1/services"
  exit 0
fi

# measure NAME URL CONNECTIONS -> appends "rps p99ms requests ticks" to $tmp/NAME
measure() {
  local out t0 t1 rps reqs p99
  t0=$(ticks)
  out=$(wrk -t1 -c"$3" -d"${secs}s" --latency "${hdr[@]}" "$2" 2>&1)
  t1=$(ticks)
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  p99=$(awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) sub(/ms$/,"",v); else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  bad=$(awk '/Non-2xx/{print $5}' <<<"$out")
  [ -z "$bad" ] || { echo "$1: $bad non-2xx answers"; exit 1; }
  echo "$rps $p99 $reqs $((t1 - t0))" >>"$tmp/$1"
}

# summary NAME -> "mean_rps worst_p99 req_per_cpu_s"
summary() {
  awk -v hz="$hz" '{r += $1; n++; if ($2 > p) p = $2; q += $3; t += $4}
    END { printf "%.0f %.2f %.0f\n", r / n, p, (t > 0 ? q / (t / hz) : 0) }' "$tmp/$1"
}

report() { # LABEL PATH CONNECTIONS
  rm -f "$tmp/core" "$tmp/plugin"
  for _ in $(seq "$rounds"); do
    measure core "$core$2" "$3"
    measure plugin "$plugin$2" "$3"
  done
  read -r crps cp99 ccpu < <(summary core)
  read -r prps pp99 pcpu < <(summary plugin)
  echo "== $1 ($2), $3 connections, ${secs}s x $rounds rounds per route"
  printf '%-12s requests/s=%-9s p99=%-8s req/CPU-s=%s\n' core "$crps" "${cp99}ms" "$ccpu"
  printf '%-12s requests/s=%-9s p99=%-8s req/CPU-s=%s\n' plugin "$prps" "${pp99}ms" "$pcpu"
  awk -v a="$prps" -v b="$crps" -v c="$pcpu" -v d="$ccpu" \
    'BEGIN { printf "plugin/core  requests/s %.3f   req/CPU-s %.3f\n", a / b, c / d }'
}
report "1.2 KB body" /api/v1/services 32
report "7.7 MB body" /api/v1/bigservices 8
echo "kubeplex peak RSS: $(awk '/VmHWM/{print $2, $3}' "/proc/$kp/status")"
echo "kubeplex log lines (RUST_LOG=${RUST_LOG:-info}): $(wc -l <"$log")"
