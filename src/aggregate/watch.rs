//! Merged watches (SPEC §6): `?watch=1|true` or `/watch/` paths under `{base}/aggregate`.
//!
//! Each member's watch is opened (under the fan-out timeout for its response head only)
//! with its own version from the caller's version vector, then read by its own task on
//! this worker ([`tokio::task::spawn_local`]: the worker's hyper client is `!Send`), which
//! parses the member's newline-delimited events and hands them to one channel. The
//! response body reads that channel as events arrive (no member waits on another),
//! annotates each object with its cluster and sets its `metadata.resourceVersion` to the
//! updated vector, so a client may resume from any event. A Table watch gets the leading
//! `Cluster` column in every event. Members' BOOKMARKs pass as BOOKMARKs carrying the
//! vector.
//!
//! A member stream that ends is reopened from its last version with backoff and jitter; a
//! member that cannot be reached at start is named in a `Warning` header and retried in
//! the background; a member's 410 (HTTP or `ERROR` event) ends the merged stream with one
//! `ERROR` 410 event; a reload that adds or removes clusters ends it cleanly. Dropping the
//! response body (the client is gone; noticed at the next write, a keepalive space at
//! the latest) aborts every member task, which drops the members'
//! responses and so closes their watches.

use super::merge::{annotate, cluster_column, ClusterError};
use super::vector::Vector;
use crate::cluster::{Choice, Cluster, Registry};
use crate::config::AggregateSettings;
use crate::proxy::{forward, ProxyState};
use crate::status::{Error, Reason};
use crate::upstream::client::ResponseBody;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, WARNING};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The first wait before reopening a member's watch; doubled after each failure.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest wait before reopening a member's watch.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often an open merged watch compares the registry's clusters with its own.
const MEMBERSHIP_CHECK: Duration = Duration::from_secs(1);
/// How long a merged watch stays silent before it writes one space: whitespace before the
/// next event, which JSON stream decoders skip (Go's, and line-based ones that parse each
/// line as JSON; a bare newline would be an empty line, which some clients hand on as an
/// event). The write is how a client that went away is noticed (the server learns it only
/// when a write fails), and with it every member watch closed.
const KEEPALIVE: Duration = Duration::from_secs(5);
/// The longest event line a member may send.
const MAX_LINE: usize = 16 << 20;
/// The media type of a watch stream.
const WATCH_TYPE: &str = "application/json;stream=watch";
/// The annotation of the BOOKMARK that ends the initial events (`sendInitialEvents`).
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// What a member's task hands the merged stream.
enum Msg {
    /// One event of the member's stream.
    Event {
        key: String,
        name: String,
        typ: String,
        object: Value,
    },
    /// The member's version is too old (410): the merged watch ends.
    Gone { key: String, message: String },
}

/// One member's watch: what it takes to (re)open it.
struct Member {
    req: HttpRequest,
    proxy: web::Data<ProxyState>,
    registry: Arc<Registry>,
    cluster: Arc<Cluster>,
    tail: String,
    /// The caller's query.
    query: Option<String>,
    /// The timeout for the response head.
    timeout: Duration,
}

/// What opening a member's watch gave.
enum Opened {
    /// The event stream (and its `Content-Type`).
    Stream(ResponseBody, String),
    /// 410: the version asked is too old.
    Gone(String),
    /// Anything else.
    Failed(ClusterError),
}

/// The caller's query with `resourceVersion` set to `rv` (dropped when `None`).
fn query_at(query: Option<&str>, rv: Option<&str>) -> Option<String> {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k != "resourceVersion" {
            out.append_pair(&k, &v);
        }
    }
    if let Some(rv) = rv.filter(|r| !r.is_empty()) {
        out.append_pair("resourceVersion", rv);
    }
    Some(out.finish()).filter(|s| !s.is_empty())
}

/// The caller's query parameter `name`.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The version a member starts from: its own from a vector (none when the vector lacks
/// it: from now), or the caller's plain version as it is.
fn start_version(query: Option<&str>, key: &str) -> Option<String> {
    let rv = param(query, "resourceVersion")?;
    match Vector::decode(&rv) {
        Some(v) => v.get(key).map(str::to_string),
        None => Some(rv).filter(|r| !r.is_empty()),
    }
}

impl Member {
    fn key(&self) -> &str {
        self.cluster.key.as_str()
    }

    /// Opens the member's watch from `rv`.
    async fn open(&self, rv: Option<&str>) -> Opened {
        match self.try_open(rv).await {
            Ok(o) => o,
            Err(e) => Opened::Failed(ClusterError::from_error(self.key(), e)),
        }
    }

