//! `podMetrics` entries as Backstage computes them: `topPods` of `@kubernetes/client-node`
//! 1.4 over a namespace's pods and their `metrics.k8s.io` PodMetrics, made client-safe as
//! Backstage's fan-out handler does (a JavaScript `BigInt` becomes a string, a number stays
//! a number).
//!
//! Quantities follow that library's `quantityToScalar`: no suffix, `n`, `u` and `m` give
//! floating-point numbers (cores), the decimal (`k`..`E`) and binary (`Ki`..`Ei`) suffixes
//! integers (bytes), which is why memory figures are strings and CPU figures numbers in
//! Backstage's answers. Its `add` mixes them as JavaScript does (a number rounded, then
//! added as a `BigInt`). One quirk is kept on purpose, so answers are equal to Backstage's:
//! a pod's memory `requestTotal` is the pod's memory limit total so far plus the container's
//! request (the library adds to the wrong running sum); with one container per pod, the
//! usual case, it is the request.

use super::object;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A JavaScript number or `BigInt`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar {
    /// A `number`.
    Num(f64),
    /// A `BigInt`.
    Big(i128),
}

impl Scalar {
    const ZERO: Scalar = Scalar::Num(0.0);

    /// The library's `add`.
    fn add(self, other: Scalar) -> Scalar {
        match (self, other) {
            (Scalar::Num(a), Scalar::Num(b)) => Scalar::Num(a + b),
            (Scalar::Num(a), Scalar::Big(b)) => Scalar::Big(js_round(a).saturating_add(b)),
            (Scalar::Big(a), Scalar::Num(b)) => Scalar::Big(a.saturating_add(js_round(b))),
            (Scalar::Big(a), Scalar::Big(b)) => Scalar::Big(a.saturating_add(b)),
        }
    }

    /// As Backstage sends it: a `BigInt` as its decimal string, a number as JSON would
    /// print it (integral values without a fraction; NaN and infinities as `null`).
    pub(crate) fn to_json(self) -> Value {
        match self {
            Scalar::Big(i) => Value::String(i.to_string()),
            Scalar::Num(f) if !f.is_finite() => Value::Null,
            Scalar::Num(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                json!(f as i64)
            }
            Scalar::Num(f) => json!(f),
        }
    }
}

/// JavaScript's `Math.round`.
fn js_round(f: f64) -> i128 {
    (f + 0.5).floor() as i128
}

/// The library's `quantityToScalar`: `None` or empty is 0; errors name the quantity.
pub(crate) fn quantity(q: Option<&str>) -> Result<Scalar, String> {
    let Some(q) = q.filter(|q| !q.is_empty()) else {
        return Ok(Scalar::ZERO);
    };
    // `findSuffix`: the trailing characters that are not digits or dots.
    let cut = q
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_ascii_digit() || *c == '.')
        .map_or(0, |(i, c)| i + c.len_utf8());
    let (number, suffix) = q.split_at(cut);
    let num = |s: &str| -> f64 {
        let s = s.trim();
        if s.is_empty() {
            0.0
        } else {
            s.parse::<f64>().unwrap_or(f64::NAN)
        }
    };
    let big = |s: &str, factor: i128| -> Result<Scalar, String> {
        let s = s.trim();
        let n: i128 = if s.is_empty() {
            0
        } else {
            s.parse()
                .map_err(|_| format!("cannot convert {s} to a BigInt (quantity {q:?})"))?
        };
        Ok(Scalar::Big(n.saturating_mul(factor)))
    };
    const K: i128 = 1000;
    const KI: i128 = 1024;
    match suffix {
        "" => {
            let n = num(number);
            if n.is_nan() {
                return Err(format!("Unknown quantity {q}"));
            }
            Ok(Scalar::Num(n))
        }
        "n" => Ok(Scalar::Num(num(number) / 1e9)),
        "u" => Ok(Scalar::Num(num(number) / 1e6)),
        "m" => Ok(Scalar::Num(num(number) / 1000.0)),
        "k" => big(number, K),
        "M" => big(number, K.pow(2)),
        "G" => big(number, K.pow(3)),
        "T" => big(number, K.pow(4)),
        "P" => big(number, K.pow(5)),
        "E" => big(number, K.pow(6)),
        "Ki" => big(number, KI),
        "Mi" => big(number, KI.pow(2)),
        "Gi" => big(number, KI.pow(3)),
        "Ti" => big(number, KI.pow(4)),
        "Pi" => big(number, KI.pow(5)),
        "Ei" => big(number, KI.pow(6)),
        other => Err(format!("Unknown suffix: {other}")),
    }
}

/// A container's request and limit of `resource`.
fn container_total(container: &Value, resource: &str) -> Result<(Scalar, Scalar), String> {
    let res = &container["resources"];
    let of = |kind: &str| -> Result<Scalar, String> {
        match res.get(kind) {
            Some(m) if !m.is_null() => {
                Ok(Scalar::ZERO.add(quantity(m.get(resource).and_then(Value::as_str))?))
            }
            _ => Ok(Scalar::ZERO),
        }
    };
    Ok((of("requests")?, of("limits")?))
}

fn usage(current: Scalar, request: Scalar, limit: Scalar) -> Value {
    object([
        ("currentUsage", current.to_json()),
        ("requestTotal", request.to_json()),
        ("limitTotal", limit.to_json()),
    ])
}

