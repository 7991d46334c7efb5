//! Watches: one JSON event per line (`application/json;stream=watch`), each written to a
//! channel-backed body and flushed as it happens. A watch starts from the current state
//! (synthetic ADDED events) or from a resourceVersion (the missed history, 410 ERROR event
//! when compacted), then follows the store's broadcast in resourceVersion order, with
//! selector transitions as ADDED/DELETED like a real server, BOOKMARKs when allowed,
//! `timeoutSeconds`, and fault-injected early closes. A watcher too slow to keep up is ended
//! with a 410 ERROR event, never skipped silently.

use super::list::{parse_rv, selectors};
use super::{accept, table_of, Params};
use crate::sim::errors::SimError;
use crate::sim::selectors::Selectors;
use crate::sim::state::SimState;
use crate::sim::store::{watch_line, Event, EventType, Kind, Stored, WatchStart};
use crate::sim::table;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Default watch timeout when `timeoutSeconds` is absent (a real server picks 30-60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one watch selects and how it encodes events.
struct Filter {
    kind: Kind,
    namespace: Option<String>,
    selectors: Selectors,
    table: Option<String>,
}

impl Filter {
    fn selects(&self, s: &Stored) -> bool {
        s.kind() == self.kind
            && self.namespace.as_deref().is_none_or(|ns| ns == s.namespace)
            && self.selectors.matches(s)
    }

    /// The event type this watcher sees for `ev`, if any.
    fn event_type(&self, ev: &Event) -> Option<EventType> {
        if ev.kind() != self.kind {
            return None;
        }
        let now = self.selects(&ev.object);
        let before = ev.old.as_ref().is_some_and(|o| self.selects(o));
        match (ev.typ, before, now) {
            (EventType::Added, _, true) => Some(EventType::Added),
            (EventType::Deleted, true, _) => Some(EventType::Deleted),
            (EventType::Modified, true, true) => Some(EventType::Modified),
            (EventType::Modified, false, true) => Some(EventType::Added),
            (EventType::Modified, true, false) => Some(EventType::Deleted),
            _ => None,
        }
    }

    fn line(&self, typ: &str, s: &Stored) -> Bytes {
        let object = match &self.table {
            Some(include) => {
                let meta = json!({"resourceVersion": s.rv.to_string()});
                serde_json::to_vec(&table_of(self.kind, &[s.value()], include, meta))
                    .unwrap_or_default()
            }
            None => s.full_json(),
        };
        watch_line(typ, &object)
    }

    /// The line for a live event: shared by every plain-JSON watcher.
    fn event_line(&self, typ: EventType, ev: &Event) -> Bytes {
        match self.table {
            Some(_) => self.line(typ.as_str(), &ev.object),
            None => ev.line(typ),
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = match &self.table {
            Some(include) => table_of(self.kind, &[], include, meta),
            None => {
                json!({"kind": self.kind.name(), "apiVersion": self.kind.api_version(), "metadata": meta})
            }
        };
        let mut line =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// An ERROR event line carrying a Status.
pub(super) fn error_line(e: &SimError) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_value()})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> HttpResponse {
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    HttpResponse::Ok()
        .insert_header(("Content-Type", "application/json;stream=watch"))
        .insert_header(("Cache-Control", "no-cache, private"))
        .streaming(body)
}

struct Sender {
    tx: mpsc::Sender<Bytes>,
    sent: u64,
    limit: Option<u64>,
}

impl Sender {
    /// Sends one event; false when the watch must end (client gone or fault limit).
    async fn event(&mut self, line: Bytes) -> bool {
        if self.tx.send(line).await.is_err() {
            return false;
        }
        self.sent += 1;
        self.limit.is_none_or(|l| self.sent < l)
    }

    async fn raw(&mut self, line: Bytes) -> bool {
        self.tx.send(line).await.is_ok()
    }
}

/// Serves a watch of `kind` (in `namespace`, optionally pinned to one name).
pub(super) fn watch(
    state: web::Data<SimState>,
    req: &HttpRequest,
    params: &Params,
    kind: Kind,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<HttpResponse, SimError> {
    let mut selectors = selectors(kind, params)?;
    if let Some(name) = name {
        selectors
            .fields
            .0
            .push(crate::sim::selectors::FieldRequirement {
                field: "metadata.name".into(),
                value: name.to_string(),
                negate: false,
            });
    }
    let bookmarks = params.flag("allowWatchBookmarks")?;
    let send_initial = params.flag("sendInitialEvents")?;
    let timeout = match params.get("timeoutSeconds").filter(|s| !s.is_empty()) {
        Some(t) => Duration::from_secs(t.parse::<u64>().map_err(|_| {
            SimError::bad_request(format!(
                "timeoutSeconds: Invalid value: {t:?}: must be an integer"
            ))
        })?),
        None => DEFAULT_TIMEOUT,
    };
    let rv = params.get("resourceVersion").filter(|s| !s.is_empty());
    if send_initial {
        if !bookmarks {
            return Err(SimError::invalid(
                "ListOptions",
                "",
                vec![crate::sim::errors::Cause::forbidden(
                    "allowWatchBookmarks",
                    "allowWatchBookmarks required when sendInitialEvents is true",
                )],
            ));
        }
        if params.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(SimError::invalid(
                "ListOptions",
                "",
                vec![crate::sim::errors::Cause::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            ));
        }
    }
    let since = match rv {
        None | Some("0") => None,
        Some(r) => Some(parse_rv(r)?),
    };
    let table = table::wants_table(accept(req)).then(|| {
        params
            .get("includeObject")
            .unwrap_or("Metadata")
            .to_string()
    });
    let filter = Filter {
        kind,
        namespace: namespace.map(str::to_string),
        selectors,
        table,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let (start_at, live, current) = if send_initial {
        // Initial state at the current revision (NotOlderThan `rv`), then changes.
        match state.store.subscribe(kind, None) {
            Ok(x) => x,
            Err(e) => return Ok(single_error(tx, rx, e)),
        }
    } else {
        match state.store.subscribe(kind, since) {
            Ok(x) => x,
            Err(e) => return Ok(single_error(tx, rx, e)),
        }
    };
    let sender = Sender {
        tx,
        sent: 0,
        limit: state.close_watch_after(),
    };
    let interval = state.bookmark_interval;
    actix_web::rt::spawn(run(
        filter,
        sender,
        start_at,
        live,
        match since {
            Some(r) if !send_initial => r,
            _ => current,
        },
        Opts {
            bookmarks,
            send_initial,
            timeout,
            interval,
        },
    ));
    Ok(stream_response(rx))
}

fn single_error(tx: mpsc::Sender<Bytes>, rx: mpsc::Receiver<Bytes>, e: SimError) -> HttpResponse {
    let _ = tx.try_send(error_line(&e));
    drop(tx);
    stream_response(rx)
}

struct Opts {
    bookmarks: bool,
    send_initial: bool,
    timeout: Duration,
    interval: Duration,
}

async fn run(
    filter: Filter,
    mut out: Sender,
    start: WatchStart,
    mut live: broadcast::Receiver<Arc<Event>>,
    start_rv: u64,
    opts: Opts,
) {
    let deadline = tokio::time::sleep(opts.timeout);
    tokio::pin!(deadline);
    let mut last_rv = start_rv;
    match start {
        WatchStart::Initial(snap) => {
            for s in snap.iter(filter.kind, filter.namespace.as_deref(), None) {
                if filter.selectors.matches(s) && !out.event(filter.line("ADDED", s)).await {
                    return;
                }
            }
            if opts.send_initial && !out.raw(filter.bookmark(last_rv, true)).await {
                return;
            }
        }
        WatchStart::Since(missed) => {
            for ev in missed {
                if let Some(t) = filter.event_type(&ev) {
                    if !out.event(filter.event_line(t, &ev)).await {
                        return;
                    }
                }
                last_rv = last_rv.max(ev.rv);
            }
        }
    }
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + opts.interval, opts.interval);
    loop {
        tokio::select! {
            biased;
            _ = out.tx.closed() => return,
            _ = &mut deadline => {
                if opts.bookmarks {
                    let _ = out.raw(filter.bookmark(last_rv, false)).await;
                }
                return;
            }
            r = live.recv() => match r {
                Ok(ev) => {
                    if ev.rv <= last_rv {
                        continue;
                    }
                    last_rv = ev.rv;
                    if let Some(t) = filter.event_type(&ev) {
                        if !out.event(filter.event_line(t, &ev)).await {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let e = SimError::too_old(last_rv, last_rv + 1);
                    let _ = out.raw(error_line(&e)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick(), if opts.bookmarks => {
                if !out.raw(filter.bookmark(last_rv, false)).await {
                    return;
                }
            }
        }
    }
}
