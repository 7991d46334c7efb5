//! Merging the members' answers (SPEC §6): one `<Kind>List` (items annotated with their
//! cluster, in cluster key order then each member's order, `metadata.resourceVersion` the
//! version vector), one Table with a leading `Cluster` column, or for a get the object from
//! the one cluster that has it (a `<Kind>List` when several do). A member that fails is
//! named in a `Warning: 299` header and in `clusterErrors`; every member failing is a 502
//! `Status` naming each (a 404 naming the clusters asked, for a get found nowhere).

use super::fanout::{Answer, Outcome};
use super::vector::Vector;
use crate::status::{Error, Reason};
use actix_web::http::header::{HeaderValue, CONTENT_TYPE, WARNING};
use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The annotation naming an item's cluster key.
pub(crate) const CLUSTER_ANNOTATION: &str = "kubeplex.io/cluster";
/// The annotation naming an item's cluster name.
pub(crate) const CLUSTER_NAME_ANNOTATION: &str = "kubeplex.io/cluster-name";

/// A member that failed, as listed in `clusterErrors`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ClusterError {
    /// The cluster key.
    pub cluster: String,
    /// The HTTP code of its failure.
    pub code: u16,
    /// The Kubernetes reason (`Forbidden`, `Timeout`, ...).
    pub reason: String,
    /// What it said, or why it said nothing.
    pub message: String,
}

impl ClusterError {
    /// A member kubeplex got no answer from (connection, TLS, credential, timeout).
    pub(crate) fn from_error(key: &str, e: Error) -> ClusterError {
        ClusterError {
            cluster: key.to_string(),
            code: e.reason.code().as_u16(),
            reason: e.reason.as_str().to_string(),
            message: e.message,
        }
    }

    /// A member's error answer (`status`, its body parsed when JSON): the code, reason and
    /// message of its `Status`, else what the HTTP status says.
    pub(crate) fn from_answer(key: &str, status: u16, body: Option<&Value>) -> ClusterError {
        let (code, reason, message) = match body {
            Some(v) if v.get("kind").and_then(Value::as_str) == Some("Status") => (
                v.get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(status),
                v.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or(reason_for(status))
                    .to_string(),
                v.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
            _ => (
                status,
                reason_for(status).to_string(),
                format!("cluster {key} answered {status}"),
            ),
        };
        ClusterError {
            cluster: key.to_string(),
            code,
            reason,
            message,
        }
    }

    /// The `Warning: 299` header naming this failure (`then`: what kubeplex does about it).
    pub(crate) fn warning(&self, then: &str) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "299 kubeplex \"cluster {}: {} ({}){then}\"",
            self.cluster,
            self.message.replace(['"', '\\'], "'"),
            self.reason
        ))
        .ok()
    }
}

/// A member's answer, sorted out.
enum Member {
    Ok {
        key: String,
        name: String,
        value: Value,
    },
    Failed(ClusterError),
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn sort_out(a: Answer) -> Member {
    let key = a.cluster.key.to_string();
    match a.outcome {
        Outcome::Failed(e) => Member::Failed(ClusterError::from_error(&key, e)),
        Outcome::Http { status, body, .. } => {
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            if (200..300).contains(&status) {
                match parsed {
                    Some(value @ Value::Object(_)) => Member::Ok {
                        key,
                        name: a.cluster.spec.name.clone(),
                        value,
                    },
                    _ => Member::Failed(ClusterError {
                        cluster: key.clone(),
                        code: 502,
                        reason: "BadGateway".into(),
                        message: format!("cluster {key} answered {status} without a JSON object"),
                    }),
                }
            } else {
                Member::Failed(ClusterError::from_answer(&key, status, parsed.as_ref()))
            }
        }
    }
}

/// Adds the cluster annotations to an object's metadata.
pub(crate) fn annotate(obj: &mut Value, key: &str, name: &str) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !ann.is_object() {
        *ann = Value::Object(Map::new());
    }
    if let Some(ann) = ann.as_object_mut() {
        ann.insert(CLUSTER_ANNOTATION.into(), json!(key));
        ann.insert(CLUSTER_NAME_ANNOTATION.into(), json!(name));
    }
}

/// The merged answer, ready to send.
pub(crate) struct Merged {
    /// The body (a list, a Table or one object).
    pub body: Value,
    /// The members that failed.
    pub errors: Vec<ClusterError>,
}

