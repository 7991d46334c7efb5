//! The plugin proxy's own header rules (SPEC §7), on top of the forwarding rules of SPEC §3
//! ([`crate::proxy::headers`], with `RequestFilter::plugin` removing the browser's `Origin`
//! and `X-CSRFToken` as well):
//!
//! - the upstream `Authorization` is decided here alone: `UserToken` sends the caller's
//!   Kubernetes token (SPEC §3 rules 1-3; with `kubeplex.auth.mode: jwt` the caller's
//!   `Authorization` is the portal token, so rules 1-2) as `Authorization: Bearer`, and a
//!   request without one is a 401 (through the API server of a cluster with
//!   `impersonate: true`, the verified caller impersonated will do); `None` sends no
//!   `Authorization` to the Service whatever the caller sent (through the API server, `None`
//!   means the cluster's server-side credential);
//! - on the way out, as the OpenShift console's proxy does: `Access-Control-Allow-*`,
//!   `Access-Control-Expose-Headers` and `Server` are removed (hop-by-hop headers already
//!   are), and `Content-Security-Policy: sandbox;` and `X-Content-Security-Policy:
//!   sandbox;` are added, so a browser runs no script from a proxied answer.

use crate::cluster::ClusterSpec;
use crate::status::Error;
use crate::upstream::credential;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

/// The caller's Kubernetes token for a `UserToken` entry (SPEC §3 rules 1-3, `spec` the
/// entry's cluster for rule 2's provider headers; a portal token never counts, and with
/// `identity_checking` the caller's `Authorization` is the portal token, so rule 3 does
/// not apply), as an `Authorization` value with the `Bearer` scheme when the caller sent a
/// bare token; `None` when the caller sent none.
pub(crate) fn user_token(
    headers: &HeaderMap,
    spec: &ClusterSpec,
    identity_checking: bool,
) -> Result<Option<HeaderValue>, Error> {
    let Some(c) = credential::from_request(headers, spec, identity_checking)? else {
        return Ok(None);
    };
    let Some(v) = c.authorization else {
        return Ok(None);
    };
    let b = v.as_bytes().trim_ascii();
    if b.is_empty() {
        return Ok(None);
    }
    if b.contains(&b' ') {
        return Ok(Some(v));
    }
    let mut out = Vec::with_capacity(7 + b.len());
    out.extend_from_slice(b"Bearer ");
    out.extend_from_slice(b);
    let mut v = HeaderValue::from_bytes(&out)
        .map_err(|_| Error::bad_request("the caller's token is not a valid header value"))?;
    v.set_sensitive(true);
    Ok(Some(v))
}

/// Whether the outgoing rules remove a (lowercase) response header: the Service's CORS
/// headers and `Server` (see the module doc). The rule the plugin route hands the
/// forwarding and the tunnel (`forward::Limits::response_rule`, `upgrade::tunnel`): the
/// Service's headers are dropped as they are copied.
pub(crate) fn is_removed_response_header(n: &[u8]) -> bool {
    n.starts_with(b"access-control-allow-")
        || n == b"access-control-expose-headers"
        || n == b"server"
}

/// Adds the sandbox headers of the outgoing rules to a response (see the module doc).
pub(crate) fn sandbox(h: &mut HeaderMap) {
    let sandbox = HeaderValue::from_static("sandbox;");
    h.append(
        actix_web::http::header::CONTENT_SECURITY_POLICY,
        sandbox.clone(),
    );
    h.append(
        HeaderName::from_static("x-content-security-policy"),
        sandbox,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_rules() {
        // A Service's answer copied by the rule the route hands the forwarding, then the
        // sandbox headers.
        let answer = [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x"),
            ("access-control-max-age", "5"),
            ("server", "nginx"),
            ("content-type", "application/json"),
        ];
        let mut h = HeaderMap::new();
        crate::proxy::headers::copy_response_headers(
            || answer.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            &mut h,
            is_removed_response_header,
        );
        sandbox(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "access-control-max-age",
                "content-security-policy",
                "content-type",
                "x-content-security-policy"
            ]
        );
        assert_eq!(h.get("content-security-policy").unwrap(), "sandbox;");
    }

    #[test]
    fn user_tokens() {
        let spec = ClusterSpec::new("c", url::Url::parse("https://h").unwrap());
        let mut h = HeaderMap::new();
        assert_eq!(user_token(&h, &spec, false).unwrap(), None);
        h.insert(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer mine"),
        );
        assert_eq!(
            user_token(&h, &spec, false).unwrap().unwrap(),
            "Bearer mine"
        );
        // With portal tokens verified, the caller's Authorization is not a Kubernetes token.
        assert_eq!(user_token(&h, &spec, true).unwrap(), None);
        h.insert(
            HeaderName::from_static("backstage-kubernetes-authorization"),
            HeaderValue::from_static("bare"),
        );
        assert_eq!(user_token(&h, &spec, true).unwrap().unwrap(), "Bearer bare");
    }
}
