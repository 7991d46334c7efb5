//! The streamed merge of a list or Table (SPEC §6 item 9): the members' lists are parsed as
//! they arrive and the merged list is written out as they go, so a merged list does not
//! hold every member's list (and the merged copy) in memory.
//!
//! The way of a read of a collection (no get, no discovery; paging is [`super::page`]'s):
//! 1. Every member is asked ([`fanout::open`]) and its response head awaited, each within
//!    its timeout, so every member that fails (no answer, an error status, no head in time)
//!    is known, and named in a `Warning: 299` header, before the merged body starts. Error
//!    answers are small and read whole.
//! 2. The first member (in key order) that answered 2xx is read up to the start of its
//!    `items` (a Table's `rows`): its `kind` and `apiVersion` (a Table's
//!    `columnDefinitions`) make the head of the merged body. A member that fails there is
//!    named like the others and the next one is read.
//! 3. The response starts: `{"kind":..,"apiVersion":..,"items":[`, then member after
//!    member in key order, each item (row) as soon as it is complete ([`scan::ListReader`],
//!    which checks that it is JSON) with the cluster annotations inserted in place (and a
//!    row's leading cluster cell, as [`super::splice`] does). Each member's body is read
//!    by a task of its own at most [`fanout::READ_AHEAD`] bytes (and one frame) ahead of
//!    the merge, so the members send their lists at the same time while the merge goes
//!    through them in order; past that, what they send stays in the socket (flow control).
//!    kubeplex so holds one item of the member being read, the read-ahead of each member,
//!    plus what hyper read ahead of each member with its head (its read buffer: at most
//!    about 400 KiB, less for a fresh connection). Memory so grows with the number of
//!    members, not with the size of their lists (BENCHMARKS.md, "Aggregation").
//! 4. After the last member: `]`, then `metadata` (the version vector) and `clusterErrors`.
//!    JSON members' order does not matter; these two come last because a member's
//!    resourceVersion may come after its items, and a member may fail halfway.
//!
//! A member whose body breaks off, turns out malformed, or runs out of time halfway
//! through its list cannot change the status any more: its items already written stay
//! (each is a whole JSON value), the rest of its answer is dropped with its connection, and
//! it gets a `clusterErrors` entry (502, or 504 for its timeout) naming how many of its
//! items made it; it has no entry in the version vector (a watch from the vector starts it
//! from now). Its failure is logged; no `Warning` header can be added once the body has
//! started. The merged list itself always ends as valid JSON.
//!
//! Time: a member's timeout bounds its head, then the time the merge spends waiting for its
//! body's bytes; time spent on other members, or waiting for a slow client, is not charged
//! to it (the merge holds it back). So a member trickling its list can hold the merged
//! answer for its whole timeout, after the members before it.
//!
//! Falling back to the whole-body merge ([`super::merged`]): when a member's 2xx is not JSON
//! by its `Content-Type` (protobuf), when the first member's body is not a list or Table
//! this path can write the head of (its `kind` or `apiVersion`, a Table's columns, after its
//! items), or when every member failed before its items began (the 502 naming each). Then
//! every member's answer is read whole, as before. A member failing after its items began
//! is past that point, even the only one: 200, its entry in `clusterErrors`.
//!
//! The cache ([`super::cache`], `cacheTtl` > 0) keeps whole answers and makes identical
//! concurrent reads share one fetch. With it on, members' answers come whole through it
//! ([`fanout::fan_out`]: hits from its memory, misses fetched whole and kept) and only the
//! merged body is streamed from them: the request holds every member's answer once (most of
//! them shared with the cache's entries), not the merged copy on top. Streaming the
//! members' bodies there would give up the shared fetches (a second reader of a miss would
//! have to wait for the whole body anyway) and the entries (they are whole bodies). With
//! `cacheTtl: 0` nothing is whole: the bound above holds. When every member's answer was a
//! kept one, the merged body is made whole (the members' bodies are in memory: the merge
//! never waits) and kept in the cache's merged entries ([`AggregateCache::keep_merged`]),
//! so the next identical read is answered with it before any member is looked at.
//!
//! A client that goes away mid-stream: actix drops the response body, and with it every
//! member's response, which closes their connections.

use super::cache::{AggregateCache, MergedKey};
use super::fanout::{self, Answer, Opened, Outcome, Source};
use super::merge::{annotate, cluster_column, ClusterError};
use super::merge::{CLUSTER_ANNOTATION, CLUSTER_NAME_ANNOTATION};
use super::scan::{skip_ws, Event, ListReader, Marks, Stop};
use super::splice::cluster_row;
use super::vector::Vector;
use crate::cluster::{Cluster, Registry};
use crate::config::AggregateSettings;
use crate::proxy::forward::Caller;
use crate::proxy::ProxyState;
use crate::status::Error;
use actix_web::http::header::{CONTENT_TYPE, WARNING};
use actix_web::HttpResponse;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;

