//! The shared state of one simulated cluster and its request gate: bearer-token
//! authentication (401), impersonation (`Impersonate-User`/`-Group` by the tokens allowed
//! to, 403 for others), per-token and per-impersonated-user namespace and verb limits (403),
//! fault injection (every Nth request failing, added latency, watches closed after N
//! events), and a record of the last requests' credentials for tests ([`super::SimRequest`]).
//!
//! Other parts of the simulator (pods, exec, port-forward) reuse [`SimState::authorize`] and
//! the fault settings so that every simulated endpoint behaves alike.

use super::config::{SimClusterConfig, SimFaults, SimGrant, SimImpersonation, SimToken};
use super::errors::SimError;
use super::kinds::{self, Kind};
use super::store::Store;
use actix_web::dev::ServiceRequest;
use actix_web::{HttpMessage, HttpRequest};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

/// How many requests [`SimState::seen`] keeps (the most recent ones).
const SEEN_CAPACITY: usize = 1024;

/// Who is calling, as established by the gate and kept in the request's extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The user name used in 403 messages (the impersonated user's when impersonating).
    pub user: String,
    /// What this caller may do: a request is allowed when one grant allows it (a token has
    /// one; an impersonated user those of its name and groups, maybe none).
    pub grants: Vec<Grant>,
}

/// Namespaces and verbs, each `None` for all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grant {
    /// Namespaces this grant covers; `None` means all.
    pub namespaces: Option<Vec<String>>,
    /// Verbs this grant covers; `None` means all.
    pub verbs: Option<Vec<String>>,
}

impl Caller {
    fn anonymous() -> Caller {
        Caller {
            user: "system:anonymous".into(),
            grants: vec![Grant::default()],
        }
    }
}

