//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: server-side printing, as
//! kube-apiserver does it for `kubectl get`.
//!
//! Cells are computed like kubectl's own printers (`pkg/printers/internalversion`): Services
//! get NAME, TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), AGE and the wide column SELECTOR
//! (priority 1); Namespaces get NAME, STATUS, AGE. Each row carries, per `includeObject`, the
//! full object (`Object`), a `PartialObjectMetadata` (`Metadata`, kubectl's default and the
//! default here), or `null` (`None`).
//!
//! How the store calls this: for a list, `service_table(&items, include, list_metadata)` with
//! the list's `metadata` (resourceVersion, continue, remainingItemCount); for a single get,
//! the same with one item and `{"resourceVersion": <the object's>}`; for a watch asked as a
//! Table, each event's `object` is such a one-row Table (the `ERROR`/`BOOKMARK` events keep
//! their usual object).

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
fn row_object(item: &Value, include_object: &str, kind: &str) -> Value {
    row_object_of(item, include_object, kind, "v1")
}

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

fn column(name: &str, format: &str, description: &str, priority: u8) -> Value {
    json!({"name": name, "type": "string", "format": format, "description": description, "priority": priority})
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn service_columns() -> Value {
    json!([
        column("Name", "name", NAME_DOC, 0),
        column("Type", "", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer.", 0),
        column("Cluster-IP", "", "clusterIP is the IP address of the service and is usually assigned randomly.", 0),
        column("External-IP", "", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.", 0),
        column("Port(s)", "", "The list of ports that are exposed by this service.", 0),
        column("Age", "", AGE_DOC, 0),
        column("Selector", "", "Route service traffic to pods with label keys and values matching this selector.", 1),
    ])
}

fn namespace_columns() -> Value {
    json!([
        column("Name", "name", NAME_DOC, 0),
        column("Status", "", "The status of the namespace", 0),
        column("Age", "", AGE_DOC, 0),
    ])
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

fn age(item: &Value, now: DateTime<Utc>) -> String {
    str_at(item, "/metadata/creationTimestamp")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human_duration(now.signed_duration_since(t.with_timezone(&Utc))))
        .unwrap_or_else(|| "<unknown>".into())
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
    let rows = items
        .iter()
        .map(|svc| {
            json!({"cells": service_cells(svc, now), "object": row_object(svc, include_object, "Service")})
        })
        .collect();
    table(service_columns(), rows, list_metadata)
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
    let rows = items
        .iter()
        .map(|ns| {
            let cells = json!([
                str_at(ns, "/metadata/name").unwrap_or(""),
                str_at(ns, "/status/phase").unwrap_or("Active"),
                age(ns, now),
            ]);
            json!({"cells": cells, "object": row_object(ns, include_object, "Namespace")})
        })
        .collect();
    table(namespace_columns(), rows, list_metadata)
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

/// The columns of a kind's Table: NAME and AGE, then whatever [`kind_columns`] adds.
fn object_columns(info: &TypeInfo) -> Value {
    let mut cols = vec![column("Name", "name", NAME_DOC, 0)];
    cols.extend(kind_columns(info).into_iter().map(|(c, _)| c));
    cols.push(column("Age", "", AGE_DOC, 0));
    Value::Array(cols)
}

/// The extra columns of a kind (between NAME and AGE) with the function computing each
/// cell from the object.
#[allow(clippy::type_complexity)]
fn kind_columns(_info: &TypeInfo) -> Vec<(Value, fn(&Value) -> Value)> {
    Vec::new()
}

/// [`object_table`] at a given time (for AGE).
pub(crate) fn object_table_at(
    info: &TypeInfo,
    items: &[Value],
    include_object: &str,
    list_metadata: Value,
    now: DateTime<Utc>,
) -> Value {
    let extra = kind_columns(info);
    let rows = items
        .iter()
        .map(|item| {
            let mut cells = vec![json!(str_at(item, "/metadata/name").unwrap_or(""))];
            cells.extend(extra.iter().map(|(_, cell)| cell(item)));
            cells.push(json!(age(item, now)));
            json!({
                "cells": cells,
                "object": row_object_of(item, include_object, info.kind, info.api_version),
            })
        })
        .collect();
    table(object_columns(info), rows, list_metadata)
}

/// A `Table` of objects of any kind but Service and Namespace, used like
/// [`service_table`].
pub(crate) fn object_table(
    info: &TypeInfo,
    items: &[Value],
    include_object: &str,
    list_metadata: Value,
) -> Value {
    object_table_at(info, items, include_object, list_metadata, Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