impl Merged {
    /// The HTTP response: 200, JSON (a Table's media type when it is one), one
    /// `Warning: 299` per failed member.
    pub(crate) fn response(self) -> HttpResponse {
        let table = self.body.get("kind").and_then(Value::as_str) == Some("Table");
        let mut res = HttpResponse::Ok();
        res.insert_header((
            CONTENT_TYPE,
            if table {
                "application/json;as=Table;v=v1;g=meta.k8s.io"
            } else {
                "application/json"
            },
        ));
        for v in self.errors.iter().filter_map(|e| e.warning("")) {
            res.append_header((WARNING, v));
        }
        res.body(serde_json::to_vec(&self.body).unwrap_or_default())
    }
}

/// Merges the answers to a read of a collection (`item: false`) or of one object.
pub(crate) fn merge(answers: Vec<Answer>, item: bool) -> Result<Merged, Error> {
    let asked: Vec<String> = answers.iter().map(|a| a.cluster.key.to_string()).collect();
    let mut oks = Vec::new();
    let mut errors = Vec::new();
    for a in answers {
        match sort_out(a) {
            Member::Ok { key, name, value } => oks.push((key, name, value)),
            // A get: a cluster without the object is not a failure.
            Member::Failed(e) if item && e.code == 404 => {}
            Member::Failed(e) => errors.push(e),
        }
    }
    if oks.is_empty() {
        if errors.is_empty() {
            return Err(Error::not_found(format!(
                "not found in any of the clusters asked: {}",
                asked.join(", ")
            )));
        }
        let each: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {} ({})", e.cluster, e.message, e.reason))
            .collect();
        return Err(Error::new(
            Reason::BadGateway,
            format!("every cluster failed: {}", each.join("; ")),
        ));
    }
    let first_kind = oks[0]
        .2
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let body = if first_kind == "Table" {
        merge_tables(oks, &errors)
    } else if first_kind.ends_with("List") || !item {
        merge_lists(oks, &errors, &first_kind)
    } else if oks.len() == 1 {
        let (key, name, mut value) = oks.remove(0);
        annotate(&mut value, &key, &name);
        value
    } else {
        let api_version = oks[0].2.get("apiVersion").cloned().unwrap_or(json!("v1"));
        let mut vector = Vector::default();
        let items: Vec<Value> = oks
            .into_iter()
            .map(|(key, name, mut value)| {
                if let Some(rv) = value
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                {
                    vector.set(&key, rv);
                }
                annotate(&mut value, &key, &name);
                value
            })
            .collect();
        json!({
            "kind": format!("{first_kind}List"),
            "apiVersion": api_version,
            "metadata": {"resourceVersion": vector.encode()},
            "items": items,
        })
    };
    Ok(Merged { body, errors })
}

fn with_errors(mut body: Value, errors: &[ClusterError]) -> Value {
    if !errors.is_empty() {
        if let Some(o) = body.as_object_mut() {
            o.insert("clusterErrors".into(), json!(errors));
        }
    }
    body
}

fn merge_lists(oks: Vec<(String, String, Value)>, errors: &[ClusterError], kind: &str) -> Value {
    let api_version = oks[0].2.get("apiVersion").cloned().unwrap_or(json!("v1"));
    let mut vector = Vector::default();
    let mut items = Vec::new();
    for (key, name, mut value) in oks {
        if let Some(rv) = value
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            vector.set(&key, rv);
        }
        // Moved out, not cloned: a member's list is not copied.
        if let Value::Array(list) = value["items"].take() {
            for mut item in list {
                annotate(&mut item, &key, &name);
                items.push(item);
            }
        }
    }
    with_errors(
        json!({
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": vector.encode()},
            "items": items,
        }),
        errors,
    )
}

/// The Table's leading column.
pub(crate) fn cluster_column() -> Value {
    json!({"name": "Cluster", "type": "string", "format": "",
           "description": "The kubeplex key of the cluster the row comes from.", "priority": 0})
}

fn merge_tables(oks: Vec<(String, String, Value)>, errors: &[ClusterError]) -> Value {
    let mut columns = vec![cluster_column()];
    if let Some(Value::Array(cols)) = oks[0].2.get("columnDefinitions") {
        columns.extend(cols.iter().cloned());
    }
    let mut vector = Vector::default();
    let mut rows = Vec::new();
    for (key, name, mut value) in oks {
        if let Some(rv) = value
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            vector.set(&key, rv);
        }
        if let Value::Array(list) = value["rows"].take() {
            for mut row in list {
                if let Some(Value::Array(cells)) = row.get_mut("cells") {
                    cells.insert(0, json!(key));
                }
                if let Some(obj) = row.get_mut("object").filter(|o| o.is_object()) {
                    annotate(obj, &key, &name);
                }
                rows.push(row);
            }
        }
    }
    with_errors(
        json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": vector.encode()},
            "columnDefinitions": columns,
            "rows": rows,
        }),
        errors,
    )
}
