//! The object store of the simulated cluster: persistent (structurally shared) maps of
//! stored objects, one cluster-wide resourceVersion counter, a bounded history of events
//! and the broadcast of every committed change to the watchers.
//!
//! Every write runs under one mutex, which assigns the resourceVersion, commits and
//! broadcasts the event before it is released: watchers see every change exactly once and
//! in resourceVersion order. Lists take an O(1) snapshot under the lock and serialize
//! outside it. A snapshot at an older resourceVersion (continue tokens,
//! `resourceVersionMatch=Exact`) is rebuilt by undoing the history newer than it; history
//! older than the last compaction is gone (410 Expired), as in etcd.

use super::alloc::{IpAllocator, PortAllocator};
use super::errors::SimError;
use super::model::{Namespace, ObjectMeta, Service};
use bytes::Bytes;
use imbl::OrdMap;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Events kept for watch resumption and older snapshots.
pub(crate) const HISTORY_LIMIT: usize = 10_000;
/// Events a watcher may fall behind before it is ended with 410.
pub(crate) const BROADCAST_CAPACITY: usize = 16_384;
/// etcd-like compaction period: history older than the previous tick is dropped.
pub(crate) const COMPACTION_INTERVAL: Duration = Duration::from_secs(300);

pub use super::kinds::Kind;

/// A stored object.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// A Namespace.
    Namespace(Namespace),
    /// A Service.
    Service(Service),
    /// An object of any other kind, kept as JSON.
    Generic(Generic),
}

/// An object of a kind without a typed model: its metadata and the rest of its fields
/// (`spec`, `status`, `data`, ...) in the order they came, without `kind`/`apiVersion`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generic {
    /// Its kind.
    pub kind: Kind,
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// Every other top-level field.
    pub body: serde_json::Map<String, serde_json::Value>,
}

impl Generic {
    /// An object of `kind` from its JSON (`kind`/`apiVersion` dropped); 400-style message
    /// when `metadata` is malformed.
    pub fn from_value(kind: Kind, value: serde_json::Value) -> Result<Generic, String> {
        let mut body = match value {
            serde_json::Value::Object(m) => m,
            _ => return Err("the object is not a JSON object".into()),
        };
        body.shift_remove("kind");
        body.shift_remove("apiVersion");
        let metadata = match body.shift_remove("metadata") {
            None | Some(serde_json::Value::Null) => ObjectMeta::default(),
            Some(m) => serde_json::from_value(m).map_err(|e| format!("metadata: {e}"))?,
        };
        Ok(Generic {
            kind,
            metadata,
            body,
        })
    }

    /// A field of the body by JSON pointer (`/spec/replicas`).
    pub fn pointer(&self, pointer: &str) -> Option<&serde_json::Value> {
        let rest = pointer.strip_prefix('/')?;
        let (first, tail) = match rest.split_once('/') {
            Some((f, t)) => (f, Some(t)),
            None => (rest, None),
        };
        let v = self.body.get(first)?;
        match tail {
            None => Some(v),
            Some(t) => v.pointer(&format!("/{t}")),
        }
    }
}