    async fn try_open(&self, rv: Option<&str>) -> Result<Opened, Error> {
        let key = self.key();
        let query = query_at(self.query.as_deref(), rv);
        let choice = Choice {
            cluster: self.cluster.clone(),
            warning: None,
        };
        let mut prepared = forward::prepare(
            &self.req,
            &self.proxy,
            &self.registry,
            &choice,
            &self.tail,
            forward::Via::Hyper,
        )?;
        prepared.uri = prepared.up.target(&self.tail, query.as_deref())?;
        // Events are re-encoded: members answer plain (no compression), in JSON (Tables
        // when asked for; never protobuf, which has no lines to merge).
        prepared.headers.remove(http1::header::ACCEPT_ENCODING);
        let accept = prepared
            .headers
            .get(http1::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !accept.contains("as=Table") {
            prepared.headers.insert(
                http1::header::ACCEPT,
                http1::HeaderValue::from_static("application/json"),
            );
        }
        let up = prepared.up.clone();
        let request = forward::get_request(prepared)?;
        let res = match tokio::time::timeout(self.timeout, up.http.request(request)).await {
            Err(_) => {
                return Err(Error::timeout(format!(
                    "cluster {key} did not answer within {}",
                    humantime::format_duration(self.timeout)
                )))
            }
            Ok(r) => r.map_err(|e| forward::send_error(key, &e))?,
        };
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(http1::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if (200..300).contains(&status) {
            return Ok(Opened::Stream(res.into_body(), content_type));
        }
        // An error answer: small; read it under the same timeout.
        let body = tokio::time::timeout(self.timeout, res.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        let failed = ClusterError::from_answer(key, status, parsed.as_ref());
        if status == 410 || failed.code == 410 {
            return Ok(Opened::Gone(failed.message));
        }
        Ok(Opened::Failed(failed))
    }
}

/// How reading a member's stream ended.
enum Ended {
    /// The stream ended or broke: reopen it.
    Reopen,
    /// 410: end the merged watch.
    Gone(String),
    /// The merged stream is gone: stop.
    Closed,
}

/// The wait before the next reopen: `backoff` plus up to half of it again, at random.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(1.0 + rand::random::<f64>() * 0.5)
}

/// A member's task: reads its stream (`body`, when the start opened it) and reopens it
/// from its last version whenever it ends, until the merged stream is dropped or a 410.
async fn run(
    m: Member,
    mut rv: Option<String>,
    mut body: Option<ResponseBody>,
    tx: mpsc::Sender<Msg>,
) {
    let mut backoff = BACKOFF_START;
    let mut wait_first = body.is_none();
    loop {
        if wait_first {
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        wait_first = true;
        let stream = match body.take() {
            Some(b) => b,
            None => match m.open(rv.as_deref()).await {
                Opened::Stream(b, _) => b,
                Opened::Gone(message) => {
                    let _ = tx
                        .send(Msg::Gone {
                            key: m.key().to_string(),
                            message,
                        })
                        .await;
                    return;
                }
                Opened::Failed(e) => {
                    tracing::debug!(cluster = %e.cluster, code = e.code, message = %e.message,
                        "aggregate watch: reopening a member failed; retrying");
                    continue;
                }
            },
        };
        match read(&m, stream, &mut rv, &tx, &mut backoff).await {
            Ended::Reopen => {}
            Ended::Gone(message) => {
                let _ = tx
                    .send(Msg::Gone {
                        key: m.key().to_string(),
                        message,
                    })
                    .await;
                return;
            }
            Ended::Closed => return,
        }
    }
}

/// Reads one member stream's events into `tx` until it ends.
async fn read(
    m: &Member,
    mut body: ResponseBody,
    rv: &mut Option<String>,
    tx: &mpsc::Sender<Msg>,
    backoff: &mut Duration,
) -> Ended {
    let mut buf = BytesMut::new();
    loop {
        let frame = match body.frame().await {
            Some(Ok(f)) => f,
            Some(Err(_)) | None => return Ended::Reopen,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line = buf.split_to(i + 1);
            let Ok(event) = serde_json::from_slice::<Value>(&line[..i]) else {
                continue;
            };
            let typ = event
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let object = event.get("object").cloned().unwrap_or(Value::Null);
            if typ == "ERROR" {
                if object.get("code").and_then(Value::as_u64) == Some(410) {
                    let message = object
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("the resourceVersion is too old")
                        .to_string();
                    return Ended::Gone(message);
                }
                return Ended::Reopen;
            }
            if let Some(v) = version_of(&object) {
                *rv = Some(v);
            }
            *backoff = BACKOFF_START;
            let msg = Msg::Event {
                key: m.key().to_string(),
                name: m.cluster.spec.name.clone(),
                typ,
                object,
            };
            if tx.send(msg).await.is_err() {
                return Ended::Closed;
            }
        }
        if buf.len() > MAX_LINE {
            return Ended::Reopen;
        }
    }
}

/// An event object's resourceVersion (a Table's own, else its row's object's).
fn version_of(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")
        .or_else(|| object.pointer("/rows/0/object/metadata/resourceVersion"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// One watch event line.
fn line(typ: &str, object: &Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": typ, "object": object})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// The `ERROR` 410 event that ends a merged watch.
fn gone_line(key: &str, message: &str) -> Bytes {
    line(
        "ERROR",
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!("cluster {key}: {message}"),
            "reason": "Expired",
            "code": 410,
        }),
    )
}

/// Sets `metadata.resourceVersion` of `obj`.
fn set_version(obj: &mut Value, rv: &str) {
    if let Some(o) = obj.as_object_mut() {
        let meta = o
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), json!(rv));
        }
    }
}

/// The merged stream's state: the members' channel and tasks (aborted on drop), the
/// vector, and what it watches for to end.
struct Merger {
    rx: mpsc::Receiver<Msg>,
    tasks: Vec<JoinHandle<()>>,
    shape: Shape,
    proxy: web::Data<ProxyState>,
    generation: u64,
    keys: Vec<String>,
    tick: tokio::time::Interval,
    deadline: Option<tokio::time::Instant>,
    /// When the last line was written.
    last_sent: tokio::time::Instant,
    done: bool,
}

impl Drop for Merger {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn cluster_keys(registry: &Registry) -> Vec<String> {
    registry
        .clusters()
        .iter()
        .map(|c| c.key.to_string())
        .collect()
}

impl Merger {
    /// The next line of the merged stream; `None` ends it.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let line = self.next_line().await;
        self.last_sent = tokio::time::Instant::now();
        line
    }

    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let deadline = self.deadline;
            tokio::select! {
                msg = self.rx.recv() => match msg? {
                    Msg::Gone { key, message } => {
                        self.done = true;
                        return Some(gone_line(&key, &message));
                    }
                    Msg::Event { key, name, typ, object } => {
                        return Some(self.shape.event(&key, &name, &typ, object));
                    }
                },
                _ = self.tick.tick() => {
                    if self.membership_changed() {
                        return None;
                    }
                    if self.last_sent.elapsed() >= KEEPALIVE {
                        return Some(Bytes::from_static(b" "));
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    return None;
                }
            }
        }
    }

    /// Whether a reload added or removed clusters since the watch started.
    fn membership_changed(&mut self) -> bool {
        let registry = self.proxy.registry.load();
        if registry.generation() == self.generation {
            return false;
        }
        self.generation = registry.generation();
        cluster_keys(&registry) != self.keys
    }
}

/// What turns members' events into merged ones: the vector so far, the Table columns.
struct Shape {
    vector: Vector,
    /// The members' Table column definitions, from the first event that had them.
    columns: Option<Vec<Value>>,
    /// The members that sent the BOOKMARK ending their initial events.
    initial_done: BTreeSet<String>,
    /// How many members there are.
    members: usize,
}

impl Shape {
    /// The merged line for a member's event.
    fn event(&mut self, key: &str, name: &str, typ: &str, mut object: Value) -> Bytes {
        if let Some(rv) = version_of(&object) {
            self.vector.set(key, &rv);
        }
        let rv = self.vector.encode();
        let table = object.get("kind").and_then(Value::as_str) == Some("Table");
        if typ == "BOOKMARK" {
            let initial_end = object
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(INITIAL_EVENTS_END))
                .and_then(Value::as_str)
                == Some("true");
            if initial_end {
                self.initial_done.insert(key.to_string());
            }
            let mut meta = json!({"resourceVersion": rv});
            if initial_end && self.initial_done.len() >= self.members {
                meta["annotations"] = json!({INITIAL_EVENTS_END: "true"});
            }
            let mut bookmark = json!({
                "kind": object.get("kind").cloned().unwrap_or(Value::Null),
                "apiVersion": object.get("apiVersion").cloned().unwrap_or(Value::Null),
                "metadata": meta,
            });
            if table {
                bookmark["columnDefinitions"] = json!(self.table_columns());
                bookmark["rows"] = json!([]);
            }
            return line(typ, &bookmark);
        }
        if table {
            if self.columns.is_none() {
                if let Some(Value::Array(cols)) = object.get("columnDefinitions") {
                    if !cols.is_empty() {
                        self.columns = Some(cols.clone());
                    }
                }
            }
            object["columnDefinitions"] = json!(self.table_columns());
            if let Some(Value::Array(rows)) = object.get_mut("rows") {
                for row in rows {
                    if let Some(Value::Array(cells)) = row.get_mut("cells") {
                        cells.insert(0, json!(key));
                    }
                    if let Some(obj) = row.get_mut("object").filter(|o| o.is_object()) {
                        annotate(obj, key, name);
                        set_version(obj, &rv);
                    }
                }
            }
        } else {
            annotate(&mut object, key, name);
        }
        set_version(&mut object, &rv);
        line(typ, &object)
    }

