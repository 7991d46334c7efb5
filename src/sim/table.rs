//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: server-side printing, as
//! kube-apiserver does it for `kubectl get`.
//!
//! Each kind prints the columns kube-apiserver 1.32 returns for it (the printers of
//! `pkg/printers/internalversion`, called with `Wide: true` as the apiserver's table
//! convertor does): column names, types, and priority 1 for the columns only
//! `kubectl get -o wide` shows, which come after AGE. Cells are computed from the object JSON
//! as those printers compute them: numbers stay JSON numbers where the printer emits an
//! `int64`, quantities print in canonical form ([`Quantity`]), durations like kubectl's
//! `HumanDuration`. Fields the apiserver would have defaulted (`replicas`, an HPA's
//! `minReplicas` and default CPU metric, a Secret's type, a Job's completions) print as
//! their defaults when absent, so an object created without them looks as it would on a
//! real cluster. Kinds without a printer of their own (LimitRange) get the default table
//! convertor's NAME and CREATED AT; custom types get NAME and AGE (a `date` column), as a CRD
//! without `additionalPrinterColumns` does; PodMetrics get metrics-server's table (NAME,
//! `cpu`, `memory`, WINDOW).
//!
//! Each row carries, per `includeObject`, the full object (`Object`), a
//! `PartialObjectMetadata` (`Metadata`, kubectl's default and the default here), or `null`
//! (`None`).
//!
//! How the store calls this: for a list, `object_table(info, &items, include,
//! list_metadata)` (or `service_table`/`namespace_table`) with the list's `metadata`
//! (resourceVersion, continue, remainingItemCount); for a single get, the same with one item
//! and `{"resourceVersion": <the object's>}`; for a watch asked as a Table, each event's
//! `object` is such a one-row Table (the `ERROR`/`BOOKMARK` events keep their usual object).

use crate::sim::kinds::TypeInfo;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// Whether the `Accept` header asks for a `meta.k8s.io/v1` Table (any of its media ranges
/// has `as=Table` and `g=meta.k8s.io`, with `v=v1` or no version).
pub(crate) fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !(media.eq_ignore_ascii_case("application/json") || media == "*/*") {
            return false;
        }
        let (mut as_table, mut group, mut version_ok) = (false, false, true);
        for param in parts {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            match k.trim() {
                "as" => as_table = v.trim() == "Table",
                "g" => group = v.trim() == "meta.k8s.io",
                "v" => version_ok = v.trim() == "v1",
                _ => {}
            }
        }
        as_table && group && version_ok
    })
}

/// The `includeObject` query value (`None`, `Metadata`, `Object`); anything else, including
/// absent, is `Metadata`, kubectl's default.
fn row_object_of(item: &Value, include_object: &str, kind: &str, api_version: &str) -> Value {
    match include_object {
        "None" => Value::Null,
        "Object" => {
            let mut obj = item.clone();
            if let Value::Object(m) = &mut obj {
                m.entry("kind").or_insert_with(|| json!(kind));
                m.entry("apiVersion").or_insert_with(|| json!(api_version));
            }
            obj
        }
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": item.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// One column of a kind's Table, as `metav1.TableColumnDefinition`.
struct Col {
    name: &'static str,
    /// `string`, `integer`, `boolean` or `date`.
    ty: &'static str,
    /// `name` for the NAME column, otherwise empty.
    format: &'static str,
    /// 0, or 1 for the columns `kubectl get -o wide` adds.
    priority: u8,
    description: &'static str,
}

const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        priority: 0,
        description,
    }
}

const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        priority: 1,
        description,
    }
}

impl Col {
    fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.ty, "format": self.format, "description": self.description, "priority": self.priority})
    }
}

/// How a kind is printed: its columns and the function computing a row's cells (one per
/// column, in order), like a `print<Kind>` function of `pkg/printers/internalversion` called
/// with `Wide: true`, as kube-apiserver's table convertor does.
struct Printer {
    columns: &'static [Col],
    cells: fn(&Value, DateTime<Utc>) -> Vec<Value>,
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

const NAME: Col = Col {
    name: "Name",
    ty: "string",
    format: "name",
    priority: 0,
    description: NAME_DOC,
};
const AGE: Col = col("Age", "string", AGE_DOC);

static SERVICE: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer."),
        col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
        col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes."),
        col("Port(s)", "string", "The list of ports that are exposed by this service."),
        AGE,
        wide("Selector", "string", "Route service traffic to pods with label keys and values matching this selector."),
    ],
    cells: service_cells,
};

static NAMESPACE: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the namespace"),
        AGE,
    ],
    cells: |ns, now| {
        vec![
            json!(name_of(ns)),
            json!(str_at(ns, "/status/phase").unwrap_or("Active")),
            json!(age(ns, now)),
        ]
    },
};

/// Kinds without a printer of their own (LimitRange): the apiserver's default table
/// convertor (`rest.NewDefaultTableConvertor`), NAME and CREATED AT (RFC 3339, UTC).
static DEFAULT: Printer = Printer {
    columns: &[NAME, col("Created At", "date", AGE_DOC)],
    cells: |item, _| vec![json!(name_of(item)), json!(created_at(item))],
};

/// Custom types: a CRD without `additionalPrinterColumns` gets NAME and AGE, a `date`
/// column whose cells the apiextensions apiserver renders as a duration.
static CUSTOM: Printer = Printer {
    columns: &[NAME, col("Age", "date", AGE_DOC)],
    cells: |item, now| vec![json!(name_of(item)), json!(age(item, now))],
};

/// The printer of a kind; `None` for PodMetrics, whose columns depend on the rows.
fn printer(info: &TypeInfo) -> Option<&'static Printer> {
    if !info.is_builtin() {
        return Some(&CUSTOM);
    }
    Some(match (info.api_version, info.kind) {
        ("v1", "Service") => &SERVICE,
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "Secret") => &SECRET,
        ("v1", "ResourceQuota") => &RESOURCE_QUOTA,
        ("v1", "Event") => &EVENT,
        ("apps/v1", "Deployment") => &DEPLOYMENT,
        ("apps/v1", "ReplicaSet") => &REPLICA_SET,
        ("apps/v1", "StatefulSet") => &STATEFUL_SET,
        ("apps/v1", "DaemonSet") => &DAEMON_SET,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => &HPA,
        ("batch/v1", "Job") => &JOB,
        ("batch/v1", "CronJob") => &CRON_JOB,
        ("networking.k8s.io/v1", "Ingress") => &INGRESS,
        ("metrics.k8s.io/v1beta1", "PodMetrics") => return None,
        _ => &DEFAULT,
    })
}

fn columns_json(columns: &[Col]) -> Value {
    Value::Array(columns.iter().map(Col::to_json).collect())
}

fn table(columns: Value, rows: Vec<Value>, list_metadata: Value) -> Value {
    let metadata = match list_metadata {
        Value::Object(m) => Value::Object(m),
        _ => Value::Object(Map::new()),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn str_list(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// kubectl's `HumanDuration`: `45s`, `5m10s`, `42m`, `5h3m`, `20h`, `3d4h`, `120d`, `2y30d`.
pub(crate) fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// AGE: how long ago the object was created.
fn age(item: &Value, now: DateTime<Utc>) -> String {
    since(item, "/metadata/creationTimestamp", now)
}

/// kubectl's `labels.FormatLabels`: `a=1,b=2` sorted by key, `<none>` when empty.
fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs.join(",")
}

/// `80/TCP,443:30443/TCP`.
fn port_string(svc: &Value) -> String {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let pieces: Vec<String> = ports
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) if np > 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".into()
    } else {
        pieces.join(",")
    }
}

