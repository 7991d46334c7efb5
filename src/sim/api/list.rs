//! Collection reads: `labelSelector`, `fieldSelector`, `limit` + `continue` (opaque tokens
//! bound to a resourceVersion; 400 when malformed, 410 when compacted),
//! `resourceVersion`/`resourceVersionMatch` semantics, and the list body assembled from
//! each object's JSON serialized once at commit.

use super::{accept, json_response, pretty, table_of, table_response, Params};
use crate::sim::errors::{Cause, SimError};
use crate::sim::selectors::{FieldSelector, LabelSelector, Selectors};
use crate::sim::state::SimState;
use crate::sim::store::{Kind, Snapshot, Stored};
use crate::sim::table;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

type Key = (String, String);

/// The fields a field selector may name, per kind.
pub(super) fn known_fields(kind: Kind) -> Vec<&'static str> {
    let info = kind.info();
    let own: &[&str] = if info.namespaced {
        &["metadata.name", "metadata.namespace"]
    } else {
        &["metadata.name"]
    };
    own.iter().chain(info.field_labels).copied().collect()
}

/// Parses `labelSelector` and `fieldSelector`.
pub(super) fn selectors(kind: Kind, params: &Params) -> Result<Selectors, SimError> {
    Ok(Selectors {
        labels: LabelSelector::parse(params.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(
            params.get("fieldSelector").unwrap_or(""),
            &known_fields(kind),
        )?,
    })
}

fn bad_continue(why: &str) -> SimError {
    SimError::bad_request(format!("continue key is not valid: {why}"))
}

/// Encodes a continue token: the list's resourceVersion and the last key returned.
pub(super) fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    let start = if namespace.is_empty() {
        format!("{name}\u{0}")
    } else {
        format!("{namespace}/{name}\u{0}")
    };
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

/// Decodes a continue token into (resourceVersion, last key).
pub(super) fn decode_continue(
    token: &str,
    kind: Kind,
) -> Result<(u64, (String, String)), SimError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| bad_continue(&e.to_string()))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| bad_continue(&e.to_string()))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad_continue(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let rv = v.get("rv").and_then(Value::as_u64).filter(|rv| *rv > 0);
    let Some(rv) = rv else {
        return Err(bad_continue(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    };
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_suffix('\u{0}'))
        .ok_or_else(|| bad_continue("invalid start key"))?;
    let key = if kind.namespaced() {
        match start.split_once('/') {
            Some((ns, name)) => (ns.to_string(), name.to_string()),
            None => return Err(bad_continue("invalid start key")),
        }
    } else {
        (String::new(), start.to_string())
    };
    Ok((rv, key))
}

/// A parsed `resourceVersion` (400 when not a number).
pub(super) fn parse_rv(s: &str) -> Result<u64, SimError> {
    s.parse::<u64>().map_err(|_| {
        SimError::bad_request(format!(
            "resourceVersion: Invalid value: {s:?}: must be a number"
        ))
    })
}

/// 504 for a resourceVersion the store has not reached.
pub(super) fn too_large(asked: u64, current: u64) -> SimError {
    SimError {
        details: Some(Box::new(crate::sim::errors::Details {
            causes: vec![Cause {
                reason: "ResourceVersionTooLarge".into(),
                message: "Too large resource version".into(),
                field: String::new(),
            }],
            retry_after_seconds: Some(1),
            ..Default::default()
        })),
        ..SimError::new(
            504,
            "Timeout",
            format!("Too large resource version: {asked}, current: {current}"),
        )
    }
}

/// The snapshot a list reads and its resourceVersion, plus the key to start after.
fn choose_snapshot(
    state: &SimState,
    kind: Kind,
    params: &Params,
) -> Result<(Snapshot, u64, Option<Key>), SimError> {
    let rv_param = params.get("resourceVersion").filter(|s| !s.is_empty());
    let matching = params.get("resourceVersionMatch").filter(|s| !s.is_empty());
    if let Some(token) = params.get("continue").filter(|s| !s.is_empty()) {
        if rv_param.is_some() && rv_param != Some("0") {
            return Err(SimError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (rv, key) = decode_continue(token, kind)?;
        let snap = state.store.snapshot_at(rv).map_err(|e| match e {
            Some(_) => SimError::continue_expired(),
            None => {
                bad_continue("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            }
        })?;
        return Ok((snap, rv, Some(key)));
    }
    match (rv_param, matching) {
        (None, Some(_)) => Err(SimError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        )),
        (_, Some(m)) if m != "Exact" && m != "NotOlderThan" => Err(SimError::bad_request(format!(
            "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
        ))),
        (Some(rv), Some("Exact")) => {
            let rv = parse_rv(rv)?;
            if rv == 0 {
                return Err(SimError::bad_request(
                    "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            let snap = state.store.snapshot_at(rv).map_err(|e| match e {
                Some(oldest) => SimError::too_old(rv, oldest),
                None => too_large(rv, state.store.rv()),
            })?;
            Ok((snap, rv, None))
        }
        (Some(rv), _) => {
            let asked = parse_rv(rv)?;
            let (snap, current) = state.store.snapshot();
            if asked > current {
                return Err(too_large(asked, current));
            }
            Ok((snap, current, None))
        }
        (None, None) => {
            let (snap, current) = state.store.snapshot();
            Ok((snap, current, None))
        }
    }
}

/// Serves a list of `kind` (in `namespace`, or all).
pub(super) fn list(
    state: &SimState,
    req: &HttpRequest,
    params: &Params,
    kind: Kind,
    namespace: Option<&str>,
) -> Result<HttpResponse, SimError> {
    let sel = selectors(kind, params)?;
    let limit = match params.get("limit").filter(|s| !s.is_empty()) {
        None => None,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => {
                return Err(SimError::bad_request(format!(
                    "limit: Invalid value: {l:?}: must be an integer"
                )))
            }
        },
    };
    let (snap, rv, after) = choose_snapshot(state, kind, params)?;
    // A pinned name needs no scan.
    let pinned = sel.fields.pinned("metadata.name");
    let mut items = Vec::new();
    let mut next = None;
    let mut remaining = None;
    {
        let mut iter: Box<dyn Iterator<Item = _>> = match (pinned, namespace) {
            (Some(name), Some(ns)) if after.is_none() => {
                Box::new(snap.get(kind, ns, name).into_iter())
            }
            (Some(name), None) if kind == Kind::Namespace && after.is_none() => {
                Box::new(snap.get(kind, "", name).into_iter())
            }
            _ => Box::new(snap.iter(kind, namespace, after)),
        };
        let mut matching = iter.by_ref().filter(|s| sel.matches(s));
        for s in matching.by_ref() {
            items.push(s.clone());
            if limit.is_some_and(|l| items.len() >= l) {
                break;
            }
        }
        if limit.is_some_and(|l| items.len() >= l) {
            if sel.is_empty() {
                let rest = matching.count();
                if rest > 0 {
                    remaining = Some(rest);
                }
            } else if matching.next().is_some() {
                remaining = Some(0);
            }
            if remaining.is_some() {
                if let Some(last) = items.last() {
                    next = Some(encode_continue(rv, &last.namespace, &last.name));
                }
            }
        }
    }
    let mut meta = serde_json::Map::new();
    meta.insert("resourceVersion".into(), rv.to_string().into());
    if let Some(token) = &next {
        meta.insert("continue".into(), token.clone().into());
        if sel.is_empty() {
            if let Some(r) = remaining {
                meta.insert("remainingItemCount".into(), r.into());
            }
        }
    }
    let pretty = pretty(req, params);
    if table::wants_table(accept(req)) {
        let values: Vec<Value> = items.iter().map(|s| s.value()).collect();
        let include = params.get("includeObject").unwrap_or("Metadata");
        return Ok(table_response(
            table_of(kind, &values, include, Value::Object(meta)),
            pretty,
        ));
    }
    let body = list_body(kind, &meta, &items);
    Ok(json_response(StatusCode::OK, body, pretty))
}

/// The compact JSON of a `<Kind>List` with list metadata `meta`, built from the objects'
/// stored JSON.
pub(super) fn list_body(
    kind: Kind,
    meta: &serde_json::Map<String, Value>,
    items: &[Arc<Stored>],
) -> Vec<u8> {
    let meta_json = serde_json::to_string(meta).unwrap_or_else(|_| "{}".into());
    let size: usize = items.iter().map(|s| s.json.len() + 1).sum();
    let mut body = Vec::with_capacity(size + 128);
    body.extend_from_slice(
        format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{meta_json},\"items\":[",
            kind.list_kind(),
            kind.api_version()
        )
        .as_bytes(),
    );
    // Custom resources are served unstructured: their list items keep kind and apiVersion.
    let full = !kind.info().is_builtin();
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        if full {
            body.extend_from_slice(&s.full_json());
        } else {
            body.extend_from_slice(&s.json);
        }
    }
    body.extend_from_slice(b"]}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "default", "web");
        assert_eq!(
            decode_continue(&t, Kind::Service).unwrap(),
            (42, ("default".into(), "web".into()))
        );
        assert_eq!(decode_continue("!!!", Kind::Service).unwrap_err().code, 400);
        let bogus = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{\"v\":\"x\"}");
        assert_eq!(
            decode_continue(&bogus, Kind::Service).unwrap_err().code,
            400
        );
    }
}
