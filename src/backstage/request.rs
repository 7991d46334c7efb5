//! What the entity routes take: the JSON bodies of `POST /services/{id}` (`{entity, auth}`)
//! and `POST /resources/{workloads,custom}/query` (`{entityRef, auth, customResources}`),
//! checked with Backstage's messages, and entity references parsed as
//! `@backstage/catalog-model`'s `parseEntityRef` does.

use super::error::Error;
use crate::config::CustomResourceRef;
use serde_json::{Map, Value};

/// The largest body read (Backstage's `express.json()` takes 100 kB).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// An entity's `kind:namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntityRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for EntityRef {
    /// `stringifyEntityRef`: lowercase `kind:namespace/name`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.kind.to_lowercase(),
            self.namespace.to_lowercase(),
            self.name.to_lowercase()
        )
    }
}

/// Parses a string reference (`[<kind>:][<namespace>/]<name>`) as `parseEntityRef` does
/// without defaults: the kind is required, the namespace defaults to `default`. The error
/// is JavaScript's `String(error)` of that function's.
pub(crate) fn parse_entity_ref(raw: &str) -> Result<EntityRef, String> {
    if raw.is_empty() {
        return Err("Error: Entity reference must not be empty".into());
    }
    let slash = raw.find('/');
    let mut colon = raw.find(':');
    if let (Some(s), Some(c)) = (slash, colon) {
        if s < c {
            colon = None;
        }
    }
    let kind = colon.map(|c| &raw[..c]);
    let namespace = slash.map(|s| &raw[colon.map_or(0, |c| c + 1)..s]);
    let name = &raw[(colon.map_or(0, |c| c + 1)).max(slash.map_or(0, |s| s + 1))..];
    if kind == Some("") || namespace == Some("") || name.is_empty() {
        return Err(format!(
            "TypeError: Entity reference \"{raw}\" was not on the form [<kind>:][<namespace>/]<name>"
        ));
    }
    let Some(kind) = kind else {
        return Err(format!(
            "Error: Entity reference {} had missing or empty kind (e.g. did not start with \"component:\" or similar)",
            Value::String(raw.into())
        ));
    };
    Ok(EntityRef {
        kind: kind.into(),
        namespace: namespace.unwrap_or("default").into(),
        name: name.into(),
    })
}

/// The body as a JSON object (an empty or non-object body reads as `{}`, as Express's
/// `req.body` would be).
pub(crate) fn body_object(body: &[u8]) -> Result<Map<String, Value>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(Error::input(format!("the body is not JSON: {e}"))),
    }
}

/// Whether JavaScript takes the value for false (`!value`): absent, `null`, `false`, `0`
/// and `""`. Backstage's routes test their fields so.
pub(crate) fn falsy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// `entityRef` of a `/resources/*` body, checked and parsed.
pub(crate) fn entity_ref(body: &Map<String, Value>) -> Result<EntityRef, Error> {
    let raw = body.get("entityRef");
    if falsy(raw) {
        return Err(Error::input("entity is a required field"));
    }
    match raw {
        Some(Value::String(s)) => {
            parse_entity_ref(s).map_err(|e| Error::input(format!("Invalid entity ref, {e}")))
        }
        _ => Err(Error::input("entity query must be a string")),
    }
}

/// The reference of a posted entity, as `stringifyEntityRef` reads it: `kind`, and
/// `metadata.namespace` (default `default`) and `metadata.name`, or, for an object without
/// `metadata`, its own `namespace` and `name`. `None` where that function throws (a
/// non-object, a missing or non-string kind or name, a non-string namespace).
pub(crate) fn posted_entity_ref(entity: &Value) -> Option<EntityRef> {
    let Value::Object(e) = entity else {
        return None;
    };
    let holder = match e.get("metadata") {
        Some(m) => m.as_object()?,
        None => e,
    };
    let namespace = match holder.get("namespace") {
        None | Some(Value::Null) => "default",
        Some(Value::String(s)) => s,
        Some(_) => return None,
    };
    Some(EntityRef {
        kind: e.get("kind")?.as_str()?.into(),
        namespace: namespace.into(),
        name: holder.get("name")?.as_str()?.into(),
    })
}