/// The media type of a Table.
const TABLE_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
/// A chunk of the merged body is sent once it holds this much.
const CHUNK: usize = 64 * 1024;

/// What the merged body is.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// A `<Kind>List`: items.
    List { kind: String, api_version: String },
    /// A Table: rows, under these columns (the `Cluster` one first).
    Table { columns: Vec<Value> },
}

impl Shape {
    /// The member list's key of the elements.
    fn array_key(&self) -> &'static str {
        match self {
            Shape::List { .. } => "items",
            Shape::Table { .. } => "rows",
        }
    }

    /// Whether a member's list of `kind` (when it said) merges into this one.
    fn fits(&self, kind: Option<&str>) -> bool {
        match (self, kind) {
            (_, None) => true,
            (Shape::List { .. }, Some(k)) => k.ends_with("List") && k != "Table",
            (Shape::Table { .. }, Some(k)) => k == "Table",
        }
    }

    fn content_type(&self) -> &'static str {
        match self {
            Shape::List { .. } => "application/json",
            Shape::Table { .. } => TABLE_TYPE,
        }
    }

    /// The merged body up to its first element.
    fn head(&self) -> Vec<u8> {
        let head = match self {
            Shape::List { kind, api_version } => {
                serde_json::json!({"kind": kind, "apiVersion": api_version})
            }
            Shape::Table { columns } => serde_json::json!({
                "kind": "Table",
                "apiVersion": "meta.k8s.io/v1",
                "columnDefinitions": columns,
            }),
        };
        let mut out = serde_json::to_vec(&head).unwrap_or_default();
        out.pop(); // the closing brace
        out.extend_from_slice(format!(",\"{}\":[", self.array_key()).as_bytes());
        out
    }

    /// The shape a member's list read up to its elements (or its end) makes, if this path
    /// can write its head.
    fn of(r: &ListReader) -> Option<Shape> {
        let kind = r.kind.as_deref()?;
        if kind == "Table" {
            if r.found_key.is_some_and(|k| k != "rows") {
                return None;
            }
            let mut columns = vec![cluster_column()];
            let theirs: Vec<Value> = serde_json::from_str(r.columns.as_deref()?).ok()?;
            columns.extend(theirs);
            return Some(Shape::Table { columns });
        }
        if !kind.ends_with("List") || r.found_key.is_some_and(|k| k != "items") {
            return None;
        }
        Some(Shape::List {
            kind: kind.to_string(),
            api_version: r.api_version.clone()?,
        })
    }
}

/// A member whose 2xx answer is being merged.
struct Member {
    /// Its place among the members asked.
    index: usize,
    cluster: Arc<Cluster>,
    /// Its status and `Content-Type`.
    head: (u16, String),
    source: Source,
    /// The body ended (the source said so).
    eof: bool,
    reader: ListReader,
    /// Every byte read so far, kept while the first member is read up to its elements (for
    /// the whole-body merge, should it be needed).
    seen: Option<BytesMut>,
    /// The cluster key as a JSON string.
    key_json: String,
    /// `"kubeplex.io/cluster":"<key>","kubeplex.io/cluster-name":"<name>"`.
    pair: String,
}

impl Member {
    fn new(index: usize, cluster: Arc<Cluster>, head: (u16, String), source: Source) -> Self {
        let key_json = serde_json::to_string(cluster.key.as_str()).unwrap_or_default();
        let pair = format!(
            "{}:{key_json},{}:{}",
            serde_json::to_string(CLUSTER_ANNOTATION).unwrap_or_default(),
            serde_json::to_string(CLUSTER_NAME_ANNOTATION).unwrap_or_default(),
            serde_json::to_string(&cluster.spec.name).unwrap_or_default(),
        );
        Member {
            index,
            cluster,
            head,
            source,
            eof: false,
            reader: ListReader::new(None),
            seen: None,
            key_json,
            pair,
        }
    }

    fn key(&self) -> &str {
        self.cluster.key.as_str()
    }

    /// Reads the body's next bytes into the reader.
    async fn read_more(&mut self) -> Result<(), Error> {
        let key = self.cluster.key.clone();
        match self.source.next(key.as_str()).await? {
            Some(b) => {
                if let Some(seen) = &mut self.seen {
                    seen.extend_from_slice(&b);
                }
                self.reader.push(b);
            }
            None => {
                self.eof = true;
                self.reader.finish();
            }
        }
        Ok(())
    }