fn external_ip(svc: &Value) -> String {
    let external_ips = str_list(svc, "/spec/externalIPs");
    match str_at(svc, "/spec/type").unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".into()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb: Vec<String> = svc
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|i| {
                            str_at(i, "/ip")
                                .filter(|s| !s.is_empty())
                                .or_else(|| str_at(i, "/hostname").filter(|s| !s.is_empty()))
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default();
            lb.sort();
            lb.dedup();
            if !external_ips.is_empty() {
                lb.extend(external_ips);
                return lb.join(",");
            }
            if lb.is_empty() {
                "<pending>".into()
            } else {
                lb.join(",")
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").unwrap_or("").to_owned(),
        _ => "<unknown>".into(),
    }
}

fn cluster_ip(svc: &Value) -> String {
    let ips = str_list(svc, "/spec/clusterIPs");
    if let Some(first) = ips.first() {
        return first.clone();
    }
    match str_at(svc, "/spec/clusterIP") {
        Some(ip) if !ip.is_empty() => ip.to_owned(),
        _ => "<none>".into(),
    }
}

/// The cells of one Service row: NAME, TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), AGE, SELECTOR.
pub(crate) fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(str_at(svc, "/metadata/name").unwrap_or("")),
        json!(str_at(svc, "/spec/type").unwrap_or("ClusterIP")),
        json!(cluster_ip(svc)),
        json!(external_ip(svc)),
        json!(port_string(svc)),
        json!(age(svc, now)),
        json!(format_labels(svc.pointer("/spec/selector"))),
    ]
}

/// [`service_table`] at a given time (for AGE).
pub(crate) fn service_table_at(
    items: &[Value],
    include_object: &str,
    list_metadata: Value,
    now: DateTime<Utc>,
) -> Value {
    printed_table(
        &SERVICE,
        "Service",
        "v1",
        items,
        include_object,
        list_metadata,
        now,
    )
}

/// A `Table` of Services (NAME, TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), AGE, and SELECTOR at
/// priority 1), each row carrying the object per `includeObject` (`Object`, `Metadata` (the
/// default), `None`). `list_metadata` becomes the Table's `metadata` (resourceVersion,
/// continue).
pub(crate) fn service_table(items: &[Value], include_object: &str, list_metadata: Value) -> Value {
    service_table_at(items, include_object, list_metadata, Utc::now())
}

/// [`namespace_table`] at a given time (for AGE).
pub(crate) fn namespace_table_at(
    items: &[Value],
    include_object: &str,
    list_metadata: Value,
    now: DateTime<Utc>,
) -> Value {
    printed_table(
        &NAMESPACE,
        "Namespace",
        "v1",
        items,
        include_object,
        list_metadata,
        now,
    )
}

/// A `Table` of Namespaces (NAME, STATUS, AGE), used like [`service_table`]: call it for
/// namespace lists, gets and watch events when [`wants_table`] says so.
pub(crate) fn namespace_table(
    items: &[Value],
    include_object: &str,
    list_metadata: Value,
) -> Value {
    namespace_table_at(items, include_object, list_metadata, Utc::now())
}

fn printed_table(
    printer: &Printer,
    kind: &str,
    api_version: &str,
    items: &[Value],
    include_object: &str,
    list_metadata: Value,
    now: DateTime<Utc>,
) -> Value {
    let rows = items
        .iter()
        .map(|item| {
            json!({
                "cells": (printer.cells)(item, now),
                "object": row_object_of(item, include_object, kind, api_version),
            })
        })
        .collect();
    table(columns_json(printer.columns), rows, list_metadata)
}

/// [`object_table`] at a given time (for AGE and the other durations).
pub(crate) fn object_table_at(
    info: &TypeInfo,
    items: &[Value],
    include_object: &str,
    list_metadata: Value,
    now: DateTime<Utc>,
) -> Value {
    match printer(info) {
        Some(p) => printed_table(
            p,
            info.kind,
            info.api_version,
            items,
            include_object,
            list_metadata,
            now,
        ),
        None => pod_metrics_table(items, include_object, list_metadata),
    }
}

/// A `Table` of objects of any kind, with the columns kube-apiserver 1.32 prints for it
/// (metrics-server's for PodMetrics, NAME and AGE for custom types), used like
/// [`service_table`].
pub(crate) fn object_table(
    info: &TypeInfo,
    items: &[Value],
    include_object: &str,
    list_metadata: Value,
) -> Value {
    object_table_at(info, items, include_object, list_metadata, Utc::now())
}

/// metrics-server's Table of PodMetrics (`addPodMetricsToTable`): NAME, one `quantity`
/// column per resource the first row's containers use (`cpu`, `memory`, in name order),
/// WINDOW; each cell the sum over the pod's containers. Without rows there are no columns.
fn pod_metrics_table(items: &[Value], include_object: &str, list_metadata: Value) -> Value {
    let mut names: Option<Vec<String>> = None;
    let mut columns = Vec::new();
    let rows = items
        .iter()
        .map(|pm| {
            let mut usage: std::collections::BTreeMap<&str, Quantity> = Default::default();
            let containers = pm
                .get("containers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (resource, value) in containers
                .iter()
                .filter_map(|c| c.get("usage").and_then(Value::as_object))
                .flatten()
            {
                let Some(q) = value.as_str().and_then(Quantity::parse) else {
                    continue;
                };
                let sum = match usage.get(resource.as_str()) {
                    Some(total) => total.add(q).unwrap_or(*total),
                    None => q,
                };
                usage.insert(resource, sum);
            }
            let names = names.get_or_insert_with(|| {
                columns.push(json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0}));
                for name in usage.keys() {
                    columns.push(json!({"name": name, "type": "string", "format": "quantity", "description": "", "priority": 0}));
                }
                columns.push(json!({"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0}));
                usage.keys().map(|k| (*k).to_owned()).collect()
            });
            let mut cells = vec![json!(name_of(pm))];
            cells.extend(names.iter().map(|n| {
                json!(usage
                    .get(n.as_str())
                    .map_or_else(|| "0".to_owned(), Quantity::to_string))
            }));
            cells.push(json!(str_at(pm, "/window").unwrap_or("0s")));
            json!({
                "cells": cells,
                "object": row_object_of(pm, include_object, "PodMetrics", "metrics.k8s.io/v1beta1"),
            })
        })
        .collect();
    table(Value::Array(columns), rows, list_metadata)
}

// ---- helpers shared by the printers ----

fn name_of(item: &Value) -> &str {
    str_at(item, "/metadata/name").unwrap_or("")
}

/// An integer field, 0 when absent (Go's zero value).
fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer)
        .and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
        .unwrap_or(0)
}

