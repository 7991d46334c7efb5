//! Per-worker awc clients, one per cluster (awc's `Client` is `!Send`, an `Rc`).
//!
//! Each worker thread keeps, per cluster key, an [`Upstream`]: the client (its own
//! connection pool), the URL origin and path prefix, and the prepared server-side token.
//! Entries are rebuilt when the registry is swapped and the cluster's definition changes;
//! when it is unchanged the entry is kept (its pool too) and only the registry entry it is
//! checked against is replaced, so the next request compares pointers, not definitions.
//!
//! The client is built for proxying (see ENGINEERING.md): no overall timeout (a watch body
//! has no deadline; connect time is bounded by the connector, response-head time by the
//! forwarder), no redirects, no default headers, no decompression (awc's compression
//! features are off and every request also says `no_decompress`), connector `limit(0)` (the
//! default semaphore of 100 is held for the whole life of a response body: 100 watches would
//! block everything), and the cluster's connector from [`crate::upstream::connector`]
//! (`TCP_NODELAY`, the cluster's rustls configuration, connect and handshake timeouts).

use crate::registry::{Cluster, ClusterKey};
use crate::status::Error;
use crate::upstream::credential::ServerToken;
use awc::http::Uri;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// A cluster as one worker talks to it.
pub struct Upstream {
    /// The awc client with this cluster's connector and pool.
    pub client: awc::Client,
    /// `scheme://authority` of the cluster URL.
    pub origin: String,
    /// The cluster URL's own path, without a trailing slash (`""` or `/sub`).
    pub prefix: String,
    /// The server-side credential (SPEC §3 rule 4).
    pub token: ServerToken,
}

impl Upstream {
    /// The absolute upstream URI for a request tail (already checked by
    /// [`crate::proxy::path::check_tail`]) and query: origin + prefix + tail + query, built
    /// in one allocation.
    pub fn target(&self, tail: &str, query: Option<&str>) -> Result<Uri, Error> {
        let mut s = String::with_capacity(
            self.origin.len() + self.prefix.len() + tail.len() + 2 + query.map_or(0, str::len),
        );
        s.push_str(&self.origin);
        crate::proxy::path::join_into(&mut s, &self.prefix, tail, query);
        Uri::try_from(s).map_err(|_| Error::bad_request("the request path is not a valid URI path"))
    }
}

/// The registry entry last seen for a cluster key and the upstream built for it.
type Entry = (Arc<Cluster>, Rc<Upstream>);

thread_local! {
    static UPSTREAMS: RefCell<HashMap<ClusterKey, Entry>> = RefCell::new(HashMap::new());
}

/// Connect settings shared by every cluster's client.
#[derive(Debug, Clone, Copy)]
pub struct ConnectSettings {
    /// TCP connect (and, separately, TLS handshake) timeout.
    pub connect_timeout: Duration,
}

/// This worker's [`Upstream`] for `cluster`, built on first use.
pub fn for_cluster(cluster: &Arc<Cluster>, cs: ConnectSettings) -> Result<Rc<Upstream>, Error> {
    let found = UPSTREAMS.with(|m| {
        let mut m = m.borrow_mut();
        let (seen, up) = m.get_mut(&cluster.key)?;
        if Arc::ptr_eq(seen, cluster) {
            return Some(up.clone());
        }
        // A new registry: keep the upstream (and its pool) if the definition is the same.
        (seen.spec == cluster.spec).then(|| {
            *seen = cluster.clone();
            up.clone()
        })
    });
    if let Some(u) = found {
        return Ok(u);
    }
    let u = Rc::new(build(cluster, cs)?);
    UPSTREAMS.with(|m| {
        m.borrow_mut()
            .insert(cluster.key.clone(), (cluster.clone(), u.clone()));
    });
    Ok(u)
}

fn build(cluster: &Arc<Cluster>, cs: ConnectSettings) -> Result<Upstream, Error> {
    let url = &cluster.spec.url;
    let host = url.host_str().ok_or_else(|| {
        Error::bad_gateway(format!("cluster {}: its URL has no host", cluster.key))
    })?;
    let port = url.port_or_known_default().unwrap_or(443);
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let origin = format!("{}://{authority}", url.scheme());
    let prefix = url.path().trim_end_matches('/').to_owned();

    let connector = crate::upstream::connector::spec_connector(&cluster.spec, cs.connect_timeout)
        .map_err(|e| {
            Error::bad_gateway(format!("cluster {}: TLS configuration: {e}", cluster.key))
        })?
        .limit(0);
    let client = awc::Client::builder()
        .connector(connector)
        .disable_timeout()
        .disable_redirects()
        .no_default_headers()
        .finish();
    Ok(Upstream {
        client,
        origin,
        prefix,
        token: ServerToken::new(&cluster.spec.credential),
    })
}