    /// The entry of this member failing halfway (`e`), or its body being cut short or
    /// malformed (`stop`).
    fn failure(&self, why: Failure) -> ClusterError {
        let key = self.key();
        let items = self.reader.elements;
        let (base, note) = match why {
            Failure::Source(e) => (
                ClusterError::from_error(key, e),
                format!(" ({items} of its items are in the list)"),
            ),
            Failure::Stop(stop) => (
                ClusterError {
                    cluster: key.to_string(),
                    code: 502,
                    reason: "BadGateway".into(),
                    message: match stop {
                        Stop::Incomplete => {
                            format!("cluster {key}: the answer ended inside its list")
                        }
                        Stop::Invalid => format!("cluster {key} answered malformed JSON"),
                    },
                },
                format!(" ({items} of its items are in the list)"),
            ),
            Failure::Kind(kind) => (
                ClusterError {
                    cluster: key.to_string(),
                    code: 502,
                    reason: "BadGateway".into(),
                    message: format!(
                        "cluster {key} answered a {kind}, which does not merge into the list"
                    ),
                },
                String::new(),
            ),
        };
        let mut e = base;
        if items > 0 {
            e.message.push_str(&note);
        }
        e
    }
}

/// Why a member's list stopped short.
enum Failure {
    /// Its time ran out, or its body broke off.
    Source(Error),
    /// Its body was cut short or malformed.
    Stop(Stop),
    /// It is a list of another kind.
    Kind(String),
}

/// The merged list being written.
struct Merger {
    shape: Shape,
    /// The members still to read, in key order.
    members: VecDeque<Member>,
    /// The failed members with their places (sorted at the end).
    errors: Vec<(usize, ClusterError)>,
    vector: Vector,
    /// Whether an element was written (the next needs a comma).
    wrote: bool,
    /// The head is written.
    started: bool,
    /// The end is written.
    finished: bool,
}

impl Merger {
    /// The next chunk of the merged body; `None` after its end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        let mut out = BytesMut::with_capacity(CHUNK + CHUNK / 4);
        if !self.started {
            self.started = true;
            out.extend_from_slice(&self.shape.head());
        }
        loop {
            let Some(m) = self.members.front_mut() else {
                self.finish(&mut out);
                return Some(out.freeze());
            };
            let failed = match m.reader.next() {
                Ok(Event::NeedMore) => {
                    if !out.is_empty() {
                        return Some(out.freeze());
                    }
                    match m.read_more().await {
                        Ok(()) => continue,
                        Err(e) => Failure::Source(e),
                    }
                }
                Ok(Event::ArrayStart) => {
                    let kind = m.reader.kind.clone();
                    if self.shape.fits(kind.as_deref()) {
                        continue;
                    }
                    Failure::Kind(kind.unwrap_or_default())
                }
                Ok(Event::Element(range, marks)) => {
                    // The reader checked it: JSON, so UTF-8.
                    let element = m.reader.bytes(range);
                    if self.wrote {
                        out.put_u8(b',');
                    }
                    self.wrote = true;
                    write_element(&mut out, &self.shape, element, &marks, m);
                    if out.len() >= CHUNK {
                        return Some(out.freeze());
                    }
                    continue;
                }
                Ok(Event::End) => {
                    if let Some(rv) = &m.reader.resource_version {
                        self.vector.set(m.key(), rv);
                    }
                    self.members.pop_front();
                    continue;
                }
                Err(stop) => Failure::Stop(stop),
            };
            let e = m.failure(failed);
            tracing::warn!(cluster = %e.cluster, code = e.code, message = %e.message,
                "aggregate: a member's list failed while it was merged");
            self.errors.push((m.index, e));
            // Dropping the member drops its response and closes its connection.
            self.members.pop_front();
        }
    }

    /// The end of the merged body: the version vector and the failed members.
    fn finish(&mut self, out: &mut BytesMut) {
        self.finished = true;
        out.extend_from_slice(b"],\"metadata\":");
        let meta = serde_json::json!({"resourceVersion": self.vector.encode()});
        let _ = serde_json::to_writer(out.writer(), &meta);
        if !self.errors.is_empty() {
            self.errors.sort_by_key(|(i, _)| *i);
            let errors: Vec<&ClusterError> = self.errors.iter().map(|(_, e)| e).collect();
            out.extend_from_slice(b",\"clusterErrors\":");
            let _ = serde_json::to_writer(out.writer(), &errors);
        }
        out.put_u8(b'}');
    }
}