/// How many keys the object at `pointer` has.
fn len_at(v: &Value, pointer: &str) -> usize {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

fn time_at(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    str_at(v, pointer)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `translateTimestampSince`: how long ago, `<unknown>` for an absent time.
fn since(v: &Value, pointer: &str, now: DateTime<Utc>) -> String {
    time_at(v, pointer)
        .map(|t| human_duration(now.signed_duration_since(t)))
        .unwrap_or_else(|| "<unknown>".into())
}

/// The default table convertor's CREATED AT: RFC 3339 in UTC (Go's zero time when absent).
fn created_at(item: &Value) -> String {
    time_at(item, "/metadata/creationTimestamp")
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

// ---- v1 ----

static CONFIG_MAP: Printer = Printer {
    columns: &[
        NAME,
        col("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
        AGE,
    ],
    cells: |cm, now| {
        let data = len_at(cm, "/data") + len_at(cm, "/binaryData");
        vec![json!(name_of(cm)), json!(data), json!(age(cm, now))]
    },
};

static SECRET: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
        col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"),
        AGE,
    ],
    cells: |secret, now| {
        // The apiserver merges the write-only stringData into data, and defaults the type.
        let mut keys: Vec<&String> = ["/data", "/stringData"]
            .iter()
            .filter_map(|p| secret.pointer(p).and_then(Value::as_object))
            .flat_map(Map::keys)
            .collect();
        keys.sort();
        keys.dedup();
        let ty = str_at(secret, "/type").filter(|t| !t.is_empty());
        vec![
            json!(name_of(secret)),
            json!(ty.unwrap_or("Opaque")),
            json!(keys.len()),
            json!(age(secret, now)),
        ]
    },
};

static RESOURCE_QUOTA: Printer = Printer {
    columns: &[
        NAME,
        AGE,
        col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
        col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
    ],
    cells: |rq, now| {
        let (request, limit) = quota_usage(rq);
        vec![
            json!(name_of(rq)),
            json!(age(rq, now)),
            json!(request),
            json!(limit),
        ]
    },
};

/// `printResourceQuota`'s REQUEST and LIMIT: `resource: used/hard` for each resource of
/// `status.hard` in name order, `limits.*` ones in LIMIT, the others in REQUEST.
fn quota_usage(rq: &Value) -> (String, String) {
    let Some(hard) = rq.pointer("/status/hard").and_then(Value::as_object) else {
        return (String::new(), String::new());
    };
    let mut names: Vec<&String> = hard.keys().collect();
    names.sort();
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    for name in names {
        let used = rq
            .pointer("/status/used")
            .and_then(|u| u.get(name.as_str()))
            .and_then(Value::as_str)
            .map_or_else(|| "0".to_owned(), canonical_quantity);
        let hard = canonical_quantity(hard[name.as_str()].as_str().unwrap_or("0"));
        let entry = format!("{name}: {used}/{hard}");
        match name.split_once('.') {
            Some(("limits", _)) => limit.push(entry),
            _ => request.push(entry),
        }
    }
    (request.join(", "), limit.join(", "))
}

static EVENT: Printer = Printer {
    columns: &[
        col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
        col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
        col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        col("Object", "string", "The object that this event is about."),
        wide("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object."),
        wide("Source", "string", "The component reporting this event. Should be a short machine understandable string."),
        col("Message", "string", "A human-readable description of the status of this operation."),
        wide("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
        wide("Count", "string", "The number of times this event has occurred."),
        Col {
            priority: 1,
            ..NAME
        },
    ],
    cells: event_cells,
};

/// `printEvent`: LAST SEEN (the series' last observation, else lastTimestamp, else FIRST
/// SEEN), TYPE, REASON, OBJECT (`deployment/web`), SUBOBJECT, SOURCE, MESSAGE, FIRST SEEN
/// (firstTimestamp, else eventTime), COUNT (the series' count, else count, at least 1), NAME.
fn event_cells(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = if time_at(ev, "/firstTimestamp").is_some() {
        since(ev, "/firstTimestamp", now)
    } else {
        since(ev, "/eventTime", now)
    };
    let mut last = if time_at(ev, "/lastTimestamp").is_some() {
        since(ev, "/lastTimestamp", now)
    } else {
        first.clone()
    };
    let mut count = int_at(ev, "/count");
    if ev.get("series").is_some_and(Value::is_object) {
        last = since(ev, "/series/lastObservedTime", now);
        count = int_at(ev, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = str_at(ev, "/involvedObject/kind")
        .unwrap_or("")
        .to_lowercase();
    let target = match str_at(ev, "/involvedObject/name") {
        Some(name) if !name.is_empty() => format!("{kind}/{name}"),
        _ => kind,
    };
    let non_empty = |p: &str| str_at(ev, p).filter(|s| !s.is_empty());
    let component = non_empty("/source/component")
        .or_else(|| non_empty("/reportingComponent"))
        .unwrap_or("");
    let source = match non_empty("/source/host").or_else(|| non_empty("/reportingInstance")) {
        Some(instance) => format!("{component}, {instance}"),
        None => component.to_owned(),
    };
    vec![
        json!(last),
        json!(str_at(ev, "/type").unwrap_or("")),
        json!(str_at(ev, "/reason").unwrap_or("")),
        json!(target),
        json!(str_at(ev, "/involvedObject/fieldPath").unwrap_or("")),
        json!(source),
        json!(str_at(ev, "/message").unwrap_or("").trim()),
        json!(first),
        json!(count),
        json!(name_of(ev)),
    ]
}

// ---- apps/v1 ----

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

/// `layoutContainerCells`: the containers' names and images, each joined with commas.
fn containers_and_images(v: &Value, pointer: &str) -> (String, String) {
    let containers = v
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let field = |key: &str| {
        containers
            .iter()
            .map(|c| c.get(key).and_then(Value::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",")
    };
    (field("name"), field("image"))
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: `a=1,b in (x,y),!c` sorted by key, empty
/// for a missing or empty selector, `Err` for an invalid one.
fn label_selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
        }
    }
    let expressions = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for e in expressions {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let mut values = str_list(e, "/values");
        values.sort();
        let text = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" if !values.is_empty() => format!("{key} in ({})", values.join(",")),
            "NotIn" if !values.is_empty() => format!("{key} notin ({})", values.join(",")),
            "Exists" if values.is_empty() => key.to_owned(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_owned(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: like [`label_selector_string`] but `<none>` when empty and
/// `<error>` when invalid.
fn format_label_selector(sel: Option<&Value>) -> String {
    match label_selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// `spec.replicas`, 1 when absent (the apiserver defaults it).
fn desired_replicas(v: &Value) -> i64 {
    v.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

const SELECTOR_DOC: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.";

static DEPLOYMENT: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
        col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
        AGE,
        wide("Containers", "string", CONTAINERS_DOC),
        wide("Images", "string", IMAGES_DOC),
        wide("Selector", "string", SELECTOR_DOC),
    ],
    cells: |d, now| {
        let (containers, images) = containers_and_images(d, "/spec/template/spec/containers");
        let selector = label_selector_string(d.pointer("/spec/selector"))
            .unwrap_or_else(|()| "<invalid>".into());
        vec![
            json!(name_of(d)),
            json!(format!(
                "{}/{}",
                int_at(d, "/status/readyReplicas"),
                desired_replicas(d)
            )),
            json!(int_at(d, "/status/updatedReplicas")),
            json!(int_at(d, "/status/availableReplicas")),
            json!(age(d, now)),
            json!(containers),
            json!(images),
            json!(selector),
        ]
    },
};

static REPLICA_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"),
        col("Current", "integer", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"),
        col("Ready", "integer", "The number of ready replicas for this replica set."),
        AGE,
        wide("Containers", "string", CONTAINERS_DOC),
        wide("Images", "string", IMAGES_DOC),
        wide("Selector", "string", "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
    ],
    cells: |rs, now| {
        let (containers, images) = containers_and_images(rs, "/spec/template/spec/containers");
        vec![
            json!(name_of(rs)),
            json!(desired_replicas(rs)),
            json!(int_at(rs, "/status/replicas")),
            json!(int_at(rs, "/status/readyReplicas")),
            json!(age(rs, now)),
            json!(containers),
            json!(images),
            json!(format_label_selector(rs.pointer("/spec/selector"))),
        ]
    },
};

static STATEFUL_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        AGE,
        wide("Containers", "string", CONTAINERS_DOC),
        wide("Images", "string", IMAGES_DOC),
    ],
    cells: |sts, now| {
        let (containers, images) = containers_and_images(sts, "/spec/template/spec/containers");
        vec![
            json!(name_of(sts)),
            json!(format!(
                "{}/{}",
                int_at(sts, "/status/readyReplicas"),
                desired_replicas(sts)
            )),
            json!(age(sts, now)),
            json!(containers),
            json!(images),
        ]
    },
};

static DAEMON_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
        col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
        col("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
        col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
        col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
        col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
        AGE,
        wide("Containers", "string", CONTAINERS_DOC),
        wide("Images", "string", IMAGES_DOC),
        wide("Selector", "string", "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
    ],
    cells: |ds, now| {
        let (containers, images) = containers_and_images(ds, "/spec/template/spec/containers");
        vec![
            json!(name_of(ds)),
            json!(int_at(ds, "/status/desiredNumberScheduled")),
            json!(int_at(ds, "/status/currentNumberScheduled")),
            json!(int_at(ds, "/status/numberReady")),
            json!(int_at(ds, "/status/updatedNumberScheduled")),
            json!(int_at(ds, "/status/numberAvailable")),
            json!(format_labels(ds.pointer("/spec/template/spec/nodeSelector"))),
            json!(age(ds, now)),
            json!(containers),
            json!(images),
            json!(format_label_selector(ds.pointer("/spec/selector"))),
        ]
    },
};

// ---- autoscaling/v2 ----

static HPA: Printer = Printer {
    columns: &[
        NAME,
        col("Reference", "string", "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count."),
        col("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond."),
        col("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available."),
        col("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
        col("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
        AGE,
    ],
    cells: |hpa, now| {
        let reference = format!(
            "{}/{}",
            str_at(hpa, "/spec/scaleTargetRef/kind").unwrap_or(""),
            str_at(hpa, "/spec/scaleTargetRef/name").unwrap_or("")
        );
        // The apiserver defaults minReplicas to 1.
        let min_pods = hpa
            .pointer("/spec/minReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        vec![
            json!(name_of(hpa)),
            json!(reference),
            json!(hpa_targets(hpa)),
            json!(min_pods.to_string()),
            json!(int_at(hpa, "/spec/maxReplicas")),
            json!(int_at(hpa, "/status/currentReplicas")),
            json!(age(hpa, now)),
        ]
    },
};

/// `formatHPAMetrics`: each metric as `current/target` (`cpu: 12%/80%`, `<unknown>/500m`,
/// `100/50 (avg)`), its status found at the same index of `status.currentMetrics`; two at
/// most, then `+ N more...`. Without metrics, the apiserver's default (CPU at 80%).
fn hpa_targets(hpa: &Value) -> String {
    let default_metric = [
        json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}),
    ];
    let specs = match hpa.pointer("/spec/metrics").and_then(Value::as_array) {
        Some(specs) if !specs.is_empty() => specs.as_slice(),
        _ => &default_metric,
    };
    let statuses = hpa
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // `Quantity.String()` of a quantity field; `<nil>` for an absent one.
    let quantity = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map_or_else(|| "<nil>".to_owned(), canonical_quantity)
    };
    let percent = |v: Option<&Value>| v.and_then(Value::as_i64).map(|p| format!("{p}%"));
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let ty = spec.get("type").and_then(Value::as_str).unwrap_or("");
        let field = match ty {
            "External" => "external",
            "Pods" => "pods",
            "Object" => "object",
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            _ => {
                list.push("<unknown type>".into());
                continue;
            }
        };
        let source = spec.get(field).unwrap_or(&Value::Null);
        let target = source.get("target").unwrap_or(&Value::Null);
        let status = statuses
            .get(i)
            .and_then(|s| s.get(field))
            .filter(|s| !s.is_null());
        let current = status.and_then(|s| s.get("current"));
        let average_value = target.get("averageValue").filter(|v| !v.is_null());
        let resource = source.get("name").and_then(Value::as_str).unwrap_or("");
        list.push(match (ty, average_value) {
            ("External" | "Object", Some(avg)) => {
                let current_avg = current
                    .and_then(|c| c.get("averageValue"))
                    .filter(|v| !v.is_null());
                let cur = current_avg.map_or_else(|| "<unknown>".to_owned(), |v| quantity(Some(v)));
                format!("{cur}/{} (avg)", quantity(Some(avg)))
            }
            ("External" | "Object", None) => {
                let cur = status.map_or_else(
                    || "<unknown>".to_owned(),
                    |_| quantity(current.and_then(|c| c.get("value"))),
                );
                format!("{cur}/{}", quantity(target.get("value")))
            }
            ("Pods", _) => {
                let cur = status.map_or_else(
                    || "<unknown>".to_owned(),
                    |_| quantity(current.and_then(|c| c.get("averageValue"))),
                );
                format!("{cur}/{}", quantity(target.get("averageValue")))
            }
            (_, Some(avg)) => {
                let cur = status.map_or_else(
                    || "<unknown>".to_owned(),
                    |_| quantity(current.and_then(|c| c.get("averageValue"))),
                );
                format!("{resource}: {cur}/{}", quantity(Some(avg)))
            }
            (_, None) => {
                let cur = percent(current.and_then(|c| c.get("averageUtilization")))
                    .unwrap_or_else(|| "<unknown>".into());
                let goal =
                    percent(target.get("averageUtilization")).unwrap_or_else(|| "<auto>".into());
                format!("{resource}: {cur}/{goal}")
            }
        });
    }
    const MAX: usize = 2;
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

// ---- batch/v1 ----

const JOB_SELECTOR_DOC: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

/// Whether the object has a condition of type `ty` (the first one found) with status True.
fn has_condition(v: &Value, ty: &str) -> bool {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
        })
        .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

static JOB: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "Status of the job."),
        col("Completions", "string", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
        col("Duration", "string", "Time required to complete the job."),
        AGE,
        wide("Containers", "string", CONTAINERS_DOC),
        wide("Images", "string", IMAGES_DOC),
        wide("Selector", "string", JOB_SELECTOR_DOC),
    ],
    cells: job_cells,
};

/// `printJob` (1.32): STATUS (Complete, Failed, Terminating, Suspended, FailureTarget or
/// Running), COMPLETIONS (`1/3`, or `0/1 of 4` for a parallel job without completions),
/// DURATION (start to completion, or to now while running; empty before the start), AGE and
/// the template's containers.
fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int_at(job, "/status/succeeded");
    let completions = job.pointer("/spec/completions").and_then(Value::as_i64);
    let parallelism = job.pointer("/spec/parallelism").and_then(Value::as_i64);
    // The apiserver defaults completions and parallelism to 1 when both are absent.
    let completions = match (completions, parallelism) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, Some(p)) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    };
    let duration = match (
        time_at(job, "/status/startTime"),
        time_at(job, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.signed_duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.signed_duration_since(start)),
    };
    let status = if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if job
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (containers, images) = containers_and_images(job, "/spec/template/spec/containers");
    vec![
        json!(name_of(job)),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(job, now)),
        json!(containers),
        json!(images),
        json!(format_label_selector(job.pointer("/spec/selector"))),
    ]
}

