//! The version vector: the opaque `metadata.resourceVersion` of an aggregated answer, one
//! resourceVersion per member cluster key, so a client can resume a merged watch (or bind a
//! continue token) to every member's own version at once. Text form:
//! `kpv1.<base64url of the JSON object {key: resourceVersion}>`.

use base64::Engine;
use std::collections::BTreeMap;

const PREFIX: &str = "kpv1.";

/// Member cluster key -> that member's resourceVersion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Vector(pub BTreeMap<String, String>);

impl Vector {
    /// The text form.
    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Parses the text form; `None` when it is not one (a member's own version, garbage).
    pub(crate) fn decode(s: &str) -> Option<Vector> {
        let b64 = s.strip_prefix(PREFIX)?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .ok()?;
        serde_json::from_slice(&json).ok().map(Vector)
    }

    /// Records a member's version.
    pub(crate) fn set(&mut self, key: &str, rv: &str) {
        self.0.insert(key.to_string(), rv.to_string());
    }

    /// A member's version.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The query a member gets: `query` with a `resourceVersion` that is a vector replaced by
    /// this member's own version (dropped when the vector has none for it, which lists
    /// from the latest state). Other parameters pass unchanged, in their order.
    pub(crate) fn member_query(query: Option<&str>, key: &str) -> Option<String> {
        let q = query?;
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        let mut changed = false;
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if k == "resourceVersion" {
                if let Some(vector) = Vector::decode(&v) {
                    changed = true;
                    if let Some(rv) = vector.get(key) {
                        out.append_pair(&k, rv);
                    }
                    continue;
                }
            }
            out.append_pair(&k, &v);
        }
        if !changed {
            return Some(q.to_string());
        }
        Some(out.finish()).filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let mut v = Vector::default();
        v.set("simulated:dev", "42");
        v.set("staging:prod", "7");
        let text = v.encode();
        assert!(text.starts_with("kpv1."));
        assert_eq!(Vector::decode(&text), Some(v.clone()));
        assert_eq!(v.get("staging:prod"), Some("7"));
        assert_eq!(Vector::decode("42"), None);
        let q = format!("limit=5&resourceVersion={text}&labelSelector=app%3Dweb");
        assert_eq!(
            Vector::member_query(Some(&q), "staging:prod").as_deref(),
            Some("limit=5&resourceVersion=7&labelSelector=app%3Dweb")
        );
        assert_eq!(
            Vector::member_query(Some(&q), "other:one").as_deref(),
            Some("limit=5&labelSelector=app%3Dweb")
        );
        assert_eq!(
            Vector::member_query(Some("resourceVersion=42"), "x").as_deref(),
            Some("resourceVersion=42")
        );
        assert_eq!(Vector::decode("kpv1.!!!"), None);
    }
}