impl serde::Serialize for Generic {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = ser.serialize_map(Some(self.body.len() + 1))?;
        map.serialize_entry("metadata", &self.metadata)?;
        for (k, v) in &self.body {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::Service(_) => Kind::Service,
            Object::Generic(g) => g.kind,
        }
    }

    /// Its metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Generic(o) => &o.metadata,
        }
    }

    /// Its metadata, mutable.
    pub(crate) fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Namespace(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::Generic(o) => &mut o.metadata,
        }
    }

    fn to_json(&self) -> Vec<u8> {
        let r = match self {
            Object::Namespace(o) => serde_json::to_vec(o),
            Object::Service(o) => serde_json::to_vec(o),
            Object::Generic(o) => serde_json::to_vec(o),
        };
        r.unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// An object as stored: the typed object, its keys and its JSON (list-item form, without
/// `kind`/`apiVersion`) serialized once at commit.
#[derive(Debug)]
pub struct Stored {
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// resourceVersion of this state.
    pub rv: u64,
    /// The object.
    pub object: Object,
    /// JSON without `kind`/`apiVersion`.
    pub json: Bytes,
}

impl Stored {
    fn new(mut object: Object, rv: u64) -> Arc<Stored> {
        let meta = object.meta_mut();
        meta.resource_version = Some(rv.to_string());
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        match &mut object {
            Object::Namespace(o) => {
                o.kind = None;
                o.api_version = None;
            }
            Object::Service(o) => {
                o.kind = None;
                o.api_version = None;
            }
            Object::Generic(_) => {}
        }
        let json = Bytes::from(object.to_json());
        Arc::new(Stored {
            namespace,
            name,
            rv,
            object,
            json,
        })
    }

    /// 409 when an update names a `resourceVersion` (`asked`, empty meaning none) other
    /// than this object's.
    pub(crate) fn check_fresh(&self, asked: Option<&str>) -> Result<(), SimError> {
        match asked.filter(|v| !v.is_empty()) {
            Some(rv) if rv != self.rv.to_string() => Err(SimError::stale(
                &self.kind().qualified_resource(),
                &self.name,
            )),
            _ => Ok(()),
        }
    }

    /// The object's kind.
    pub(crate) fn kind(&self) -> Kind {
        self.object.kind()
    }

    /// The object's labels.
    pub(crate) fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.object.meta().labels.as_ref()
    }

    /// The full JSON (with `kind` and `apiVersion`), as a single GET returns it.
    pub(crate) fn full_json(&self) -> Vec<u8> {
        let prefix = format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\"",
            self.kind().name(),
            self.kind().api_version()
        );
        let mut out = Vec::with_capacity(self.json.len() + prefix.len() + 1);
        out.extend_from_slice(prefix.as_bytes());
        if self.json.len() > 2 {
            out.push(b',');
        }
        out.extend_from_slice(&self.json[1..]);
        out
    }

    /// The full object as a JSON value.
    pub(crate) fn value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.full_json()).unwrap_or_default()
    }

    /// A field value for field selectors (`metadata.name`, `spec.type`, ...).
    pub(crate) fn field(&self, path: &str) -> Option<String> {
        match (path, &self.object) {
            ("metadata.name", _) => Some(self.name.clone()),
            ("metadata.namespace", _) => Some(self.namespace.clone()),
            ("spec.clusterIP", Object::Service(s)) => {
                Some(s.spec.cluster_ip.clone().unwrap_or_default())
            }
            ("spec.type", Object::Service(s)) => Some(s.spec.type_name().to_string()),
            ("status.phase", Object::Namespace(n)) => {
                Some(n.status.phase.clone().unwrap_or_default())
            }
            (path, Object::Generic(g)) => {
                // The Job field label `status.successful` reads `status.succeeded`.
                let path = match path {
                    "status.successful" => "status.succeeded",
                    p => p,
                };
                let pointer = format!("/{}", path.replace('.', "/"));
                Some(match g.pointer(&pointer) {
                    None | Some(serde_json::Value::Null) => String::new(),
                    Some(serde_json::Value::String(s)) => s.clone(),
                    // The `source` field label of Events is `source.component`.
                    Some(serde_json::Value::Object(m)) if path == "source" => m
                        .get("component")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    Some(v) => v.to_string(),
                })
            }
            _ => None,
        }
    }
}

type Key = (String, String);

/// A consistent view of every object at one resourceVersion.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// One map per kind, indexed by [`Kind::id`]; grown on the first insert of a kind.
    maps: Vec<OrdMap<Key, Arc<Stored>>>,
}

