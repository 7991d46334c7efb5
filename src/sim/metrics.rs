//! `metrics.k8s.io/v1beta1` PodMetrics derived from the simulated pods, as metrics-server
//! serves them to `kubectl top pods`.
//!
//! The usage figures are made up but stable: each container's CPU and memory come from a
//! hash (64-bit FNV-1a, then a mixing step) of `namespace/pod/container`, so every call, run
//! and build shows the same numbers. CPU lies between 1m and 250m and is written in
//! nanocores (`12345678n`), memory between 8Mi and 512Mi in whole 4 KiB pages, written in
//! KiB (`123456Ki`): the canonical `resource.Quantity` forms metrics-server writes for such
//! values (`NewScaledQuantity(nanocores, -9)`, `NewQuantity(bytes, BinarySI)`); values that
//! would print in another unit (`12345u`, `100Mi`) are nudged by one nanocore or one page.
//! The sampling window is 30s and the sample is taken at the request time, truncated to
//! the second.

use crate::sim::pods::store::{fnv, Pod};
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde_json::{json, Map, Value};

/// The API version of PodMetrics.
pub(crate) const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// The sampling window every sample reports.
pub(crate) const WINDOW: &str = "30s";

/// A well-spread 64-bit hash of `key` (FNV-1a, then the finalizer of MurmurHash3, as FNV's
/// low bits alone vary little between similar keys).
fn hash(key: &str) -> u64 {
    let mut h = fnv(key);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// CPU usage of a container in nanocores: 1m to 250m, never a whole number of microcores
/// (so it prints as `<n>n`).
fn cpu_nanocores(pod: &Pod, container: &str) -> u64 {
    const MIN: u64 = 1_000_000;
    const MAX: u64 = 249_999_999;
    let key = format!("{}/{}/{container}/cpu", pod.namespace, pod.name);
    let n = MIN + hash(&key) % (MAX - MIN + 1);
    if n.is_multiple_of(1000) {
        n + 1
    } else {
        n
    }
}

/// Memory usage (working set) of a container in KiB: 8Mi to 512Mi in whole 4 KiB pages,
/// never a whole number of MiB (so it prints as `<n>Ki`).
fn memory_kib(pod: &Pod, container: &str) -> u64 {
    const MIN_PAGES: u64 = 8 * 256; // 8Mi
    const MAX_PAGES: u64 = 512 * 256 - 1; // below 512Mi
    let key = format!("{}/{}/{container}/memory", pod.namespace, pod.name);
    let mut pages = MIN_PAGES + hash(&key) % (MAX_PAGES - MIN_PAGES + 1);
    if pages.is_multiple_of(256) {
        pages += 1;
    }
    pages * 4
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The PodMetrics of `pod` sampled at `now`: `kind`, `apiVersion`, `metadata` (name,
/// namespace, `creationTimestamp` = now, the pod's labels), `timestamp` (now, to the
/// second), `window` and, for each container in the pod's order, its `usage` (`cpu`,
/// `memory`).
pub(crate) fn pod_metrics(pod: &Pod, now: DateTime<Utc>) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(pod.name));
    metadata.insert("namespace".into(), json!(pod.namespace));
    metadata.insert("creationTimestamp".into(), json!(rfc3339(now)));
    if !pod.labels.is_empty() {
        metadata.insert("labels".into(), json!(pod.labels));
    }
    let containers: Vec<Value> = pod
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "usage": {
                    "cpu": format!("{}n", cpu_nanocores(pod, &c.name)),
                    "memory": format!("{}Ki", memory_kib(pod, &c.name)),
                },
            })
        })
        .collect();
    let sampled = now.with_nanosecond(0).unwrap_or(now);
    json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata,
        "timestamp": rfc3339(sampled),
        "window": WINDOW,
        "containers": containers,
    })
}