static CRON_JOB: Printer = Printer {
    columns: &[
        NAME,
        col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        col("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"),
        col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
        col("Active", "integer", "A list of pointers to currently running jobs."),
        col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
        AGE,
        wide("Containers", "string", CONTAINERS_DOC),
        wide("Images", "string", IMAGES_DOC),
        wide("Selector", "string", JOB_SELECTOR_DOC),
    ],
    cells: |cj, now| {
        let last_schedule = if time_at(cj, "/status/lastScheduleTime").is_some() {
            since(cj, "/status/lastScheduleTime", now)
        } else {
            "<none>".into()
        };
        // `printBoolPtr`; the apiserver defaults suspend to false.
        let suspend = match cj.pointer("/spec/suspend").and_then(Value::as_bool) {
            Some(true) => "True",
            _ => "False",
        };
        let active = cj
            .pointer("/status/active")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let template = "/spec/jobTemplate/spec/template/spec/containers";
        let (containers, images) = containers_and_images(cj, template);
        vec![
            json!(name_of(cj)),
            json!(str_at(cj, "/spec/schedule").unwrap_or("")),
            json!(str_at(cj, "/spec/timeZone").unwrap_or("<none>")),
            json!(suspend),
            json!(active),
            json!(last_schedule),
            json!(age(cj, now)),
            json!(containers),
            json!(images),
            json!(format_label_selector(cj.pointer("/spec/jobTemplate/spec/selector"))),
        ]
    },
};

// ---- networking.k8s.io/v1 ----

static INGRESS: Printer = Printer {
    columns: &[
        NAME,
        col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
        col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        col("Ports", "string", "Ports of TLS configurations that open"),
        AGE,
    ],
    cells: |ing, now| {
        let tls = ing
            .pointer("/spec/tls")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty());
        vec![
            json!(name_of(ing)),
            json!(str_at(ing, "/spec/ingressClassName").unwrap_or("<none>")),
            json!(ingress_hosts(ing)),
            json!(ingress_address(ing)),
            json!(if tls { "80, 443" } else { "80" }),
            json!(age(ing, now)),
        ]
    },
};

/// `formatHosts`: the rules' hosts, three at most then `+ N more...` (N counting the rules
/// past the third), `*` when no rule names a host.
fn ingress_hosts(ing: &Value) -> String {
    let rules = ing
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        match rule.get("host").and_then(Value::as_str) {
            Some(host) if !more && !host.is_empty() => list.push(host),
            _ => {}
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let hosts = list.join(",");
    if more {
        format!("{hosts} + {} more...", rules.len() - MAX)
    } else {
        hosts
    }
}

/// The load balancer's IPs (else hostnames), sorted and without duplicates.
fn ingress_address(ing: &Value) -> String {
    let mut addresses: Vec<&str> = ing
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            str_at(i, "/ip")
                .filter(|s| !s.is_empty())
                .or_else(|| str_at(i, "/hostname").filter(|s| !s.is_empty()))
        })
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses.join(",")
}

/// The notation of a [`Quantity`], chosen by its suffix as `resource.Quantity` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuantityFormat {
    /// `m`, `k`, `M`, ... or no suffix.
    DecimalSi,
    /// `Ki`, `Mi`, `Gi`, ...
    BinarySi,
    /// `e3`, `E-2`.
    DecimalExponent,
}

/// A Kubernetes resource quantity (`resource.Quantity`): `mantissa × 10^scale`, exact to the
/// nano unit (finer values round up, as the apiserver's parser does), printed in the
/// canonical form of `Quantity.String()`: `1500m`, `2`, `1k`, `1536Mi`, `12345678n`. The
/// apiserver stores quantities in that form, so printers show them so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quantity {
    mantissa: i128,
    scale: i32,
    format: QuantityFormat,
}