impl Snapshot {
    /// One object.
    pub(crate) fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<Stored>> {
        self.maps
            .get(kind.id())?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Objects of `kind` in key order, optionally in one namespace, strictly after the key
    /// `after` (`(namespace, name)`).
    pub(crate) fn iter<'a>(
        &'a self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<Key>,
    ) -> impl Iterator<Item = &'a Arc<Stored>> + 'a {
        let lower = match (after, namespace) {
            (Some(k), Some(ns)) if k.0.as_str() < ns => {
                Bound::Included((ns.to_string(), String::new()))
            }
            (Some(k), _) => Bound::Excluded(k),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let upper = match namespace {
            Some(ns) => Bound::Excluded((format!("{ns}\0"), String::new())),
            None => Bound::Unbounded,
        };
        let empty = matches!((&lower, &upper), (Bound::Excluded(l), Bound::Excluded(u)) if l >= u);
        let range = match self.maps.get(kind.id()) {
            Some(map) if !empty => Some(map.range((lower, upper)).map(|(_, v)| v)),
            _ => None,
        };
        range.into_iter().flatten()
    }

    /// Every object of every kind.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Stored>> {
        self.maps.iter().flat_map(|m| m.values())
    }

    fn insert(&mut self, s: Arc<Stored>) {
        let id = s.kind().id();
        if self.maps.len() <= id {
            self.maps.resize_with(id + 1, OrdMap::new);
        }
        self.maps[id].insert((s.namespace.clone(), s.name.clone()), s);
    }

    fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        self.maps
            .get_mut(kind.id())?
            .remove(&(namespace.to_string(), name.to_string()))
    }
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    /// Created.
    Added = 0,
    /// Changed.
    Modified = 1,
    /// Deleted.
    Deleted = 2,
}

impl EventType {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A committed change.
#[derive(Debug)]
pub(crate) struct Event {
    /// The change's resourceVersion.
    pub rv: u64,
    /// What happened.
    pub typ: EventType,
    /// The object after the change (for a deletion: its last state, at the deletion's rv).
    pub object: Arc<Stored>,
    /// The object before the change (none for ADDED).
    pub old: Option<Arc<Stored>>,
    /// The JSON watch lines of this event, built once and shared by every watcher.
    lines: [std::sync::OnceLock<Bytes>; 3],
}

impl Event {
    fn new(rv: u64, typ: EventType, object: Arc<Stored>, old: Option<Arc<Stored>>) -> Event {
        Event {
            rv,
            typ,
            object,
            old,
            lines: Default::default(),
        }
    }

    /// The object's kind.
    pub(crate) fn kind(&self) -> Kind {
        self.object.kind()
    }

    /// The watch line `{"type":..,"object":..}\n` for this event seen as `typ` (a selector
    /// transition turns a MODIFIED into an ADDED or DELETED for some watchers).
    pub(crate) fn line(&self, typ: EventType) -> Bytes {
        self.lines[typ as usize]
            .get_or_init(|| watch_line(typ.as_str(), &self.object.full_json()))
            .clone()
    }
}

/// One watch event line around an object's JSON.
pub(crate) fn watch_line(typ: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(typ.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

struct Inner {
    rv: u64,
    snap: Snapshot,
    history: VecDeque<Arc<Event>>,
    compacted: u64,
    tick: Instant,
    rv_at_tick: u64,
    ips: IpAllocator,
    ports: PortAllocator,
}

/// Where a watch starts.
pub(crate) enum WatchStart {
    /// Synthetic ADDED events for every object of this snapshot, then live events.
    Initial(Snapshot),
    /// These missed events, then live events.
    Since(Vec<Arc<Event>>),
}

/// The store. Cheap to share (`Arc<Store>`).
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// A write in progress, under the store's lock. Do every check before the first change.
pub struct Txn<'a> {
    inner: &'a mut Inner,
    events: Vec<Arc<Event>>,
}

impl Txn<'_> {
    /// The current state of one object.
    pub(crate) fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        self.inner.snap.get(kind, namespace, name).cloned()
    }

