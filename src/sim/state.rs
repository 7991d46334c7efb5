//! The shared state of one simulated cluster and its request gate: bearer-token
//! authentication (401), per-token namespace and verb limits (403), and fault injection
//! (every Nth request failing, added latency, watches closed after N events).
//!
//! Other parts of the simulator (pods, exec, port-forward) reuse [`SimState::authorize`] and
//! the fault settings so that every simulated endpoint behaves alike.

use super::config::{SimClusterConfig, SimFaults, SimToken};
use super::errors::SimError;
use super::kinds::{self, Kind};
use super::store::Store;
use actix_web::dev::ServiceRequest;
use actix_web::{HttpMessage, HttpRequest};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

/// Who is calling, as established by the gate and kept in the request's extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The user name used in 403 messages.
    pub user: String,
    /// Namespaces this caller may touch; `None` means all.
    pub namespaces: Option<Vec<String>>,
    /// Verbs this caller may use; `None` means all.
    pub verbs: Option<Vec<String>>,
}

impl Caller {
    fn anonymous() -> Caller {
        Caller {
            user: "system:anonymous".into(),
            namespaces: None,
            verbs: None,
        }
    }
}

/// What a request does, for authorization.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `proxy`, `exec`, ...
    pub verb: &'a str,
    /// `services`, `namespaces`, `pods`.
    pub resource: &'a str,
    /// The API group (`""` for the core group, `apps`).
    pub group: &'a str,
    /// `status`, `proxy`, `exec`, ...
    pub subresource: Option<&'a str>,
    /// The namespace, `None` for cluster scope.
    pub namespace: Option<&'a str>,
    /// The object's name, if one.
    pub name: Option<&'a str>,
}

/// One simulated cluster's state.
#[derive(Debug)]
pub struct SimState {
    /// The cluster's name.
    pub name: String,
    /// The objects.
    pub store: Store,
    tokens: Vec<SimToken>,
    /// Faults to inject.
    pub faults: SimFaults,
    requests: AtomicU64,
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The networks the Service `proxy` subresource may connect to.
    pub backends: Vec<ipnet::IpNet>,
    /// The kinds this cluster serves: the built-in ones, then its custom types.
    kinds: RwLock<Vec<Kind>>,
}

impl SimState {
    /// State for `config` with an empty store.
    pub fn new(config: &SimClusterConfig) -> SimState {
        SimState {
            name: config.name.clone(),
            store: Store::new(),
            tokens: config.tokens.clone(),
            faults: config.faults.clone(),
            requests: AtomicU64::new(0),
            bookmark_interval: Duration::from_secs(10),
            backends: config.backends.clone(),
            kinds: RwLock::new(kinds::BUILTINS.iter().map(|t| Kind::of(t)).collect()),
        }
    }

    /// The kinds this cluster serves, built-in ones first.
    pub fn kinds(&self) -> Vec<Kind> {
        self.kinds.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The kind served as `plural` in `api_version` (`v1`, `apps/v1`).
    pub fn kind_for(&self, api_version: &str, plural: &str) -> Option<Kind> {
        self.kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .find(|k| k.api_version() == api_version && k.resource() == plural)
    }

    /// The kind named `kind` in `api_version`, for decoding seeds.
    pub fn kind_named(&self, api_version: &str, kind: &str) -> Option<Kind> {
        self.kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .find(|k| k.api_version() == api_version && k.name() == kind)
    }

    /// Serves a custom resource type from now on (config or a seed's CRD). `Err` names
    /// what is wrong with the declaration, or the kind it clashes with.
    pub fn add_custom(&self, custom: &kinds::CustomType) -> Result<Kind, String> {
        let kind = kinds::intern(custom)?;
        let mut all = self.kinds.write().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = all.iter().find(|k| {
            **k != kind
                && k.api_version() == kind.api_version()
                && (k.resource() == kind.resource() || k.name() == kind.name())
        }) {
            return Err(format!(
                "{}/{} clashes with the declared {}",
                kind.api_version(),
                kind.resource(),
                other.name()
            ));
        }
        if !all.contains(&kind) {
            all.push(kind);
        }
        Ok(kind)
    }

    /// How many requests reached the server so far (every one counts, failed or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The caller for a bearer token (`None`: unauthenticated).
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Caller> {
        if self.tokens.is_empty() {
            return Some(Caller::anonymous());
        }
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        self.tokens
            .iter()
            .position(|t| t.token == token)
            .map(|i| Caller {
                user: format!("sim-user-{}", i + 1),
                namespaces: self.tokens[i].namespaces.clone(),
                verbs: self.tokens[i].verbs.clone(),
            })
    }

    /// Runs before every request: counts it, fails it when a fault says so, and
    /// authenticates it (401), storing the [`Caller`] in the request's extensions.
    pub fn gate(&self, req: &ServiceRequest) -> Option<SimError> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(every) = self.faults.fail_every.filter(|e| *e > 0) {
            if n.is_multiple_of(every) {
                return Some(SimError::fault(self.faults.fail_code.unwrap_or(500)));
            }
        }
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match self.authenticate(auth) {
            Some(caller) => {
                req.extensions_mut().insert(caller);
                None
            }
            None => Some(SimError::unauthorized()),
        }
    }

    /// Checks the caller of `req` (from [`gate`](Self::gate)) against its limits: 403 when
    /// the verb or namespace is not allowed.
    pub fn authorize(&self, req: &HttpRequest, attrs: Attributes<'_>) -> Result<(), SimError> {
        let caller = req
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(Caller::anonymous);
        let forbidden = || {
            SimError::forbidden(
                &caller.user,
                attrs.verb,
                attrs.resource,
                attrs.group,
                attrs.subresource,
                attrs.namespace,
                attrs.name,
            )
        };
        if let Some(verbs) = &caller.verbs {
            if !verbs.iter().any(|v| v == attrs.verb || v == "*") {
                return Err(forbidden());
            }
        }
        if let Some(allowed) = &caller.namespaces {
            let ns = match (attrs.namespace, attrs.resource, attrs.name) {
                (Some(ns), _, _) => Some(ns),
                // A namespace object is in its own namespace, as RBAC sees it.
                (None, "namespaces", Some(name)) => Some(name),
                _ => None,
            };
            match ns {
                Some(ns) if allowed.iter().any(|a| a == ns || a == "*") => {}
                _ => return Err(forbidden()),
            }
        }
        Ok(())
    }

    /// The latency to add before each response head.
    pub fn latency(&self) -> Option<Duration> {
        self.faults.latency
    }

    /// After how many events a watch is closed.
    pub fn close_watch_after(&self) -> Option<u64> {
        self.faults.close_watch_after.filter(|n| *n > 0)
    }
}
