//! The verb, namespace and resource of a request to a cluster, derived from its method,
//! path and query as kube-apiserver's `RequestInfoFactory` does, with the streaming
//! subresources (`exec`, `attach`, `portforward`, `proxy`, `log`) as verbs of their own, so
//! a policy can allow reading pods but not exec into them (the vocabulary is
//! [`crate::config::POLICY_VERBS`]).

/// The subresources that are verbs of their own.
const SUBRESOURCE_VERBS: &[&str] = &["exec", "attach", "portforward", "proxy", "log"];

/// What a request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestInfo {
    /// One of [`VERBS`].
    pub verb: &'static str,
    /// The namespace, "" when cluster-scoped or across namespaces.
    pub namespace: String,
    /// The resource (`pods`), "" for non-resource paths (`/version`, `/apis`).
    pub resource: String,
}

/// The verb of a method on one object.
fn object_verb(method: &str) -> &'static str {
    match method {
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "get",
    }
}

/// Whether the query asks for a watch (`watch=1|true`).
fn watch_query(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "watch" && (v == "1" || v == "true"))
}

/// The request info of `method` on `path` (the cluster's API path, percent-encoded, after
/// kubeplex's route prefix) with `query`.
pub(crate) fn request_info(method: &str, path: &str, query: &str) -> RequestInfo {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let non_resource = RequestInfo {
        verb: object_verb(method),
        namespace: String::new(),
        resource: String::new(),
    };
    let mut rest: &[String] = match segs.first().map(String::as_str) {
        Some("api") if segs.len() >= 2 => &segs[2..],
        Some("apis") if segs.len() >= 3 => &segs[3..],
        _ => return non_resource,
    };
    if rest.is_empty() {
        return non_resource;
    }
    let mut watch = false;
    if rest[0] == "watch" {
        watch = true;
        rest = &rest[1..];
    }
    let mut namespace = String::new();
    if rest.first().map(String::as_str) == Some("namespaces") && rest.len() > 1 {
        namespace = rest[1].clone();
        if rest.len() > 2 {
            rest = &rest[2..];
        } else {
            // `/namespaces/{name}`: the Namespace object itself.
            rest = &rest[..2];
        }
    }
    let resource = rest.first().cloned().unwrap_or_default();
    let name = rest.get(1);
    let subresource = rest.get(2).map(String::as_str);
    let verb =
        if let Some(sub) = subresource.and_then(|s| SUBRESOURCE_VERBS.iter().find(|v| **v == s)) {
            sub
        } else if watch || (name.is_none() && method == "GET" && watch_query(query)) {
            "watch"
        } else if name.is_none() {
            match method {
                "GET" | "HEAD" => "list",
                "DELETE" => "deletecollection",
                m => object_verb(m),
            }
        } else if method == "GET" && watch_query(query) {
            "watch"
        } else {
            object_verb(method)
        };
    RequestInfo {
        verb,
        namespace,
        resource,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(method: &str, path: &str, query: &str) -> (&'static str, String, String) {
        let i = request_info(method, path, query);
        (i.verb, i.namespace, i.resource)
    }

    #[test]
    fn verbs_as_the_api_server_derives_them() {
        let s = |x: &str| x.to_string();
        assert_eq!(v("GET", "/api/v1/pods", ""), ("list", s(""), s("pods")));
        assert_eq!(
            v("GET", "/api/v1/pods", "watch=1"),
            ("watch", s(""), s("pods"))
        );
        assert_eq!(
            v("GET", "/api/v1/watch/namespaces/a/pods", ""),
            ("watch", s("a"), s("pods"))
        );
        assert_eq!(
            v("GET", "/api/v1/namespaces/a/pods/p", ""),
            ("get", s("a"), s("pods"))
        );
        assert_eq!(
            v("POST", "/api/v1/namespaces/a/pods", ""),
            ("create", s("a"), s("pods"))
        );
        assert_eq!(
            v("PUT", "/apis/apps/v1/namespaces/a/deployments/d", ""),
            ("update", s("a"), s("deployments"))
        );
        assert_eq!(
            v(
                "PATCH",
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                ""
            ),
            ("patch", s("a"), s("deployments"))
        );
        assert_eq!(
            v("DELETE", "/api/v1/namespaces/a/pods/p", ""),
            ("delete", s("a"), s("pods"))
        );
        assert_eq!(
            v("DELETE", "/api/v1/namespaces/a/pods", ""),
            ("deletecollection", s("a"), s("pods"))
        );
        assert_eq!(
            v("GET", "/api/v1/namespaces/a/pods/p/exec", "command=ls"),
            ("exec", s("a"), s("pods"))
        );
        assert_eq!(
            v("POST", "/api/v1/namespaces/a/pods/p/attach", ""),
            ("attach", s("a"), s("pods"))
        );
        assert_eq!(
            v("GET", "/api/v1/namespaces/a/pods/p/portforward", ""),
            ("portforward", s("a"), s("pods"))
        );
        assert_eq!(
            v("GET", "/api/v1/namespaces/a/pods/p/log", "follow=true"),
            ("log", s("a"), s("pods"))
        );
        assert_eq!(
            v(
                "GET",
                "/api/v1/namespaces/a/services/https:web:443/proxy/x",
                ""
            ),
            ("proxy", s("a"), s("services"))
        );
        assert_eq!(
            v("GET", "/api/v1/namespaces/a", ""),
            ("get", s("a"), s("namespaces"))
        );
        assert_eq!(
            v("GET", "/api/v1/namespaces", ""),
            ("list", s(""), s("namespaces"))
        );
        assert_eq!(
            v("GET", "/apis/apps/v1/deployments", ""),
            ("list", s(""), s("deployments"))
        );
        assert_eq!(v("GET", "/version", ""), ("get", s(""), s("")));
        assert_eq!(v("GET", "/apis", ""), ("get", s(""), s("")));
        assert_eq!(v("GET", "/api/v1", ""), ("get", s(""), s("")));
        // Encoded namespaces are decoded before matching.
        assert_eq!(
            v("GET", "/api/v1/namespaces/te%61m/pods", ""),
            ("list", s("team"), s("pods"))
        );
    }
}