    /// The current snapshot (O(1) clone).
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.inner.snap.clone()
    }

    /// Cluster IP allocations.
    pub(crate) fn ips(&mut self) -> &mut IpAllocator {
        &mut self.inner.ips
    }

    /// Node port allocations.
    pub fn ports(&mut self) -> &mut PortAllocator {
        &mut self.inner.ports
    }

    /// Stores `object` (create or replace), assigning the next resourceVersion.
    pub fn put(&mut self, object: Object) -> Arc<Stored> {
        self.inner.rv += 1;
        let rv = self.inner.rv;
        let stored = Stored::new(object, rv);
        let old = self
            .inner
            .snap
            .get(stored.kind(), &stored.namespace, &stored.name)
            .cloned();
        self.inner.snap.insert(stored.clone());
        let typ = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.events
            .push(Arc::new(Event::new(rv, typ, stored.clone(), old)));
        stored
    }

    /// Deletes an object; returns its last state stamped with the deletion's
    /// resourceVersion.
    pub(crate) fn delete(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Stored>> {
        let old = self.inner.snap.remove(kind, namespace, name)?;
        self.inner.rv += 1;
        let rv = self.inner.rv;
        let gone = Stored::new(old.object.clone(), rv);
        self.events.push(Arc::new(Event::new(
            rv,
            EventType::Deleted,
            gone.clone(),
            Some(old),
        )));
        Some(gone)
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        Store {
            inner: Mutex::new(Inner {
                rv: 0,
                snap: Snapshot::default(),
                history: VecDeque::new(),
                compacted: 0,
                tick: Instant::now(),
                rv_at_tick: 0,
                ips: IpAllocator::default(),
                ports: PortAllocator::default(),
            }),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a write. `f` must do every check before its first change: an error returned
    /// after a change would still commit that change.
    pub fn write<R>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, SimError>,
    ) -> Result<R, SimError> {
        let mut inner = self.lock();
        let mut txn = Txn {
            inner: &mut inner,
            events: Vec::new(),
        };
        let result = f(&mut txn);
        let events = std::mem::take(&mut txn.events);
        for ev in events {
            // No receiver is fine: the event is still in the history.
            let _ = self.events.send(ev.clone());
            inner.history.push_back(ev);
        }
        while inner.history.len() > HISTORY_LIMIT {
            if let Some(ev) = inner.history.pop_front() {
                inner.compacted = ev.rv;
            }
        }
        if inner.tick.elapsed() >= COMPACTION_INTERVAL {
            let upto = inner.rv_at_tick;
            Self::compact_to(&mut inner, upto);
            inner.rv_at_tick = inner.rv;
            inner.tick = Instant::now();
        }
        result
    }

    fn compact_to(inner: &mut Inner, rv: u64) {
        while inner.history.front().is_some_and(|ev| ev.rv <= rv) {
            inner.history.pop_front();
        }
        inner.compacted = inner.compacted.max(rv);
    }

    /// Compacts the whole history now (as `etcdctl compact` would): older resourceVersions
    /// and continue tokens become 410 Expired.
    pub fn compact(&self) {
        let mut inner = self.lock();
        let rv = inner.rv;
        Self::compact_to(&mut inner, rv);
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.lock().rv
    }

    /// The current snapshot and its resourceVersion.
    pub(crate) fn snapshot(&self) -> (Snapshot, u64) {
        let inner = self.lock();
        (inner.snap.clone(), inner.rv)
    }

    /// The snapshot at resourceVersion `rv`: rebuilt from the current one by undoing the
    /// newer history. `Err(Some(oldest))` when `rv` is compacted, `Err(None)` when it is
    /// in the future.
    pub(crate) fn snapshot_at(&self, rv: u64) -> Result<Snapshot, Option<u64>> {
        let (mut snap, newer) = {
            let inner = self.lock();
            if rv > inner.rv {
                return Err(None);
            }
            if rv < inner.compacted {
                return Err(Some(inner.compacted + 1));
            }
            let newer: Vec<Arc<Event>> = inner
                .history
                .iter()
                .rev()
                .take_while(|ev| ev.rv > rv)
                .cloned()
                .collect();
            (inner.snap.clone(), newer)
        };
        for ev in newer {
            match (&ev.typ, &ev.old) {
                (EventType::Added, _) | (_, None) => {
                    snap.remove(ev.kind(), &ev.object.namespace, &ev.object.name);
                }
                (_, Some(old)) => snap.insert(old.clone()),
            }
        }
        Ok(snap)
    }

    /// Subscribes a watcher: with `since`, the missed events newer than it (410 when it is
    /// compacted); without, the current snapshot for synthetic ADDED events. Live events
    /// follow on the receiver with no gap and no duplicate.
    #[allow(clippy::type_complexity)]
    pub(crate) fn subscribe(
        &self,
        kind: Kind,
        since: Option<u64>,
    ) -> Result<(WatchStart, broadcast::Receiver<Arc<Event>>, u64), SimError> {
        let inner = self.lock();
        let start = match since {
            None => WatchStart::Initial(inner.snap.clone()),
            Some(rv) => {
                if rv < inner.compacted {
                    return Err(SimError::too_old(rv, inner.compacted + 1));
                }
                let missed: Vec<Arc<Event>> = inner
                    .history
                    .iter()
                    .filter(|ev| ev.rv > rv && ev.kind() == kind)
                    .cloned()
                    .collect();
                WatchStart::Since(missed)
            }
        };
        Ok((start, self.events.subscribe(), inner.rv))
    }

    /// How many watchers are subscribed.
    pub fn watchers(&self) -> usize {
        self.events.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str) -> Object {
        let mut s = Service::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some(ns.into());
        Object::Service(s)
    }

    #[test]
    fn rv_counts_and_snapshots_rewind() {
        let store = Store::new();
        store
            .write(|t| {
                t.put(svc("a", "x"));
                t.put(svc("a", "y"));
                t.put(svc("b", "x"));
                Ok(())
            })
            .unwrap();
        assert_eq!(store.rv(), 3);
        store
            .write(|t| {
                t.delete(Kind::Service, "a", "x");
                Ok(())
            })
            .unwrap();
        let (now, rv) = store.snapshot();
        assert_eq!(rv, 4);
        assert_eq!(now.iter(Kind::Service, None, None).count(), 2);
        let then = store.snapshot_at(2).unwrap();
        let names: Vec<_> = then
            .iter(Kind::Service, None, None)
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        assert_eq!(
            names,
            vec![("a".into(), "x".into()), ("a".into(), "y".into())]
        );
        assert_eq!(store.snapshot_at(9).unwrap_err(), None);
        store.compact();
        assert_eq!(store.snapshot_at(2).unwrap_err(), Some(5));
    }

    #[test]
    fn namespace_ranges() {
        let store = Store::new();
        store
            .write(|t| {
                for ns in ["a", "ab", "b"] {
                    t.put(svc(ns, "s1"));
                    t.put(svc(ns, "s2"));
                }
                Ok(())
            })
            .unwrap();
        let (snap, _) = store.snapshot();
        let in_a: Vec<_> = snap
            .iter(Kind::Service, Some("a"), None)
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(in_a, vec!["s1", "s2"]);
        let after: Vec<_> = snap
            .iter(Kind::Service, Some("a"), Some(("a".into(), "s1".into())))
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(after, vec!["s2"]);
        assert_eq!(snap.iter(Kind::Service, None, None).count(), 6);
    }

    #[test]
    fn full_json_has_type_meta() {
        let store = Store::new();
        let s = store.write(|t| Ok(t.put(svc("a", "x")))).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&s.full_json()).unwrap();
        assert_eq!(v["kind"], "Service");
        assert_eq!(v["metadata"]["resourceVersion"], "1");
        let item: serde_json::Value = serde_json::from_slice(&s.json).unwrap();
        assert!(item.get("kind").is_none());
    }
}