/// Writes one member's element (an item, a row) with its cluster annotations (and cell).
fn write_element(out: &mut BytesMut, shape: &Shape, element: &[u8], marks: &Marks, m: &Member) {
    match shape {
        Shape::List { .. } => {
            if let Some((at, insert)) = insertion(element, marks) {
                out.extend_from_slice(&element[..at]);
                match insert {
                    Insert::Metadata => {
                        out.extend_from_slice(b"\"metadata\":{\"annotations\":{");
                        out.extend_from_slice(m.pair.as_bytes());
                        out.extend_from_slice(b"}}");
                    }
                    Insert::Annotations => {
                        out.extend_from_slice(b"\"annotations\":{");
                        out.extend_from_slice(m.pair.as_bytes());
                        out.put_u8(b'}');
                    }
                    Insert::Pair => out.extend_from_slice(m.pair.as_bytes()),
                }
                if element.get(skip_ws(element, at)) != Some(&b'}') {
                    out.put_u8(b',');
                }
                out.extend_from_slice(&element[at..]);
                return;
            }
            // Not one the bytes can be annotated in place (annotations already there, or
            // metadata that is not an object): as the general merge does.
            match serde_json::from_slice::<Value>(element) {
                Ok(mut v) => {
                    annotate(&mut v, m.key(), &m.cluster.spec.name);
                    let _ = serde_json::to_writer(out.writer(), &v);
                }
                Err(_) => out.extend_from_slice(element),
            }
        }
        Shape::Table { .. } => {
            // UTF-8: the reader checked it.
            let row = std::str::from_utf8(element).unwrap_or_default();
            if let Some(r) = cluster_row(row, &m.key_json, &m.pair) {
                out.extend_from_slice(&r);
                return;
            }
            match serde_json::from_slice::<Value>(element) {
                Ok(mut row) => {
                    if let Some(Value::Array(cells)) = row.get_mut("cells") {
                        cells.insert(0, Value::String(m.key().to_string()));
                    }
                    if let Some(obj) = row.get_mut("object").filter(|o| o.is_object()) {
                        annotate(obj, m.key(), &m.cluster.spec.name);
                    }
                    let _ = serde_json::to_writer(out.writer(), &row);
                }
                Err(_) => out.extend_from_slice(element),
            }
        }
    }
}

/// What goes where into an item.
enum Insert {
    /// `"metadata":{"annotations":{..}}` (no metadata).
    Metadata,
    /// `"annotations":{..}` into the metadata.
    Annotations,
    /// The pair into the annotations.
    Pair,
}

/// Where the cluster annotations go into `item` and in what form; `None` when the item is
/// not an object with an object `metadata` (and `annotations`), or already carries them.
fn insertion(item: &[u8], marks: &Marks) -> Option<(usize, Insert)> {
    if item.first() != Some(&b'{') {
        return None;
    }
    let Some((meta, _)) = marks.metadata else {
        return Some((1, Insert::Metadata));
    };
    if item.get(meta) != Some(&b'{') {
        return None;
    }
    let Some((ann, end)) = marks.annotations else {
        return Some((meta + 1, Insert::Annotations));
    };
    if item.get(ann) != Some(&b'{') {
        return None;
    }
    let needle = CLUSTER_ANNOTATION.as_bytes();
    if item[ann..end].windows(needle.len()).any(|w| w == needle) {
        return None;
    }
    Some((ann + 1, Insert::Pair))
}

/// Whether a `Content-Type` is JSON (an empty one may be: the body will tell).
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.is_empty()
        || essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

/// A member's state before the merged body starts.
enum Start {
    /// Answered 2xx; its body is (partly) to read.
    Body(Box<Member>),
    /// Failed, or answered an error.
    Done(Outcome),
}

/// The merged answer to a read of a collection; see the module docs.
pub(crate) async fn answer(
    caller: &Caller<'_>,
    proxy: &ProxyState,
    registry: &Registry,
    members: &[Arc<Cluster>],
    read: &fanout::Read<'_>,
    settings: &AggregateSettings,
    cache: Option<(&AggregateCache, Option<MergedKey>)>,
) -> Result<HttpResponse, Error> {
    // With the cache: when every member's answer is a kept one, the merged answer is made
    // whole and kept too (until the oldest of them goes), under `merged_key`.
    let mut keep = None;
    let opened: Vec<(Arc<Cluster>, Opened)> = match cache {
        Some((cache, merged_key)) => {
            let (answers, oldest) = fanout::fan_out_aged(
                caller,
                proxy,
                registry,
                members,
                read,
                settings,
                Some(cache),
            )
            .await;
            if let (Some(key), Some(oldest)) = (merged_key, oldest) {
                keep = Some((cache, key, oldest));
            }
            answers
        }
        .into_iter()
        .map(|a| {
            let opened = match a.outcome {
                Outcome::Http {
                    status,
                    content_type,
                    body,
                } if (200..300).contains(&status) => Opened::Body {
                    status,
                    content_type,
                    source: Source::Whole(body),
                },
                other => Opened::Done(other),
            };
            (a.cluster, opened)
        })
        .collect(),
        None => fanout::open(caller, proxy, registry, members, read, settings).await,
    };
    match begin(opened).await {
        Begun::Whole(answers) => super::merged(answers, false),
        Begun::Streamed { failed, mut merger } => {
            if let (Some((cache, key, oldest)), true) = (keep, failed.is_empty()) {
                // Every body is in memory: the merge does not wait.
                let mut body = BytesMut::new();
                while let Some(chunk) = merger.next_chunk().await {
                    body.extend_from_slice(&chunk);
                }
                let body = body.freeze();
                let content_type = merger.shape.content_type();
                if merger.errors.is_empty() {
                    cache.keep_merged(key, content_type, body.clone(), oldest);
                }
                let mut res = HttpResponse::Ok();
                res.insert_header((CONTENT_TYPE, content_type));
                for w in merger.errors.iter().filter_map(|(_, e)| e.warning("")) {
                    res.append_header((WARNING, w));
                }
                return Ok(res.body(body));
            }
            let mut res = HttpResponse::Ok();
            res.insert_header((CONTENT_TYPE, merger.shape.content_type()));
            for w in failed.iter().filter_map(|e| e.warning("")) {
                res.append_header((WARNING, w));
            }
            let body = futures_util::stream::unfold(merger, |mut m| async move {
                let chunk = m.next_chunk().await?;
                Some((Ok::<_, std::convert::Infallible>(chunk), m))
            });
            Ok(res.streaming(body))
        }
    }
}