/// The `podMetrics` entries of one namespace: one per pod of `pods` (a PodList), joined by
/// name with `metrics` (a PodMetricsList).
pub(crate) fn top_pods(mut pods: Value, metrics: &Value) -> Result<Vec<Value>, String> {
    let mut by_name: HashMap<&str, &Value> = HashMap::new();
    for m in metrics["items"].as_array().into_iter().flatten() {
        if let Some(name) = m["metadata"]["name"].as_str() {
            by_name.insert(name, m);
        }
    }
    let mut out = Vec::new();
    let pods = match pods.get_mut("items") {
        Some(Value::Array(items)) => std::mem::take(items),
        _ => Vec::new(),
    };
    for pod in pods {
        let metric = pod["metadata"]["name"]
            .as_str()
            .and_then(|n| by_name.get(n).copied());
        let mut containers = Vec::new();
        let (mut cpu_now, mut mem_now) = (Scalar::ZERO, Scalar::ZERO);
        let (mut cpu_req, mut cpu_lim) = (Scalar::ZERO, Scalar::ZERO);
        let (mut mem_req, mut mem_lim) = (Scalar::ZERO, Scalar::ZERO);
        for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
            let (c_req, c_lim) = container_total(container, "cpu")?;
            let (m_req, m_lim) = container_total(container, "memory")?;
            cpu_req = cpu_req.add(c_req);
            cpu_lim = cpu_lim.add(c_lim);
            // The library's running sum (see the module docs).
            mem_req = mem_lim.add(m_req);
            mem_lim = mem_lim.add(m_lim);
            let found = metric.and_then(|m| {
                m["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["name"] == container["name"])
            });
            if let Some(cm) = found {
                let cpu = quantity(cm["usage"]["cpu"].as_str())?;
                let mem = quantity(cm["usage"]["memory"].as_str())?;
                cpu_now = cpu_now.add(cpu);
                mem_now = mem_now.add(mem);
                containers.push(object([
                    ("container", cm["name"].clone()),
                    ("cpuUsage", usage(cpu, c_req, c_lim)),
                    ("memoryUsage", usage(mem, m_req, m_lim)),
                ]));
            }
        }
        out.push(object([
            ("pod", pod),
            ("memory", usage(mem_now, mem_req, mem_lim)),
            ("cpu", usage(cpu_now, cpu_req, cpu_lim)),
            ("containers", Value::Array(containers)),
        ]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_as_the_library_reads_them() {
        assert_eq!(quantity(None), Ok(Scalar::Num(0.0)));
        assert_eq!(quantity(Some("")), Ok(Scalar::Num(0.0)));
        assert_eq!(quantity(Some("2")), Ok(Scalar::Num(2.0)));
        assert_eq!(quantity(Some("0.5")), Ok(Scalar::Num(0.5)));
        assert_eq!(quantity(Some("250m")), Ok(Scalar::Num(0.25)));
        assert_eq!(quantity(Some("1500000n")), Ok(Scalar::Num(0.0015)));
        assert_eq!(quantity(Some("128Mi")), Ok(Scalar::Big(128 * 1024 * 1024)));
        assert_eq!(quantity(Some("1G")), Ok(Scalar::Big(1_000_000_000)));
        assert_eq!(quantity(Some("1e3")), Ok(Scalar::Num(1000.0)));
        assert!(quantity(Some("1.5Gi")).is_err());
        assert!(quantity(Some("3X")).is_err());
    }

    #[test]
    fn numbers_print_as_javascript_does() {
        assert_eq!(Scalar::Num(1.0).to_json().to_string(), "1");
        assert_eq!(Scalar::Num(0.25).to_json().to_string(), "0.25");
        assert_eq!(Scalar::Big(1024).to_json(), json!("1024"));
        // A number added to a BigInt is rounded first.
        assert_eq!(Scalar::Num(0.4).add(Scalar::Big(5)), Scalar::Big(5));
        assert_eq!(Scalar::Big(5).add(Scalar::Num(1.5)), Scalar::Big(7));
    }

    #[test]
    fn pods_joined_with_their_metrics() {
        let pods = json!({"items": [{
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"containers": [
                {"name": "app", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                              "limits": {"cpu": "500m", "memory": "128Mi"}}},
                {"name": "side", "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}}}
            ]}
        }, {
            "metadata": {"name": "web-2", "namespace": "shop"},
            "spec": {"containers": [{"name": "app"}]}
        }]});
        let metrics = json!({"items": [{
            "metadata": {"name": "web-1"},
            "containers": [
                {"name": "app", "usage": {"cpu": "20m", "memory": "40Mi"}},
                {"name": "side", "usage": {"cpu": "5000000n", "memory": "10Mi"}}
            ]
        }]});
        let top = top_pods(pods, &metrics).unwrap();
        assert_eq!(top.len(), 2);
        let web1 = &top[0];
        assert_eq!(web1["pod"]["metadata"]["name"], "web-1");
        assert_eq!(web1["cpu"]["currentUsage"], json!(0.025));
        assert_eq!(web1["cpu"]["requestTotal"], json!(0.15000000000000002));
        assert_eq!(web1["cpu"]["limitTotal"], json!(0.5));
        assert_eq!(
            web1["memory"]["currentUsage"],
            json!((50 * 1024 * 1024).to_string())
        );
        assert_eq!(
            web1["memory"]["limitTotal"],
            json!((128 * 1024 * 1024).to_string())
        );
        // The library's running sum: limits so far (128Mi) + the sidecar's request (16Mi).
        assert_eq!(
            web1["memory"]["requestTotal"],
            json!((144 * 1024 * 1024).to_string())
        );
        assert_eq!(web1["containers"][1]["container"], "side");
        assert_eq!(
            web1["containers"][1]["cpuUsage"]["currentUsage"],
            json!(0.005)
        );
        // No metrics for web-2: zero usage, no containers.
        assert_eq!(top[1]["cpu"]["currentUsage"], json!(0));
        assert_eq!(top[1]["containers"], json!([]));
    }
}