impl From<&SimGrant> for Grant {
    fn from(g: &SimGrant) -> Self {
        Grant {
            namespaces: g.namespaces.clone(),
            verbs: g.verbs.clone(),
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
    /// Connections accepted (TCP, after the TLS handshake when serving HTTPS).
    connections: AtomicU64,
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The networks the Service `proxy` subresource may connect to.
    pub backends: Vec<ipnet::IpNet>,
    /// The kinds this cluster serves: the built-in ones, then its custom types.
    kinds: RwLock<Vec<Kind>>,
    /// Who may impersonate, and what impersonated users and groups may do.
    impersonation: SimImpersonation,
    /// The last [`SEEN_CAPACITY`] requests' credentials.
    seen: Mutex<VecDeque<super::SimRequest>>,
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
            connections: AtomicU64::new(0),
            bookmark_interval: Duration::from_secs(10),
            backends: config.backends.clone(),
            kinds: RwLock::new(kinds::BUILTINS.iter().map(|t| Kind::of(t)).collect()),
            impersonation: config.impersonation.clone(),
            seen: Mutex::new(VecDeque::new()),
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

    /// How many connections the server accepted so far (after the TLS handshake).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Counts an accepted connection and returns its number (from 1).
    pub(crate) fn connected(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// How many requests reached the server so far (every one counts, failed or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The caller for a bearer token (`None`: unauthenticated).
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Caller> {
        self.authenticated(authorization).map(|(_, c)| c)
    }

    /// The caller for a bearer token and the index of the token in the configured ones
    /// (`None` when anonymous access is on); `None`: unauthenticated.
    fn authenticated(&self, authorization: Option<&str>) -> Option<(Option<usize>, Caller)> {
        if self.tokens.is_empty() {
            return Some((None, Caller::anonymous()));
        }
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        let i = self.tokens.iter().position(|t| t.token == token)?;
        Some((
            Some(i),
            Caller {
                user: format!("sim-user-{}", i + 1),
                grants: vec![Grant {
                    namespaces: self.tokens[i].namespaces.clone(),
                    verbs: self.tokens[i].verbs.clone(),
                }],
            },
        ))
    }

    /// The caller a request acts as: `caller` itself, or the user its `Impersonate-*`
    /// headers name when its token (`token`) may impersonate (kube-apiserver's 403
    /// otherwise, and its 500 for groups or extras without a user).
    fn impersonated(
        &self,
        seen: &super::SimRequest,
        token: Option<usize>,
        caller: Caller,
    ) -> Result<Caller, SimError> {
        let Some(user) = &seen.impersonate_user else {
            if seen.impersonate_groups.is_empty() && seen.impersonate_extra.is_empty() {
                return Ok(caller);
            }
            return Err(SimError::new(
                500,
                "InternalError",
                "Internal error occurred: requested impersonation of groups or extra \
                 without impersonating a user",
            ));
        };
        let may = token.is_some_and(|i| {
            self.impersonation
                .tokens
                .iter()
                .any(|t| *t == self.tokens[i].token)
        });
        if !may {
            return Err(SimError::forbidden(
                &caller.user,
                "impersonate",
                "users",
                "",
                None,
                None,
                Some(user),
            ));
        }
        let i = &self.impersonation;
        let grants = i
            .users
            .iter()
            .filter(|g| g.name == *user)
            .chain(
                i.groups
                    .iter()
                    .filter(|g| seen.impersonate_groups.contains(&g.name)),
            )
            .map(Grant::from)
            .collect();
        Ok(Caller {
            user: user.clone(),
            grants,
        })
    }

    /// The last requests that reached the server (at most 1024), oldest first.
    pub fn seen(&self) -> Vec<super::SimRequest> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn record(&self, seen: super::SimRequest) {
        let mut all = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() == SEEN_CAPACITY {
            all.pop_front();
        }
        all.push_back(seen);
    }

    /// Runs before every request: counts it, fails it when a fault says so, authenticates
    /// it (401) and applies its impersonation headers (403), storing the [`Caller`] in the
    /// request's extensions, and records what it saw.
    pub fn gate(&self, req: &ServiceRequest) -> Option<SimError> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(every) = self.faults.fail_every.filter(|e| *e > 0) {
            if n.is_multiple_of(every) {
                return Some(SimError::fault(self.faults.fail_code.unwrap_or(500)));
            }
        }
        let headers = req.headers();
        let text = |v: &actix_web::http::header::HeaderValue| {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        };
        let mut seen = super::SimRequest {
            method: req.method().to_string(),
            path: req.path().to_string(),
            version: req.version(),
            connection: req.conn_data::<super::ConnectionId>().map_or(0, |c| c.0),
            token: None,
            user: None,
            impersonate_user: headers.get("impersonate-user").map(text),
            impersonate_groups: headers.get_all("impersonate-group").map(text).collect(),
            impersonate_extra: headers
                .iter()
                .filter_map(|(n, v)| {
                    let key = n.as_str().strip_prefix("impersonate-extra-")?;
                    let key = percent_encoding::percent_decode_str(key)
                        .decode_utf8_lossy()
                        .into_owned();
                    Some((key, text(v)))
                })
                .collect(),
        };
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        let result = match self.authenticated(auth) {
            Some((token, caller)) => {
                seen.token = token;
                self.impersonated(&seen, token, caller)
            }
            None => Err(SimError::unauthorized()),
        };
        let out = match result {
            Ok(caller) => {
                seen.user = Some(caller.user.clone());
                req.extensions_mut().insert(caller);
                None
            }
            Err(e) => Some(e),
        };
        self.record(seen);
        out
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
        let ns = match (attrs.namespace, attrs.resource, attrs.name) {
            (Some(ns), _, _) => Some(ns),
            // A namespace object is in its own namespace, as RBAC sees it.
            (None, "namespaces", Some(name)) => Some(name),
            _ => None,
        };
        let allows = |g: &Grant| {
            g.verbs
                .as_ref()
                .is_none_or(|verbs| verbs.iter().any(|v| v == attrs.verb || v == "*"))
                && g.namespaces.as_ref().is_none_or(|allowed| {
                    ns.is_some_and(|ns| allowed.iter().any(|a| a == ns || a == "*"))
                })
        };
        if caller.grants.iter().any(allows) {
            Ok(())
        } else {
            Err(forbidden())
        }
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