    fn table_columns(&self) -> Vec<Value> {
        let mut cols = vec![cluster_column()];
        cols.extend(self.columns.iter().flatten().cloned());
        cols
    }
}

fn watch_response(content_type: &str) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::Ok();
    res.insert_header((CONTENT_TYPE, content_type))
        .insert_header((CACHE_CONTROL, "no-cache, private"));
    res
}

/// Serves a merged watch of `tail` over `members`.
pub(crate) async fn serve(
    req: &HttpRequest,
    registry: &Arc<Registry>,
    members: Vec<Arc<Cluster>>,
    tail: &str,
    settings: &AggregateSettings,
) -> Result<HttpResponse, Error> {
    let proxy = req
        .app_data::<web::Data<ProxyState>>()
        .cloned()
        .ok_or_else(|| Error::internal("the proxy state is missing"))?;
    let query = req.uri().query().map(str::to_string);
    let deadline = match param(query.as_deref(), "timeoutSeconds") {
        Some(t) => Some(
            tokio::time::Instant::now()
                + Duration::from_secs(t.parse::<u64>().map_err(|_| {
                    Error::bad_request(format!("timeoutSeconds {t:?} is not a number"))
                })?),
        ),
        None => None,
    };
    let opens = members.iter().map(|cluster| {
        let m = Member {
            req: req.clone(),
            proxy: proxy.clone(),
            registry: registry.clone(),
            cluster: cluster.clone(),
            tail: tail.to_string(),
            query: query.clone(),
            timeout: settings.timeout,
        };
        async move {
            let rv = start_version(m.query.as_deref(), m.key());
            let opened = m.open(rv.as_deref()).await;
            (m, rv, opened)
        }
    });
    let opened: Vec<(Member, Option<String>, Opened)> = stream::iter(opens)
        .buffered(settings.concurrency.max(1))
        .collect()
        .await;

    // A member already past its history: one ERROR 410 event and the end.
    for (m, _, o) in &opened {
        if let Opened::Gone(message) = o {
            let l = gone_line(m.key(), message);
            return Ok(
                watch_response(WATCH_TYPE).streaming(stream::once(async move {
                    Ok::<_, std::convert::Infallible>(l)
                })),
            );
        }
    }
    let failed: Vec<ClusterError> = opened
        .iter()
        .filter_map(|(_, _, o)| match o {
            Opened::Failed(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    if failed.len() == opened.len() {
        let each: Vec<String> = failed
            .iter()
            .map(|e| format!("{}: {} ({})", e.cluster, e.message, e.reason))
            .collect();
        return Err(Error::new(
            Reason::BadGateway,
            format!("every cluster failed: {}", each.join("; ")),
        ));
    }
    let content_type = opened
        .iter()
        .find_map(|(_, _, o)| match o {
            Opened::Stream(_, ct) if !ct.is_empty() => Some(ct.clone()),
            _ => None,
        })
        .unwrap_or_else(|| WATCH_TYPE.to_string());

    let (tx, rx) = mpsc::channel(64);
    let members_count = opened.len();
    let tasks = opened
        .into_iter()
        .map(|(m, rv, o)| {
            let body = match o {
                Opened::Stream(b, _) => Some(b),
                _ => None,
            };
            tokio::task::spawn_local(run(m, rv, body, tx.clone()))
        })
        .collect();
    drop(tx);
    let mut tick = tokio::time::interval(MEMBERSHIP_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let current = proxy.registry.load();
    let merger = Merger {
        rx,
        tasks,
        shape: Shape {
            vector: param(query.as_deref(), "resourceVersion")
                .and_then(|rv| Vector::decode(&rv))
                .unwrap_or_default(),
            columns: None,
            initial_done: BTreeSet::new(),
            members: members_count,
        },
        generation: current.generation(),
        keys: cluster_keys(&current),
        proxy: proxy.clone(),
        tick,
        deadline,
        last_sent: tokio::time::Instant::now(),
        done: false,
    };
    let body = stream::unfold(merger, |mut m| async move {
        m.next()
            .await
            .map(|l| (Ok::<_, std::convert::Infallible>(l), m))
    });
    let mut res = watch_response(&content_type);
    for v in failed
        .iter()
        .filter_map(|e| e.warning("; watching it when it answers"))
    {
        res.append_header((WARNING, v));
    }
    Ok(res.streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(
            query_at(
                Some("watch=1&resourceVersion=kpv1.x&labelSelector=a%3Db"),
                Some("7")
            )
            .as_deref(),
            Some("watch=1&labelSelector=a%3Db&resourceVersion=7")
        );
        assert_eq!(query_at(Some("resourceVersion=3"), None), None);
        let mut v = Vector::default();
        v.set("config:a", "12");
        let q = format!("watch=1&resourceVersion={}", v.encode());
        assert_eq!(start_version(Some(&q), "config:a").as_deref(), Some("12"));
        assert_eq!(start_version(Some(&q), "config:b"), None);
        assert_eq!(
            start_version(Some("watch=1&resourceVersion=5"), "x").as_deref(),
            Some("5")
        );
        assert_eq!(start_version(Some("watch=1"), "x"), None);
    }

    fn parse(l: &Bytes) -> Value {
        assert!(l.ends_with(b"\n"));
        serde_json::from_slice(l).unwrap()
    }

    #[test]
    fn events_bookmarks_and_tables() {
        let mut s = Shape {
            vector: Vector::default(),
            columns: None,
            initial_done: BTreeSet::new(),
            members: 2,
        };
        let svc = json!({"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "web", "resourceVersion": "5"}});
        let ev = parse(&s.event("config:a", "a", "ADDED", svc));
        assert_eq!(ev["type"], "ADDED");
        let rv = ev["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap();
        assert_eq!(Vector::decode(rv).unwrap().get("config:a"), Some("5"));
        assert_eq!(
            ev["object"]["metadata"]["annotations"]["kubeplex.io/cluster-name"],
            "a"
        );

        // A member's BOOKMARK: one BOOKMARK with the vector; the initial-events-end mark
        // only once every member sent its own.
        let end = |rv: &str| {
            json!({"kind": "Service", "apiVersion": "v1", "metadata": {"resourceVersion": rv,
                "annotations": {"k8s.io/initial-events-end": "true"}}})
        };
        let bm = parse(&s.event("config:b", "b", "BOOKMARK", end("9")));
        assert_eq!(bm["type"], "BOOKMARK");
        assert_eq!(bm["object"]["kind"], "Service");
        assert_eq!(bm["object"]["metadata"].get("annotations"), None);
        let v = Vector::decode(
            bm["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (v.get("config:a"), v.get("config:b")),
            (Some("5"), Some("9"))
        );
        let bm = parse(&s.event("config:a", "a", "BOOKMARK", end("6")));
        assert_eq!(
            bm["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );

        // Tables: the Cluster column in every event, even when a member sends its column
        // definitions only in its first.
        let table = |cols: Value| {
            json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": "7"}, "columnDefinitions": cols,
                "rows": [{"cells": ["web", "ClusterIP"],
                          "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "web"}}}]})
        };
        let cols = json!([{"name": "Name"}, {"name": "Type"}]);
        for t in [table(cols), table(json!([]))] {
            let ev = parse(&s.event("config:b", "b", "MODIFIED", t));
            let o = &ev["object"];
            let names: Vec<&str> = o["columnDefinitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["Cluster", "Name", "Type"]);
            assert_eq!(
                o["rows"][0]["cells"],
                json!(["config:b", "web", "ClusterIP"])
            );
            assert_eq!(
                o["rows"][0]["object"]["metadata"]["annotations"]["kubeplex.io/cluster"],
                "config:b"
            );
            let v = Vector::decode(o["metadata"]["resourceVersion"].as_str().unwrap()).unwrap();
            assert_eq!(v.get("config:b"), Some("7"));
        }
    }
}
