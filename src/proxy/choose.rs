//! Choosing the cluster of a request (SPEC §2): from the `Backstage-Kubernetes-Cluster` or
//! `X-Kubernetes-Cluster` header, or from the `{cluster}` path segment, through
//! [`Registry::choose`] (key, else first by name, with a `Warning` when ambiguous).

use crate::cluster::{Choice, Registry};
use crate::status::Error;
use actix_web::http::header::{HeaderMap, HeaderName};

/// Backstage's cluster header.
pub(crate) const BACKSTAGE_CLUSTER_HEADER: &str = "backstage-kubernetes-cluster";
/// The cluster header of Backstage 1.9 and the seed documents.
pub(crate) const X_CLUSTER_HEADER: &str = "x-kubernetes-cluster";

/// The cluster header's value, if any. Both names are accepted; when both are sent they
/// must agree.
pub(crate) fn header_value(h: &HeaderMap) -> Result<Option<&str>, Error> {
    // Looked up by `HeaderName` constants: a `&str` name is parsed on every lookup.
    const BACKSTAGE: HeaderName = HeaderName::from_static(BACKSTAGE_CLUSTER_HEADER);
    const X: HeaderName = HeaderName::from_static(X_CLUSTER_HEADER);
    let read = |name: &HeaderName| -> Result<Option<&str>, Error> {
        let mut all = h.get_all(name);
        let Some(first) = all.next() else {
            return Ok(None);
        };
        if all.next().is_some() {
            return Err(Error::bad_request(format!(
                "the {name} header is sent more than once"
            )));
        }
        let v = first
            .to_str()
            .map_err(|_| Error::bad_request(format!("the {name} header is not visible ASCII")))?
            .trim();
        if v.is_empty() {
            return Err(Error::bad_request(format!("the {name} header is empty")));
        }
        Ok(Some(v))
    };
    let a = read(&BACKSTAGE)?;
    let b = read(&X)?;
    match (a, b) {
        (Some(a), Some(b)) if a != b => Err(Error::bad_request(
            "the Backstage-Kubernetes-Cluster and X-Kubernetes-Cluster headers name different clusters",
        )),
        (Some(v), _) | (None, Some(v)) => Ok(Some(v)),
        (None, None) => Ok(None),
    }
}

/// Chooses by header (the `{base}/proxy` route).
pub(crate) fn by_header(registry: &Registry, headers: &HeaderMap) -> Result<Choice, Error> {
    registry.choose(header_value(headers)?)
}

/// Chooses by the raw (still percent-encoded) `{cluster}` path segment.
pub(crate) fn by_segment(registry: &Registry, raw: &str) -> Result<Choice, Error> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Error::bad_request("the cluster in the path is not UTF-8"))?;
    if decoded.is_empty() {
        return Err(Error::bad_request("the cluster in the path is empty"));
    }
    registry.choose(Some(&decoded))
}