/// How the merge goes on once every member's head is in.
enum Begun {
    /// Streamed: the members that failed so far (for the `Warning` headers), and the
    /// merged body to come.
    Streamed {
        failed: Vec<ClusterError>,
        merger: Merger,
    },
    /// The members' whole answers, for the whole-body merge.
    Whole(Vec<Answer>),
}

/// Reads the first member that answered 2xx up to its elements and sets up the streamed
/// merge, or reads every answer whole when it cannot be streamed.
async fn begin(opened: Vec<(Arc<Cluster>, Opened)>) -> Begun {
    let json = opened.iter().all(|(_, o)| match o {
        Opened::Body { content_type, .. } => is_json(content_type),
        Opened::Done(_) => true,
    });
    let clusters: Vec<Arc<Cluster>> = opened.iter().map(|(c, _)| c.clone()).collect();
    let mut starts: Vec<Start> = opened
        .into_iter()
        .enumerate()
        .map(|(i, (cluster, o))| match o {
            Opened::Body {
                status,
                content_type,
                source,
            } => Start::Body(Box::new(Member::new(
                i,
                cluster,
                (status, content_type),
                source,
            ))),
            Opened::Done(outcome) => Start::Done(outcome),
        })
        .collect();
    if !json {
        return Begun::Whole(whole(clusters, starts).await);
    }
    // The first member that answered 2xx, read up to its elements, makes the head.
    let mut shape = None;
    for start in starts.iter_mut() {
        let Start::Body(m) = start else { continue };
        m.seen = Some(BytesMut::new());
        let peeked = loop {
            match m.reader.next() {
                Ok(Event::NeedMore) => {
                    if let Err(e) = m.read_more().await {
                        break Err(Outcome::Failed(e));
                    }
                }
                Ok(Event::ArrayStart | Event::End) => break Ok(Shape::of(&m.reader)),
                Ok(Event::Element(..)) => unreachable!("an element before the array"),
                Err(stop) => {
                    let e = m.failure(Failure::Stop(stop));
                    break Err(Outcome::Failed(Error::bad_gateway(e.message)));
                }
            }
        };
        match peeked {
            Ok(Some(s)) => {
                m.seen = None;
                m.reader.set_array_key(s.array_key());
                shape = Some(s);
                break;
            }
            // Not a list this path can write the head of.
            Ok(None) => break,
            Err(failed) => *start = Start::Done(failed),
        }
    }
    // Not a list this path can write, or every member failed (the 502 naming each).
    let Some(shape) = shape else {
        return Begun::Whole(whole(clusters, starts).await);
    };
    let mut readers = VecDeque::new();
    let mut errors = Vec::new();
    for (i, start) in starts.into_iter().enumerate() {
        match start {
            Start::Body(m) => readers.push_back(*m),
            Start::Done(outcome) => {
                errors.push((i, cluster_error(clusters[i].key.as_str(), outcome)))
            }
        }
    }
    Begun::Streamed {
        failed: errors.iter().map(|(_, e)| e.clone()).collect(),
        merger: Merger {
            shape,
            members: readers,
            errors,
            vector: Vector::default(),
            wrote: false,
            started: false,
            finished: false,
        },
    }
}

/// The `clusterErrors` entry of a member that failed before the merged body started.
fn cluster_error(key: &str, outcome: Outcome) -> ClusterError {
    match outcome {
        Outcome::Failed(e) => ClusterError::from_error(key, e),
        Outcome::Http { status, body, .. } => {
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            ClusterError::from_answer(key, status, parsed.as_ref())
        }
    }
}