/// `customResources` of a `/resources/custom/query` body.
pub(crate) fn custom_resources(body: &Map<String, Value>) -> Result<Vec<CustomResourceRef>, Error> {
    let raw = body.get("customResources");
    if falsy(raw) {
        return Err(Error::input("customResources is a required field"));
    }
    let list = match raw {
        Some(Value::Array(a)) => a,
        _ => return Err(Error::input("customResources must be an array")),
    };
    if list.is_empty() {
        return Err(Error::input("at least 1 customResource is required"));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value::<CustomResourceRef>(v.clone()).map_err(|_| {
                Error::input(format!(
                    "customResources[{i}] must be an object with string group, apiVersion and plural"
                ))
            })
        })
        .collect()
}

/// The body's `auth` (provider tokens), `{}` when absent.
pub(crate) fn auth(body: &Map<String, Value>) -> Map<String, Value> {
    match body.get("auth") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entity_refs() {
        let r = parse_entity_ref("component:shop/web").unwrap();
        assert_eq!(
            (r.kind.as_str(), r.namespace.as_str(), r.name.as_str()),
            ("component", "shop", "web")
        );
        let r = parse_entity_ref("Component:Web").unwrap();
        assert_eq!(r.namespace, "default");
        assert_eq!(r.to_string(), "component:default/web");
        assert_eq!(
            parse_entity_ref("web").unwrap_err(),
            "Error: Entity reference \"web\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"
        );
        assert!(parse_entity_ref("shop/web").is_err());
        assert_eq!(
            parse_entity_ref("component:").unwrap_err(),
            "TypeError: Entity reference \"component:\" was not on the form [<kind>:][<namespace>/]<name>"
        );
        // A slash before the colon: no kind.
        assert!(parse_entity_ref("a/b:c").is_err());
    }

    #[test]
    fn posted_entities_as_stringify_entity_ref_reads_them() {
        let r = |v: Value| posted_entity_ref(&v).map(|r| r.to_string());
        assert_eq!(
            r(json!({"kind": "Component", "metadata": {"name": "Web"}})).as_deref(),
            Some("component:default/web")
        );
        assert_eq!(
            r(json!({"kind": "Component", "metadata": {"name": "web", "namespace": null}}))
                .as_deref(),
            Some("component:default/web")
        );
        // Without metadata, a compound reference.
        assert_eq!(
            r(json!({"kind": "Component", "namespace": "shop", "name": "web"})).as_deref(),
            Some("component:shop/web")
        );
        for bad in [
            json!("component:default/web"),
            json!(["web"]),
            json!({"kind": "Component", "metadata": null}),
            json!({"kind": "Component", "metadata": {}}),
            json!({"metadata": {"name": "web"}}),
            json!({"kind": "Component", "metadata": {"name": "web", "namespace": 3}}),
        ] {
            assert_eq!(r(bad.clone()), None, "{bad}");
        }
    }

    #[test]
    fn bodies() {
        let b = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            entity_ref(&b(json!({}))).unwrap_err().message,
            "entity is a required field"
        );
        assert_eq!(
            entity_ref(&b(json!({"entityRef": 3}))).unwrap_err().message,
            "entity query must be a string"
        );
        // What JavaScript takes for false is missing.
        for v in [json!(0), json!(0.0), json!(""), json!(false), json!(null)] {
            assert_eq!(
                entity_ref(&b(json!({"entityRef": v}))).unwrap_err().message,
                "entity is a required field"
            );
            assert_eq!(
                custom_resources(&b(json!({"customResources": v})))
                    .unwrap_err()
                    .message,
                "customResources is a required field"
            );
        }
        assert!(entity_ref(&b(json!({"entityRef": "web"})))
            .unwrap_err()
            .message
            .starts_with("Invalid entity ref, Error: "));
        assert_eq!(
            custom_resources(&b(json!({}))).unwrap_err().message,
            "customResources is a required field"
        );
        assert_eq!(
            custom_resources(&b(json!({"customResources": {}})))
                .unwrap_err()
                .message,
            "customResources must be an array"
        );
        assert_eq!(
            custom_resources(&b(json!({"customResources": []})))
                .unwrap_err()
                .message,
            "at least 1 customResource is required"
        );
        let crs = custom_resources(&b(json!({"customResources": [{"group": "argoproj.io", "apiVersion": "v1alpha1", "plural": "rollouts"}]}))).unwrap();
        assert_eq!(crs[0].plural, "rollouts");
        assert!(body_object(b"{").is_err());
        assert!(body_object(b"").unwrap().is_empty());
    }
}