impl Quantity {
    /// Parses `1.5Gi`, `250m`, `+3`, `1e3`; `None` for what `resource.ParseQuantity`
    /// rejects (or what would overflow 128 bits).
    pub(crate) fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return None;
        }
        let (base2_exp, base10_exp, format) = match suffix {
            "" => (0, 0, QuantityFormat::DecimalSi),
            "n" => (0, -9, QuantityFormat::DecimalSi),
            "u" => (0, -6, QuantityFormat::DecimalSi),
            "m" => (0, -3, QuantityFormat::DecimalSi),
            "k" => (0, 3, QuantityFormat::DecimalSi),
            "M" => (0, 6, QuantityFormat::DecimalSi),
            "G" => (0, 9, QuantityFormat::DecimalSi),
            "T" => (0, 12, QuantityFormat::DecimalSi),
            "P" => (0, 15, QuantityFormat::DecimalSi),
            "E" => (0, 18, QuantityFormat::DecimalSi),
            "Ki" => (10, 0, QuantityFormat::BinarySi),
            "Mi" => (20, 0, QuantityFormat::BinarySi),
            "Gi" => (30, 0, QuantityFormat::BinarySi),
            "Ti" => (40, 0, QuantityFormat::BinarySi),
            "Pi" => (50, 0, QuantityFormat::BinarySi),
            "Ei" => (60, 0, QuantityFormat::BinarySi),
            _ => {
                let exp = suffix
                    .strip_prefix('e')
                    .or_else(|| suffix.strip_prefix('E'))?;
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (0, exp.parse::<i32>().ok()?, QuantityFormat::DecimalExponent)
            }
        };
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        mantissa = mantissa.checked_mul(1i128.checked_shl(base2_exp)?)?;
        if negative {
            mantissa = -mantissa;
        }
        let scale = base10_exp.checked_sub(i32::try_from(fraction.len()).ok()?)?;
        Some(
            Quantity {
                mantissa,
                scale,
                format,
            }
            .round_to_nano(),
        )
    }

    /// Rounds values finer than a nano unit up (away from zero).
    fn round_to_nano(mut self) -> Quantity {
        if self.scale < -9 {
            let div = pow10(-9 - self.scale).unwrap_or(i128::MAX);
            let (q, r) = (self.mantissa / div, self.mantissa % div);
            self.mantissa = q + r.signum();
            self.scale = -9;
        }
        self
    }

    /// The sum, in the notation of `self` (as `Quantity.Add` keeps the receiver's format,
    /// or takes the addend's when the receiver is zero).
    pub(crate) fn add(self, other: Quantity) -> Option<Quantity> {
        let scale = self.scale.min(other.scale);
        let a = self.mantissa.checked_mul(pow10(self.scale - scale)?)?;
        let b = other.mantissa.checked_mul(pow10(other.scale - scale)?)?;
        let format = if self.mantissa == 0 {
            other.format
        } else {
            self.format
        };
        Some(Quantity {
            mantissa: a.checked_add(b)?,
            scale,
            format,
        })
    }

    /// The value in `10^scale` units, rounded up (away from zero): `scaled(-3)` is
    /// `MilliValue()`, as `kubectl top` prints CPU; `scaled(0)` is `Value()`.
    #[cfg(test)]
    pub(crate) fn scaled(&self, scale: i32) -> Option<i128> {
        if self.scale >= scale {
            self.mantissa.checked_mul(pow10(self.scale - scale)?)
        } else {
            let div = pow10(scale - self.scale)?;
            Some(self.mantissa / div + (self.mantissa % div).signum())
        }
    }

    /// The exact integer value, if it has no fractional part.
    fn exact_integer(&self) -> Option<i128> {
        if self.scale >= 0 {
            return self.mantissa.checked_mul(pow10(self.scale)?);
        }
        let div = pow10(-self.scale)?;
        (self.mantissa % div == 0).then(|| self.mantissa / div)
    }
}

fn pow10(exp: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(exp).ok()?)
}

impl std::fmt::Display for Quantity {
    /// `Quantity.String()`: the canonical form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.mantissa == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        let mut integer = None;
        if format == QuantityFormat::BinarySi {
            integer = self.exact_integer();
            match integer {
                Some(v) if v.abs() >= 1024 => {}
                _ => format = QuantityFormat::DecimalSi,
            }
        }
        if let (QuantityFormat::BinarySi, Some(mut v)) = (format, integer) {
            let mut exp = 0;
            while exp < 6 && v % 1024 == 0 {
                v /= 1024;
                exp += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
            return write!(f, "{v}{suffix}");
        }
        // Strip trailing zeros, then lower the exponent to a multiple of three.
        let (mut m, mut e) = (self.mantissa, self.scale);
        while m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        let r = e.rem_euclid(3);
        if let Some(scaled) = pow10(r).and_then(|p| m.checked_mul(p)) {
            m = scaled;
            e -= r;
        }
        let suffix = match (format, e) {
            (QuantityFormat::DecimalExponent, 0) => String::new(),
            (QuantityFormat::DecimalExponent, _) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            _ => format!("e{e}"),
        };
        write!(f, "{m}{suffix}")
    }
}

