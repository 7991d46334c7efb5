//! Path safety (SPEC §3): the upstream path is checked before anything is sent.
//!
//! The tail of a proxied request (what follows `{base}/proxy` or `{base}/clusters/{cluster}`)
//! is passed upstream exactly as sent (percent-encoding, trailing slash), appended to the
//! cluster URL's own path. A tail is refused with 400 when it could make the upstream request
//! mean something else than "this path under this cluster":
//! - a `.` or `..` segment, raw or percent-encoded (`%2e%2e`, `.%2E`, ...), including one
//!   hidden behind an encoded slash (`%2e%2e%2fsecret`), or a backslash;
//! - a tail starting with `//` (raw or `/%2F`), which some parsers read as an authority;
//! - an absolute-form request target (`GET http://other/...`), checked by the caller on the
//!   request URI.

use crate::status::Error;

/// Checks a raw request tail (starting with `/` or empty). Never echoes the path's query.
pub(crate) fn check_tail(tail: &str) -> Result<(), Error> {
    let bytes = tail.as_bytes();
    if !tail.is_empty() && bytes[0] != b'/' {
        return Err(Error::bad_request("the proxied path must start with '/'"));
    }
    // Fast path: nothing encoded, no dots, no backslash, no leading `//`: safe.
    let needs_look = bytes.iter().any(|&b| b == b'%' || b == b'.' || b == b'\\');
    if bytes.len() >= 2 && bytes[1] == b'/' {
        return Err(leading_slashes());
    }
    if !needs_look {
        return Ok(());
    }
    // Borrowed, not copied, when nothing is percent-encoded (`/apis/apps.k8s.io/v1`).
    let decoded: std::borrow::Cow<[u8]> = percent_encoding::percent_decode(bytes).into();
    if decoded.contains(&b'\\') {
        return Err(Error::bad_request(
            "the proxied path contains a backslash; refused",
        ));
    }
    if decoded.len() >= 2 && decoded[0] == b'/' && decoded[1] == b'/' {
        return Err(leading_slashes());
    }
    for seg in decoded.split(|&b| b == b'/') {
        if seg == b".." || seg == b"." {
            return Err(Error::bad_request(
                "the proxied path contains a '.' or '..' segment (raw or percent-encoded); refused",
            ));
        }
    }
    Ok(())
}

fn leading_slashes() -> Error {
    Error::bad_request("the proxied path starts with '//'; refused")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        for p in [
            "",
            "/",
            "/api/v1/namespaces",
            "/api/v1/namespaces/",
            "/api/v1/namespaces/a%20b",
            "/apis/apps/v1/deployments",
            "/api/v1/namespaces/default/services/x.y",
            "/version",
            "/a/.hidden/b",
            "/a/...",
        ] {
            assert!(check_tail(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn unsafe_paths() {
        for p in [
            "/..",
            "/../etc",
            "/api/../../x",
            "/api/%2e%2e/x",
            "/api/%2E%2E/x",
            "/api/.%2e/x",
            "/api/%2e./x",
            "/api/%2e%2e%2fx",
            "/api/./x",
            "//evil.example.com/x",
            "/%2Fevil.example.com/x",
            "/%2f%2fevil",
            "/a\\..\\b",
            "/a%5c..",
            "api",
        ] {
            assert!(check_tail(p).is_err(), "{p}");
        }
    }
}