/// A PodMetricsList of `pods` (ordered by namespace, then name, as metrics-server orders
/// them) sampled at `now`, with `metadata.resourceVersion` = `resource_version`; its items
/// carry no `kind`/`apiVersion`, as in any list.
pub(crate) fn pod_metrics_list(pods: &[&Pod], now: DateTime<Utc>, resource_version: u64) -> Value {
    let mut sorted = pods.to_vec();
    sorted.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let items: Vec<Value> = sorted
        .into_iter()
        .map(|pod| {
            let mut item = pod_metrics(pod, now);
            if let Value::Object(m) = &mut item {
                m.remove("kind");
                m.remove("apiVersion");
            }
            item
        })
        .collect();
    json!({
        "kind": "PodMetricsList",
        "apiVersion": API_VERSION,
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kinds::Kind;
    use crate::sim::pods::store::PodStore;
    use crate::sim::table::{object_table_at, Quantity};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap() + chrono::Duration::milliseconds(750)
    }

    /// A pod as the pod store builds it from a seed `kind: Pod` document.
    fn pod(ns: &str, name: &str, containers: &[&str]) -> Pod {
        let containers: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "registry.example.com/web:1.4.2"}))
            .collect();
        let doc = json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
            "spec": {"containers": containers}});
        PodStore::seeded(Some(&doc.to_string()))
            .get(ns, name)
            .unwrap()
    }

    #[test]
    fn pod_metrics_are_stable_and_cover_every_container() {
        let web = pod("shop", "web-7d9f8c6b5-x2k4p", &["web", "envoy"]);
        let m = pod_metrics(&web, now());
        let later = pod_metrics(&web, now() + chrono::Duration::hours(1));
        assert_eq!(later["containers"], m["containers"]);
        assert_eq!(later["timestamp"], "2025-01-10T13:00:00Z");
        assert_eq!(m["kind"], "PodMetrics");
        assert_eq!(m["apiVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(
            m["metadata"],
            json!({"name": "web-7d9f8c6b5-x2k4p", "namespace": "shop",
                   "creationTimestamp": "2025-01-10T12:00:00Z", "labels": {"app": "web"}})
        );
        assert_eq!(m["timestamp"], "2025-01-10T12:00:00Z");
        assert_eq!(m["window"], "30s");
        let names: Vec<&str> = m["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web", "envoy"]);
        // The same figures in every run and build: pinned.
        assert_eq!(
            m["containers"],
            json!([
                {"name": "web", "usage": {"cpu": "109536592n", "memory": "302020Ki"}},
                {"name": "envoy", "usage": {"cpu": "158758944n", "memory": "254816Ki"}}
            ])
        );
        // Other pods and containers get other figures.
        let other = pod_metrics(&pod("shop", "web-7d9f8c6b5-q8w2z", &["web"]), now());
        assert_ne!(other["containers"][0]["usage"], m["containers"][0]["usage"]);
    }

    #[test]
    fn usage_parses_as_quantities_within_range() {
        let mut seen_cpu = std::collections::BTreeSet::new();
        for i in 0..200 {
            let p = pod("ns", &format!("pod-{i}"), &["app", "sidecar"]);
            let m = pod_metrics(&p, now());
            for c in m["containers"].as_array().unwrap() {
                let cpu = c["usage"]["cpu"].as_str().unwrap();
                let memory = c["usage"]["memory"].as_str().unwrap();
                assert!(
                    cpu.ends_with('n') && memory.ends_with("Ki"),
                    "{cpu} {memory}"
                );
                let cpu_q = Quantity::parse(cpu).unwrap();
                let mem_q = Quantity::parse(memory).unwrap();
                // Written in canonical form, as metrics-server writes them.
                assert_eq!(cpu_q.to_string(), cpu);
                assert_eq!(mem_q.to_string(), memory);
                let milli = cpu_q.scaled(-3).unwrap();
                assert!((1..=250).contains(&milli), "{cpu}");
                let bytes = mem_q.scaled(0).unwrap();
                assert!((8 << 20..512 << 20).contains(&bytes), "{memory}");
                assert_eq!(bytes % 4096, 0);
                seen_cpu.insert(milli);
            }
        }
        assert!(seen_cpu.len() > 100, "spread: {}", seen_cpu.len());
    }

    #[test]
    fn lists_are_ordered_and_print_as_metrics_server_tables() {
        let a = pod("shop", "web-1", &["web"]);
        let b = pod("default", "toolbox", &["shell"]);
        let c = pod("shop", "db-0", &["db", "exporter"]);
        let list = pod_metrics_list(&[&a, &b, &c], now(), 104);
        assert_eq!(list["kind"], "PodMetricsList");
        assert_eq!(list["apiVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(list["metadata"], json!({"resourceVersion": "104"}));
        let items = list["items"].as_array().unwrap();
        let keys: Vec<(&str, &str)> = items
            .iter()
            .map(|i| {
                (
                    i["metadata"]["namespace"].as_str().unwrap(),
                    i["metadata"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [("default", "toolbox"), ("shop", "db-0"), ("shop", "web-1")]
        );
        assert!(items.iter().all(|i| i.get("kind").is_none()));
        assert_eq!(items[1]["containers"], pod_metrics(&c, now())["containers"]);
        assert_eq!(pod_metrics_list(&[], now(), 1)["items"], json!([]));

        // `kubectl top pods` through the Table: the containers' sums.
        let t = object_table_at(Kind::PodMetrics.info(), items, "None", json!({}), now());
        let row = &t["rows"][1]["cells"];
        let sum = |resource: &str| {
            let usage = |i: usize| {
                Quantity::parse(
                    items[1]["containers"][i]["usage"][resource]
                        .as_str()
                        .unwrap(),
                )
                .unwrap()
            };
            usage(0).add(usage(1)).unwrap().to_string()
        };
        assert_eq!(row[0], "db-0");
        assert_eq!(row[1], json!(sum("cpu")));
        assert_eq!(row[2], json!(sum("memory")));
        assert_eq!(row[3], "30s");
    }
}