/// A quantity string in canonical form (`Quantity.String()` of the parsed value); text
/// that is no quantity is returned as it is.
pub(crate) fn canonical_quantity(s: &str) -> String {
    Quantity::parse(s).map_or_else(|| s.to_owned(), |q| q.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kinds::Kind;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap()
    }

    #[test]
    fn accept_headers() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(wants_table(
            "application/json; as=Table; g=meta.k8s.io; v=v1"
        ));
        assert!(!wants_table("application/json"));
        assert!(!wants_table(""));
        assert!(!wants_table(
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
        ));
        assert!(!wants_table(
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
        ));
        assert!(!wants_table("application/yaml;as=Table;v=v1;g=meta.k8s.io"));
    }

    #[test]
    fn durations_like_kubectl() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(-5)), "<invalid>");
        assert_eq!(human_duration(d(-1)), "0s");
        assert_eq!(human_duration(d(45)), "45s");
        assert_eq!(human_duration(d(119)), "119s");
        assert_eq!(human_duration(d(300)), "5m");
        assert_eq!(human_duration(d(310)), "5m10s");
        assert_eq!(human_duration(d(42 * 60 + 5)), "42m");
        assert_eq!(human_duration(d(3 * 3600)), "3h");
        assert_eq!(human_duration(d(5 * 3600 + 3 * 60)), "5h3m");
        assert_eq!(human_duration(d(20 * 3600)), "20h");
        assert_eq!(human_duration(d(2 * 86400)), "2d");
        assert_eq!(human_duration(d(3 * 86400 + 4 * 3600)), "3d4h");
        assert_eq!(human_duration(d(120 * 86400)), "120d");
        assert_eq!(human_duration(d(760 * 86400)), "2y30d");
        assert_eq!(human_duration(d(10 * 365 * 86400)), "10y");
    }

    #[test]
    fn service_cells_per_type() {
        let ts = "2025-01-10T11:55:00Z";
        let cluster_ip = json!({"metadata": {"name": "web", "creationTimestamp": ts},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                     "selector": {"tier": "fe", "app": "web"},
                     "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            service_cells(&cluster_ip, now()),
            vec![
                json!("web"),
                json!("ClusterIP"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80/TCP,53/UDP"),
                json!("5m"),
                json!("app=web,tier=fe")
            ]
        );

        let node_port = json!({"metadata": {"name": "np"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.11", "externalIPs": ["1.1.1.1", "2.2.2.2"],
                     "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}]}});
        let cells = service_cells(&node_port, now());
        assert_eq!(cells[2], "10.96.0.11");
        assert_eq!(cells[3], "1.1.1.1,2.2.2.2");
        assert_eq!(cells[4], "80/TCP,443:30443/TCP");
        assert_eq!(cells[5], "<unknown>");
        assert_eq!(cells[6], "<none>");

        let pending = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80, "nodePort": 31000}]}});
        let cells = service_cells(&pending, now());
        assert_eq!(cells[3], "<pending>");
        assert_eq!(cells[4], "80:31000/TCP");

        let lb = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.5.5.5"}, {"hostname": "a.example.com"}, {"ip": "1.1.1.1"}]}}});
        let cells = service_cells(&lb, now());
        assert_eq!(cells[3], "1.1.1.1,5.5.5.5,a.example.com,9.9.9.9");
        assert_eq!(cells[4], "<none>");
        assert_eq!(cells[2], "<none>");

        let ext = json!({"metadata": {"name": "x"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(service_cells(&ext, now())[3], "db.example.com");

        let headless = json!({"metadata": {"name": "h"},
            "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 5432, "protocol": "TCP"}]}});
        let cells = service_cells(&headless, now());
        assert_eq!(cells[1], "ClusterIP");
        assert_eq!(cells[2], "None");
    }

    #[test]
    fn table_shape_and_include_object() {
        let svc = json!({"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7",
                                      "creationTimestamp": "2025-01-08T12:00:00Z"},
                         "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "protocol": "TCP"}]}});
        let meta = json!({"resourceVersion": "9", "continue": "abc"});
        let t = service_table_at(std::slice::from_ref(&svc), "", meta.clone(), now());
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], meta);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector"
            ]
        );
        assert_eq!(t["columnDefinitions"][6]["priority"], 1);
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        let row = &t["rows"][0];
        assert_eq!(row["cells"][5], "2d");
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(row["object"]["metadata"], svc["metadata"]);

        let t = service_table_at(std::slice::from_ref(&svc), "Object", json!({}), now());
        assert_eq!(t["rows"][0]["object"]["kind"], "Service");
        assert_eq!(t["rows"][0]["object"]["apiVersion"], "v1");
        assert_eq!(t["rows"][0]["object"]["spec"], svc["spec"]);

        let t = service_table_at(&[svc], "None", Value::Null, now());
        assert_eq!(t["rows"][0]["object"], Value::Null);
        assert_eq!(t["metadata"], json!({}));

        let empty = service_table(&[], "Metadata", json!({"resourceVersion": "1"}));
        assert_eq!(empty["rows"], json!([]));
    }

    #[test]
    fn namespace_rows() {
        let ns = json!({"metadata": {"name": "payments", "creationTimestamp": "2025-01-10T09:00:00Z"},
                        "status": {"phase": "Active"}});
        let t = namespace_table_at(&[ns], "Metadata", json!({}), now());
        assert_eq!(t["rows"][0]["cells"], json!(["payments", "Active", "3h"]));
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn quantities_print_in_canonical_form() {
        for (input, canonical) in [
            ("1500m", "1500m"),
            ("1.5", "1500m"),
            ("2000m", "2"),
            ("1000", "1k"),
            ("100", "100"),
            ("1200", "1200"),
            ("0.1", "100m"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1024Mi", "1Gi"),
            ("2048Ki", "2Mi"),
            ("512Ki", "512Ki"),
            ("0.5Ki", "512"),
            ("12345678n", "12345678n"),
            ("12000000n", "12m"),
            ("1e3", "1e3"),
            ("1.5e3", "1500"),
            ("0", "0"),
            ("0m", "0"),
            ("-1500m", "-1500m"),
            ("+5", "5"),
            ("0.0000000001", "1n"),
            ("5E", "5E"),
        ] {
            assert_eq!(canonical_quantity(input), canonical, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "Mi", "1Mx", "1e", "1ee3", "--1", "."] {
            assert!(Quantity::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(canonical_quantity("lots"), "lots");
        let q = |s| Quantity::parse(s).unwrap();
        assert_eq!(q("250m").add(q("1.5")).unwrap().to_string(), "1750m");
        assert_eq!(q("100Mi").add(q("28Mi")).unwrap().to_string(), "128Mi");
        assert_eq!(q("0").add(q("64Ki")).unwrap().to_string(), "64Ki");
        assert_eq!(q("12345678n").scaled(-3), Some(13));
        assert_eq!(q("1536Mi").scaled(0), Some(1536 * 1024 * 1024));
    }

    fn names_and_priorities(t: &Value) -> Vec<(String, u64)> {
        t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["priority"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    fn cols(spec: &[(&str, u64)]) -> Vec<(String, u64)> {
        spec.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect()
    }

    fn cells_of(kind: Kind, item: Value) -> Value {
        let t = object_table_at(kind.info(), &[item], "None", json!({}), now());
        t["rows"][0]["cells"].clone()
    }

    #[test]
    fn every_builtin_prints_a_cell_per_column() {
        for info in crate::sim::kinds::BUILTINS {
            if let Some(p) = printer(info) {
                for item in [
                    json!({}),
                    json!({"metadata": {"name": "x"}, "spec": {}, "status": {}}),
                ] {
                    assert_eq!(
                        (p.cells)(&item, now()).len(),
                        p.columns.len(),
                        "{}",
                        info.kind
                    );
                }
                assert_eq!(p.columns.iter().filter(|c| c.format == "name").count(), 1);
            }
        }
    }

    #[test]
    fn config_maps_secrets_and_limit_ranges() {
        let cm = json!({"metadata": {"name": "app-config", "namespace": "shop", "creationTimestamp": "2025-01-10T11:00:00Z"},
                        "data": {"LOG_LEVEL": "debug", "app.yaml": "port: 8080\n"}, "binaryData": {"logo.png": "iVBORw0KGgo="}});
        let t = object_table_at(Kind::ConfigMap.info(), &[cm], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[("Name", 0), ("Data", 0), ("Age", 0)])
        );
        assert_eq!(t["rows"][0]["cells"], json!(["app-config", 3, "60m"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");

        let tls = json!({"metadata": {"name": "web-tls", "creationTimestamp": "2025-01-08T12:00:00Z"},
                         "type": "kubernetes.io/tls", "data": {"tls.crt": "LS0t", "tls.key": "LS0t"}});
        let t = object_table_at(Kind::Secret.info(), &[tls], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)])
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web-tls", "kubernetes.io/tls", 2, "2d"])
        );
        let opaque = json!({"metadata": {"name": "db", "creationTimestamp": "2025-01-10T11:59:15Z"},
                            "data": {"password": "cw=="}, "stringData": {"password": "s", "user": "app"}});
        assert_eq!(
            cells_of(Kind::Secret, opaque),
            json!(["db", "Opaque", 2, "45s"])
        );

        let lr = json!({"metadata": {"name": "limits", "creationTimestamp": "2025-01-10T11:55:00Z"},
                        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}});
        let t = object_table_at(Kind::LimitRange.info(), &[lr], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[("Name", 0), ("Created At", 0)])
        );
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["limits", "2025-01-10T11:55:00Z"])
        );
        assert_eq!(
            cells_of(Kind::LimitRange, json!({"metadata": {"name": "x"}})),
            json!(["x", "0001-01-01T00:00:00Z"])
        );
    }

    #[test]
    fn resource_quotas_show_usage_per_resource() {
        let rq = json!({"metadata": {"name": "compute", "creationTimestamp": "2025-01-10T09:00:00Z"},
            "spec": {"hard": {"pods": "10"}},
            "status": {
                "hard": {"pods": "10", "requests.cpu": "2", "requests.memory": "1Gi", "limits.cpu": "4", "limits.memory": "2048Mi"},
                "used": {"pods": "1", "requests.cpu": "500m", "requests.memory": "512Mi", "limits.cpu": "1000m"}}});
        let t = object_table_at(Kind::ResourceQuota.info(), &[rq], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[("Name", 0), ("Age", 0), ("Request", 0), ("Limit", 0)])
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "compute",
                "3h",
                "pods: 1/10, requests.cpu: 500m/2, requests.memory: 512Mi/1Gi",
                "limits.cpu: 1/4, limits.memory: 0/2Gi"
            ])
        );
        let fresh = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10"}}});
        assert_eq!(
            cells_of(Kind::ResourceQuota, fresh),
            json!(["q", "<unknown>", "", ""])
        );
    }

    #[test]
    fn events_like_kubectl_get_events() {
        let ev = json!({"metadata": {"name": "web.17f3a2b4c5d6e7f8", "namespace": "shop", "creationTimestamp": "2025-01-10T11:50:00Z"},
            "involvedObject": {"kind": "Deployment", "namespace": "shop", "name": "web", "apiVersion": "apps/v1"},
            "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-7d9f8c6b5 to 3\n",
            "source": {"component": "deployment-controller"},
            "firstTimestamp": "2025-01-10T11:50:00Z", "lastTimestamp": "2025-01-10T11:58:00Z",
            "count": 2, "type": "Normal", "eventTime": null, "reportingComponent": "deployment-controller", "reportingInstance": ""});
        let t = object_table_at(Kind::Event.info(), &[ev], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ])
        );
        assert_eq!(t["columnDefinitions"][9]["format"], "name");
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "2m",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller",
                "Scaled up replica set web-7d9f8c6b5 to 3",
                "10m",
                2,
                "web.17f3a2b4c5d6e7f8"
            ])
        );

        // An event recorded through events.k8s.io: eventTime, a series, reporting fields.
        let series = json!({"metadata": {"name": "web-1.17f3"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
            "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning",
            "eventTime": "2025-01-10T11:59:30.123456Z",
            "series": {"count": 5, "lastObservedTime": "2025-01-10T11:59:50.000000Z"},
            "reportingComponent": "kubelet", "reportingInstance": "sim-node-1"});
        assert_eq!(
            cells_of(Kind::Event, series),
            json!([
                "10s",
                "Warning",
                "BackOff",
                "pod/web-1",
                "spec.containers{web}",
                "kubelet, sim-node-1",
                "Back-off restarting failed container",
                "29s",
                5,
                "web-1.17f3"
            ])
        );

        let bare = json!({"metadata": {"name": "n"}, "involvedObject": {"kind": "Node"},
                          "source": {"component": "kubelet", "host": "sim-node-1"}});
        let cells = cells_of(Kind::Event, bare);
        assert_eq!(cells[0], "<unknown>");
        assert_eq!(cells[3], "node");
        assert_eq!(cells[5], "kubelet, sim-node-1");
        assert_eq!(cells[7], "<unknown>");
        assert_eq!(cells[8], 1);
    }

    #[test]
    fn custom_types_print_name_and_age() {
        let kind = crate::sim::kinds::intern(&crate::sim::kinds::CustomType {
            group: "stable.example.com".into(),
            version: "v1".into(),
            kind: "CronTab".into(),
            plural: "crontabs".into(),
            singular: None,
            namespaced: true,
            short_names: vec![],
            categories: vec![],
        })
        .unwrap();
        let ct = json!({"metadata": {"name": "nightly", "creationTimestamp": "2025-01-10T11:15:00Z"},
                        "spec": {"cronSpec": "* * * * */5"}});
        let t = object_table_at(kind.info(), &[ct], "Object", json!({}), now());
        assert_eq!(names_and_priorities(&t), cols(&[("Name", 0), ("Age", 0)]));
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["rows"][0]["cells"], json!(["nightly", "45m"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "CronTab");
        assert_eq!(
            t["rows"][0]["object"]["apiVersion"],
            "stable.example.com/v1"
        );
    }

    #[test]
    fn pod_metrics_sum_their_containers() {
        let pm = json!({"metadata": {"name": "web-7d9f8c6b5-x2k4p", "namespace": "shop"},
            "timestamp": "2025-01-10T12:00:00Z", "window": "30s",
            "containers": [
                {"name": "web", "usage": {"cpu": "12345678n", "memory": "65536Ki"}},
                {"name": "proxy", "usage": {"cpu": "250m", "memory": "28Mi"}}]});
        let t = object_table_at(
            Kind::PodMetrics.info(),
            &[pm],
            "Object",
            json!({"resourceVersion": "5"}),
            now(),
        );
        assert_eq!(
            names_and_priorities(&t),
            cols(&[("Name", 0), ("cpu", 0), ("memory", 0), ("Window", 0)])
        );
        assert_eq!(t["columnDefinitions"][1]["format"], "quantity");
        assert_eq!(t["columnDefinitions"][3]["format"], "duration");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web-7d9f8c6b5-x2k4p", "262345678n", "92Mi", "30s"])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PodMetrics");
        assert_eq!(t["metadata"]["resourceVersion"], "5");
        let empty = object_table_at(Kind::PodMetrics.info(), &[], "", json!({}), now());
        assert_eq!(empty["columnDefinitions"], json!([]));
        assert_eq!(empty["rows"], json!([]));
    }

    fn pod_template(containers: Value) -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}})
    }

    #[test]
    fn deployments_and_replica_sets() {
        let deploy = json!({"metadata": {"name": "web", "namespace": "shop", "creationTimestamp": "2025-01-09T12:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"}},
                     "template": pod_template(json!([
                         {"name": "web", "image": "registry.example.com/shop/web:1.4.2"},
                         {"name": "envoy", "image": "envoyproxy/envoy:v1.31"}]))},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let t = object_table_at(Kind::Deployment.info(), &[deploy], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ])
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web",
                "2/3",
                3,
                2,
                "24h",
                "web,envoy",
                "registry.example.com/shop/web:1.4.2,envoyproxy/envoy:v1.31",
                "app=web,tier=fe"
            ])
        );
        // Without replicas (defaulted to 1), status or selector.
        assert_eq!(
            cells_of(Kind::Deployment, json!({"metadata": {"name": "new"}})),
            json!(["new", "0/1", 0, 0, "<unknown>", "", "", ""])
        );
        let expressions = json!({"metadata": {"name": "e"}, "spec": {"selector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "zone", "operator": "Exists"}]}}});
        assert_eq!(
            cells_of(Kind::Deployment, expressions)[7],
            "app=web,!canary,env notin (dev),tier in (be,fe),zone"
        );
        let invalid = json!({"metadata": {"name": "i"}, "spec": {"selector": {
            "matchExpressions": [{"key": "tier", "operator": "In", "values": []}]}}});
        assert_eq!(cells_of(Kind::Deployment, invalid)[7], "<invalid>");

        let rs = json!({"metadata": {"name": "web-7d9f8c6b5", "creationTimestamp": "2025-01-10T11:58:30Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d9f8c6b5"}},
                     "template": pod_template(json!([{"name": "web", "image": "registry.example.com/shop/web:1.4.2"}]))},
            "status": {"replicas": 3, "readyReplicas": 1}});
        let t = object_table_at(Kind::ReplicaSet.info(), &[rs], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Name", 0),
                ("Desired", 0),
                ("Current", 0),
                ("Ready", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ])
        );
        assert_eq!(t["columnDefinitions"][1]["type"], "integer");
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web-7d9f8c6b5",
                3,
                3,
                1,
                "90s",
                "web",
                "registry.example.com/shop/web:1.4.2",
                "app=web,pod-template-hash=7d9f8c6b5"
            ])
        );
        assert_eq!(
            cells_of(Kind::ReplicaSet, json!({"metadata": {"name": "r"}}))[7],
            "<none>"
        );
    }

    #[test]
    fn stateful_sets_and_daemon_sets() {
        let sts = json!({"metadata": {"name": "db", "creationTimestamp": "2025-01-10T07:30:00Z"},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": pod_template(json!([{"name": "postgres", "image": "postgres:16"}]))},
            "status": {"replicas": 3, "readyReplicas": 3}});
        let t = object_table_at(Kind::StatefulSet.info(), &[sts], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Name", 0),
                ("Ready", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1)
            ])
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["db", "3/3", "4h30m", "postgres", "postgres:16"])
        );

        let ds = json!({"metadata": {"name": "node-exporter", "creationTimestamp": "2025-01-01T12:00:00Z"},
            "spec": {"selector": {"matchLabels": {"app": "node-exporter"}},
                     "template": {"metadata": {"labels": {"app": "node-exporter"}},
                                  "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "containers": [{"name": "exporter", "image": "prom/node-exporter:v1.8.2"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}});
        let t = object_table_at(Kind::DaemonSet.info(), &[ds], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Name", 0),
                ("Desired", 0),
                ("Current", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Node Selector", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ])
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "node-exporter",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "9d",
                "exporter",
                "prom/node-exporter:v1.8.2",
                "app=node-exporter"
            ])
        );
        assert_eq!(
            cells_of(Kind::DaemonSet, json!({"metadata": {"name": "d"}}))[6],
            "<none>"
        );
    }

    #[test]
    fn horizontal_pod_autoscalers() {
        let hpa = json!({"metadata": {"name": "web", "creationTimestamp": "2025-01-10T11:00:00Z"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 10,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
            "status": {"currentReplicas": 3, "desiredReplicas": 3,
                       "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "63m"}}}]}});
        let t = object_table_at(
            Kind::HorizontalPodAutoscaler.info(),
            &[hpa],
            "",
            json!({}),
            now(),
        );
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Name", 0),
                ("Reference", 0),
                ("Targets", 0),
                ("MinPods", 0),
                ("MaxPods", 0),
                ("Replicas", 0),
                ("Age", 0)
            ])
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "Deployment/web", "cpu: 12%/80%", "2", 10, 3, "60m"])
        );
        // Fresh: no status yet; without metrics or minReplicas, the apiserver's defaults.
        let fresh = json!({"metadata": {"name": "api"},
            "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "api"}, "maxReplicas": 5}});
        assert_eq!(
            cells_of(Kind::HorizontalPodAutoscaler, fresh),
            json!([
                "api",
                "StatefulSet/api",
                "cpu: <unknown>/80%",
                "1",
                5,
                0,
                "<unknown>"
            ])
        );

        let targets = |metrics: Value, current: Value| {
            let hpa = json!({"metadata": {"name": "h"}, "spec": {"metrics": metrics},
                             "status": {"currentMetrics": current}});
            cells_of(Kind::HorizontalPodAutoscaler, hpa)[2].clone()
        };
        assert_eq!(
            targets(
                json!([
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "0.5Gi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "packets-per-second"}, "target": {"type": "AverageValue", "averageValue": "1000"}}},
                    {"type": "Object", "object": {"metric": {"name": "requests-per-second"}, "target": {"type": "Value", "value": "10k"}}},
                    {"type": "External", "external": {"metric": {"name": "queue_messages"}, "target": {"type": "AverageValue", "averageValue": "30"}}}
                ]),
                json!([
                    {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "300Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "packets-per-second"}, "current": {"averageValue": "1.5"}}}
                ])
            ),
            "memory: 300Mi/512Mi, 1500m/1k + 2 more..."
        );
        assert_eq!(
            targets(
                json!([
                    {"type": "Object", "object": {"metric": {"name": "requests-per-second"}, "target": {"type": "Value", "value": "10k"}}},
                    {"type": "External", "external": {"metric": {"name": "queue_messages"}, "target": {"type": "AverageValue", "averageValue": "30"}}}
                ]),
                json!([{"type": "Object", "object": {"metric": {"name": "requests-per-second"}, "current": {"value": "2k"}}}])
            ),
            "2k/10k, <unknown>/30 (avg)"
        );
        assert_eq!(
            targets(
                json!([
                    {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "web", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Sideways"}
                ]),
                json!([{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "web", "current": {"averageUtilization": 45}}}])
            ),
            "cpu: 45%/60%, <unknown type>"
        );
    }

    #[test]
    fn jobs_by_status() {
        let pi = json!({"metadata": {"name": "pi", "creationTimestamp": "2025-01-10T11:40:00Z"},
            "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "7f3c"}},
                     "template": pod_template(json!([{"name": "pi", "image": "perl:5.34.0"}]))},
            "status": {"startTime": "2025-01-10T11:40:00Z", "completionTime": "2025-01-10T11:40:42Z", "succeeded": 1,
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
        let t = object_table_at(Kind::Job.info(), &[pi], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Name", 0),
                ("Status", 0),
                ("Completions", 0),
                ("Duration", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ])
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "pi",
                "Complete",
                "1/1",
                "42s",
                "20m",
                "pi",
                "perl:5.34.0",
                "batch.kubernetes.io/controller-uid=7f3c"
            ])
        );
        let job = |spec: Value, status: Value| {
            let cells = cells_of(
                Kind::Job,
                json!({"metadata": {"name": "j"}, "spec": spec, "status": status}),
            );
            (cells[1].clone(), cells[2].clone(), cells[3].clone())
        };
        assert_eq!(
            job(
                json!({"parallelism": 3}),
                json!({"startTime": "2025-01-10T11:55:00Z", "active": 3})
            ),
            (json!("Running"), json!("0/1 of 3"), json!("5m"))
        );
        assert_eq!(
            job(
                json!({"completions": 5, "suspend": true}),
                json!({"conditions": [{"type": "Suspended", "status": "True"}]})
            ),
            (json!("Suspended"), json!("0/5"), json!(""))
        );
        assert_eq!(
            job(
                json!({}),
                json!({"startTime": "2025-01-10T11:00:00Z", "failed": 7,
                       "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]})
            )
            .0,
            "Failed"
        );
        assert_eq!(
            job(
                json!({}),
                json!({"conditions": [{"type": "FailureTarget", "status": "True"}]})
            )
            .0,
            "FailureTarget"
        );
        assert_eq!(
            job(
                json!({}),
                json!({"conditions": [{"type": "Complete", "status": "False"}]})
            ),
            (json!("Running"), json!("0/1"), json!(""))
        );
        let deleted =
            json!({"metadata": {"name": "j", "deletionTimestamp": "2025-01-10T11:59:00Z"}});
        assert_eq!(cells_of(Kind::Job, deleted)[1], "Terminating");
        let done_and_deleted = json!({"metadata": {"name": "j", "deletionTimestamp": "2025-01-10T11:59:00Z"},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(cells_of(Kind::Job, done_and_deleted)[1], "Complete");
    }

    #[test]
    fn cron_jobs() {
        let cj = json!({"metadata": {"name": "backup", "creationTimestamp": "2025-01-03T12:00:00Z"},
            "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid",
                     "jobTemplate": {"spec": {"template": pod_template(json!([{"name": "backup", "image": "restic/restic:0.17.3"}]))}}},
            "status": {"active": [{"kind": "Job", "name": "backup-28943990", "namespace": "shop"}],
                       "lastScheduleTime": "2025-01-10T11:55:00Z", "lastSuccessfulTime": "2025-01-10T11:50:40Z"}});
        let t = object_table_at(Kind::CronJob.info(), &[cj], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Name", 0),
                ("Schedule", 0),
                ("Timezone", 0),
                ("Suspend", 0),
                ("Active", 0),
                ("Last Schedule", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ])
        );
        assert_eq!(t["columnDefinitions"][3]["type"], "boolean");
        assert_eq!(t["columnDefinitions"][4]["type"], "integer");
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "backup",
                "*/5 * * * *",
                "<none>",
                "False",
                1,
                "5m",
                "7d",
                "backup",
                "restic/restic:0.17.3",
                "<none>"
            ])
        );
        let paused = json!({"metadata": {"name": "report"},
            "spec": {"schedule": "0 6 * * 1", "timeZone": "Europe/Paris", "suspend": true}});
        assert_eq!(
            cells_of(Kind::CronJob, paused),
            json!([
                "report",
                "0 6 * * 1",
                "Europe/Paris",
                "True",
                0,
                "<none>",
                "<unknown>",
                "",
                "",
                "<none>"
            ])
        );
    }

    #[test]
    fn ingresses() {
        let ing = json!({"metadata": {"name": "shop", "creationTimestamp": "2025-01-10T10:00:00Z"},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                     "rules": [{"host": "shop.example.com", "http": {"paths": []}}, {"host": "api.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}, {"hostname": "lb.example.com"}, {"ip": "198.51.100.7"}, {"ip": "203.0.113.10"}]}}});
        let t = object_table_at(Kind::Ingress.info(), &[ing], "", json!({}), now());
        assert_eq!(
            names_and_priorities(&t),
            cols(&[
                ("Name", 0),
                ("Class", 0),
                ("Hosts", 0),
                ("Address", 0),
                ("Ports", 0),
                ("Age", 0)
            ])
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "shop",
                "nginx",
                "shop.example.com,api.example.com",
                "198.51.100.7,203.0.113.10,lb.example.com",
                "80, 443",
                "120m"
            ])
        );
        assert_eq!(
            cells_of(
                Kind::Ingress,
                json!({"metadata": {"name": "x"}, "spec": {"defaultBackend": {}}})
            ),
            json!(["x", "<none>", "*", "", "80", "<unknown>"])
        );
        let rules = |hosts: &[&str]| {
            let rules: Vec<Value> = hosts
                .iter()
                .map(|h| {
                    if h.is_empty() {
                        json!({})
                    } else {
                        json!({"host": h})
                    }
                })
                .collect();
            cells_of(
                Kind::Ingress,
                json!({"metadata": {"name": "x"}, "spec": {"rules": rules}}),
            )[2]
            .clone()
        };
        assert_eq!(rules(&["a", "b", "c"]), "a,b,c");
        assert_eq!(rules(&["a", "b", "c", "d", "e"]), "a,b,c + 2 more...");
        assert_eq!(rules(&["", "a"]), "a");
        assert_eq!(rules(&["", ""]), "*");
    }
}