/// Every member's answer whole (what was read of it already included), for the whole-body
/// merge ([`super::merged`]).
async fn whole(clusters: Vec<Arc<Cluster>>, starts: Vec<Start>) -> Vec<Answer> {
    let reads = starts.into_iter().map(|start| async move {
        match start {
            Start::Done(outcome) => outcome,
            Start::Body(mut m) => {
                let key = m.cluster.key.clone();
                let mut body = m.seen.take().unwrap_or_default();
                match m.source.rest(key.as_str()).await {
                    Ok(rest) => {
                        body.extend_from_slice(&rest);
                        let (status, content_type) = m.head;
                        Outcome::Http {
                            status,
                            content_type,
                            body: body.freeze(),
                        }
                    }
                    Err(e) => Outcome::Failed(e),
                }
            }
        }
    });
    let outcomes = futures_util::future::join_all(reads).await;
    clusters
        .into_iter()
        .zip(outcomes)
        .map(|(cluster, outcome)| Answer { cluster, outcome })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterSpec;
    use serde_json::json;

    fn cluster(name: &str) -> Arc<Cluster> {
        let url = url::Url::parse("http://127.0.0.1:1").unwrap();
        Arc::new(Cluster::new(
            "config",
            ClusterSpec::new(name, url),
            false,
            None,
        ))
    }

    /// What a test member answers.
    #[derive(Clone)]
    enum Says {
        /// 200 with this body (JSON unless the content type says otherwise).
        Ok(String, &'static str),
        /// 200 with this much of a body, then this failure.
        Broken(String, Error),
        /// No answer.
        Failed(Error),
        /// An error answer.
        Status(u16, String),
    }

    fn ok(body: impl Into<String>) -> Says {
        Says::Ok(body.into(), "application/json")
    }

    fn opened(members: &[(&str, Says)], size: usize) -> Vec<(Arc<Cluster>, Opened)> {
        members
            .iter()
            .map(|(name, says)| {
                let pieces = |b: &str| {
                    b.as_bytes()
                        .chunks(size.max(1))
                        .map(Bytes::copy_from_slice)
                        .collect::<VecDeque<_>>()
                };
                let o = match says.clone() {
                    Says::Ok(body, content_type) => Opened::Body {
                        status: 200,
                        content_type: content_type.into(),
                        source: Source::Pieces(pieces(&body), None),
                    },
                    Says::Broken(body, e) => Opened::Body {
                        status: 200,
                        content_type: "application/json".into(),
                        source: Source::Pieces(pieces(&body), Some(e)),
                    },
                    Says::Failed(e) => Opened::Done(Outcome::Failed(e)),
                    Says::Status(status, body) => Opened::Done(Outcome::Http {
                        status,
                        content_type: "application/json".into(),
                        body: Bytes::from(body),
                    }),
                };
                (cluster(name), o)
            })
            .collect()
    }

    /// The merged answer: whether it was streamed, the Warning headers, status and body.
    async fn run(members: &[(&str, Says)], size: usize) -> (bool, Vec<String>, u16, Value) {
        match begin(opened(members, size)).await {
            Begun::Streamed { failed, mut merger } => {
                let mut out = Vec::new();
                while let Some(c) = merger.next_chunk().await {
                    out.extend_from_slice(&c);
                }
                let warnings = failed
                    .iter()
                    .filter_map(|e| e.warning(""))
                    .map(|w| w.to_str().unwrap().to_string())
                    .collect();
                let body = serde_json::from_slice(&out).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out))
                });
                (true, warnings, 200, body)
            }
            Begun::Whole(answers) => {
                let (w, status, body) = respond(super::super::merged(answers, false)).await;
                (false, w, status, body)
            }
        }
    }

    async fn respond(r: Result<HttpResponse, Error>) -> (Vec<String>, u16, Value) {
        let res = r.unwrap_or_else(|e| actix_web::ResponseError::error_response(&e));
        let warnings = res
            .headers()
            .get_all(WARNING)
            .map(|w| w.to_str().unwrap().to_string())
            .collect();
        let status = res.status().as_u16();
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        (warnings, status, serde_json::from_slice(&body).unwrap())
    }

    /// The whole-body merge of the members' whole answers (broken ones as failed).
    async fn whole_merge(members: &[(&str, Says)]) -> (Vec<String>, u16, Value) {
        let answers = members
            .iter()
            .map(|(name, says)| Answer {
                cluster: cluster(name),
                outcome: match says.clone() {
                    Says::Ok(body, content_type) => Outcome::Http {
                        status: 200,
                        content_type: content_type.into(),
                        body: Bytes::from(body),
                    },
                    Says::Broken(_, e) | Says::Failed(e) => Outcome::Failed(e),
                    Says::Status(status, body) => Outcome::Http {
                        status,
                        content_type: "application/json".into(),
                        body: Bytes::from(body),
                    },
                },
            })
            .collect();
        respond(super::super::merged(answers, false)).await
    }

    fn list(kind: &str, rv: &str, items: Vec<Value>) -> String {
        json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv},
               "items": items})
        .to_string()
    }

    fn odd_items(n: &str) -> Vec<Value> {
        vec![
            json!({"metadata": {"name": format!("{n}-a"), "namespace": "x"},
                   "spec": {"s": "}{\"metadata\"", "metadata": {}}}),
            json!({"kind": "Service", "metadata": {"name": format!("{n}-b"),
                   "annotations": {"x": "y"}}}),
            json!({"metadata": {"name": format!("{n}-c"), "annotations": {}}}),
            json!({"spec": 1}),
            json!({}),
            json!({"metadata": {"annotations": {"kubeplex.io/cluster": "other"}}}),
            json!({"metadata": null}),
            json!({"metadata": {"annotations": null}}),
            json!("a string"),
            json!(5.5e-3),
            json!({"metadata": {"name": "é \u{1F600} \"q\" \\ \n \u{7}"}}),
        ]
    }

    const SIZES: [usize; 7] = [1, 2, 5, 13, 64, 1000, 1 << 20];

    #[actix_web::test]
    async fn streamed_lists_equal_the_whole_merge() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<Value>(&list("ServiceList", "9", odd_items("p"))).unwrap(),
        )
        .unwrap();
        let sets: Vec<Vec<(&str, Says)>> = vec![
            vec![("one", ok(list("ServiceList", "1", odd_items("one"))))],
            vec![
                ("one", ok(list("ServiceList", "1", odd_items("one")))),
                ("two", ok(list("ServiceList", "2", vec![]))),
                ("three", ok(pretty.clone())),
                (
                    "four",
                    ok(r#"{"kind":"ServiceList","apiVersion":"v1","items":null}"#),
                ),
                (
                    "five",
                    ok(
                        r#"{"apiVersion":"v1","items":[{"a":1}],"metadata":{"resourceVersion":"5"},"kind":"ServiceList"}"#,
                    ),
                ),
            ],
            vec![
                (
                    "one",
                    Says::Failed(Error::bad_gateway("cannot connect to cluster")),
                ),
                ("two", ok(list("PodList", "2", odd_items("two")))),
                (
                    "three",
                    Says::Failed(Error::timeout("cluster did not answer")),
                ),
                (
                    "four",
                    Says::Status(
                        403,
                        json!({"kind": "Status", "code": 403, "reason": "Forbidden",
                               "message": "no"})
                        .to_string(),
                    ),
                ),
                ("five", ok(list("PodList", "5", odd_items("five")))),
                ("six", Says::Status(500, "oops".into())),
            ],
        ];
        for members in &sets {
            let (w_want, status_want, want) = whole_merge(members).await;
            assert_eq!(status_want, 200, "{want}");
            for size in SIZES {
                let (streamed, w, status, got) = run(members, size).await;
                assert!(streamed, "{size}");
                assert_eq!(status, 200);
                assert_eq!(got, want, "pieces of {size}");
                assert_eq!(w, w_want, "pieces of {size}");
            }
        }
    }

    #[actix_web::test]
    async fn streamed_tables_equal_the_whole_merge() {
        let table = |name: &str, rv: &str| {
            json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "columnDefinitions": [{"name": "Name", "type": "string"},
                                  {"name": "Age", "type": "string"}],
            "rows": [
                {"cells": [format!("{name}-a"), "1d"],
                 "object": {"kind": "PartialObjectMetadata",
                            "metadata": {"name": format!("{name}-a")}}},
                {"object": {"metadata": {"name": format!("{name}-b")}},
                 "cells": [format!("{name}-b"), "2d"]},
                {"cells": [format!("{name}-c"), "3d"], "object": null},
            ]})
            .to_string()
        };
        let members = vec![
            ("one", ok(table("one", "1"))),
            ("two", ok(table("two", "2"))),
            ("three", Says::Failed(Error::timeout("late"))),
        ];
        let (w_want, _, want) = whole_merge(&members).await;
        for size in SIZES {
            let (streamed, w, _, got) = run(&members, size).await;
            assert!(streamed);
            assert_eq!(got, want, "pieces of {size}");
            assert_eq!(w, w_want);
        }
        assert_eq!(
            want["rows"][3]["cells"],
            json!(["config:two", "two-a", "1d"])
        );
    }

    fn keys_of(v: &Value) -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let a = &i["metadata"]["annotations"];
                format!(
                    "{}/{}",
                    a["kubeplex.io/cluster"].as_str().unwrap(),
                    i["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    fn plain(n: &str, count: usize) -> Vec<Value> {
        (0..count)
            .map(|i| json!({"metadata": {"name": format!("{n}{i}")}, "spec": {"v": [i, "x"]}}))
            .collect()
    }

    #[actix_web::test]
    async fn a_member_failing_halfway_keeps_its_items_and_gets_an_entry() {
        let full = list("ServiceList", "2", plain("b", 4));
        // Cut in the middle of the third item.
        let third = full.find(r#"{"metadata":{"name":"b2"}"#).unwrap() + 10;
        let cut = full[..third].to_string();
        let failures: Vec<(Says, u64, &str, &str)> = vec![
            (ok(cut.clone()), 502, "BadGateway", "ended inside its list"),
            (
                Says::Broken(
                    cut.clone(),
                    Error::bad_gateway("cluster config:b: the answer was cut short: reset"),
                ),
                502,
                "BadGateway",
                "cut short",
            ),
            (
                Says::Broken(
                    cut.clone(),
                    Error::timeout("cluster config:b did not finish its answer within 2s"),
                ),
                504,
                "Timeout",
                "did not finish",
            ),
            (
                ok(format!("{}{{\"x\":tru}}]}}", &full[..third - 10])),
                502,
                "BadGateway",
                "malformed",
            ),
        ];
        for (says, code, reason, text) in failures {
            for size in SIZES {
                let members = vec![
                    ("a", ok(list("ServiceList", "1", plain("a", 2)))),
                    ("b", says.clone()),
                    ("c", ok(list("ServiceList", "3", plain("c", 1)))),
                ];
                let (streamed, warnings, status, got) = run(&members, size).await;
                assert!(streamed && status == 200 && warnings.is_empty());
                assert_eq!(
                    keys_of(&got),
                    [
                        "config:a/a0",
                        "config:a/a1",
                        "config:b/b0",
                        "config:b/b1",
                        "config:c/c0"
                    ],
                    "{text}, pieces of {size}"
                );
                let errors = got["clusterErrors"].as_array().unwrap();
                assert_eq!(errors.len(), 1, "{got}");
                let e = &errors[0];
                assert_eq!(e["cluster"], "config:b");
                assert_eq!(e["code"], code, "{e}");
                assert_eq!(e["reason"], reason, "{e}");
                let message = e["message"].as_str().unwrap();
                assert!(message.contains(text), "{message}");
                assert!(
                    message.contains("2 of its items are in the list"),
                    "{message}"
                );
                // No version for b: a watch from the vector starts it from now.
                let v = Vector::decode(got["metadata"]["resourceVersion"].as_str().unwrap());
                let v = v.unwrap();
                assert_eq!(v.get("config:a"), Some("1"));
                assert_eq!(v.get("config:b"), None);
                assert_eq!(v.get("config:c"), Some("3"));
            }
        }
    }

    #[actix_web::test]
    async fn a_first_member_failing_before_its_items_is_a_warning() {
        let members = vec![
            (
                "a",
                ok(r#"{"kind":"ServiceList","apiVersion":"v1","metadata":{"res"#),
            ),
            ("b", ok(list("ServiceList", "3", plain("b", 1)))),
        ];
        for size in SIZES {
            let (streamed, warnings, _, got) = run(&members, size).await;
            assert!(streamed);
            assert_eq!(keys_of(&got), ["config:b/b0"]);
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains("config:a"), "{warnings:?}");
            assert_eq!(got["clusterErrors"][0]["cluster"], "config:a");
            assert_eq!(got["clusterErrors"][0]["code"], 502);
        }
    }

    #[actix_web::test]
    async fn what_cannot_be_streamed_is_merged_whole() {
        let sets: Vec<Vec<(&str, Says)>> = vec![
            // The kind after the items.
            vec![
                (
                    "a",
                    ok(
                        r#"{"items":[{"metadata":{"name":"x"}}],"kind":"ServiceList","apiVersion":"v1"}"#,
                    ),
                ),
                ("b", ok(list("ServiceList", "3", plain("b", 1)))),
            ],
            // Not a list.
            vec![(
                "a",
                ok(r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"x"}}"#),
            )],
            // Not JSON by its Content-Type.
            vec![
                ("a", ok(list("ServiceList", "1", plain("a", 1)))),
                (
                    "b",
                    Says::Ok("\u{0}k8s".into(), "application/vnd.kubernetes.protobuf"),
                ),
            ],
        ];
        for members in &sets {
            let want = whole_merge(members).await;
            for size in SIZES {
                let (streamed, w, status, got) = run(members, size).await;
                assert!(!streamed);
                assert_eq!((w, status, got), want.clone(), "pieces of {size}");
            }
        }
        // Every member failing (before its items: after, the list has begun): the 502
        // naming each.
        let members = vec![
            (
                "a",
                Says::Failed(Error::bad_gateway("cannot connect to cluster config:a")),
            ),
            ("b", ok(r#"{"kind":"ServiceList","apiVersion":"v1","meta"#)),
        ];
        let (streamed, _, status, got) = run(&members, 3).await;
        assert!(!streamed);
        assert_eq!(status, 502, "{got}");
        let message = got["message"].as_str().unwrap();
        assert!(
            message.contains("config:a") && message.contains("config:b"),
            "{message}"
        );
    }
}
