//! The three patch types of the API server: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902) and strategic merge patch (lists merged as the kind's schema says:
//! `x-kubernetes-patch-strategy: merge` with `x-kubernetes-patch-merge-key`, so a Service's
//! `ports` by `port`, a pod template's `containers` by `name`, their `env` by `name` and
//! `ports` by `containerPort`, `metadata.finalizers` as a set; other lists are replaced;
//! `$patch: delete|replace|merge`, `$setElementOrder/<list>`,
//! `$deleteFromPrimitiveList/<list>` and `$retainKeys` directives).

use super::errors::SimError;
use super::kinds::Kind;
use super::schema::PatchMeta;
use serde_json::{Map, Value};

/// A patch type, from the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
}

impl PatchType {
    /// The patch type of a `Content-Type`, or 415.
    pub(crate) fn from_content_type(ct: &str) -> Result<PatchType, SimError> {
        let base = super::api::media_type(ct);
        match base.as_str() {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            _ => Err(SimError::unsupported_media_type(&base)),
        }
    }
}

/// Applies `patch` (raw bytes) of type `t` to `target`, an object of `kind` (whose schema
/// gives a strategic merge patch its merge keys; a kind without a schema has its lists
/// replaced).
pub(crate) fn apply(
    kind: Kind,
    t: PatchType,
    target: &Value,
    patch: &[u8],
) -> Result<Value, SimError> {
    apply_as(PatchMeta::of(kind), t, target, patch)
}

/// [`apply`] to an object described by `meta` rather than a kind's schema: a subresource's
/// object, such as `PatchMeta::of_definition(schema::SCALE)` for `scale`.
pub(crate) fn apply_as(
    meta: PatchMeta,
    t: PatchType,
    target: &Value,
    patch: &[u8],
) -> Result<Value, SimError> {
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|e| SimError::bad_request(format!("error decoding patch: {e}")))?;
    match t {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(SimError::bad_request(
                    "json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
            let mut out = target.clone();
            merge(&mut out, &patch);
            Ok(out)
        }
        PatchType::Json => json_patch(target, &patch),
        PatchType::Strategic => {
            if !patch.is_object() {
                return Err(SimError::bad_request(
                    "json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
            strategic(target, &patch, meta, "")
        }
    }
}

/// RFC 7386 merge.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn invalid(msg: impl Into<String>) -> SimError {
    SimError::new(422, "Invalid", msg)
}

fn parse_pointer(p: &str) -> Result<Vec<String>, SimError> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    if !p.starts_with('/') {
        return Err(invalid(format!(
            "JSON pointer must be empty or start with a \"/\": {p:?}"
        )));
    }
    Ok(p[1..]
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(seg)?,
            Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn missing(path: &str) -> SimError {
    invalid(format!("the server rejected our request due to an error in our request: doc is missing path: {path:?}"))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), SimError> {
    let segs = parse_pointer(path)?;
    let Some((last, parent)) = segs.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent) {
        Some(Value::Object(m)) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            match last.parse::<usize>() {
                Ok(i) if i <= a.len() => {
                    a.insert(i, value);
                    Ok(())
                }
                _ => Err(invalid(format!(
                    "the server rejected our request due to an error in our request: add operation does not apply: doc is missing path: {path:?}"
                ))),
            }
        }
        _ => Err(missing(path)),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, SimError> {
    let segs = parse_pointer(path)?;
    let Some((last, parent)) = segs.split_last() else {
        return Err(missing(path));
    };
    match get_mut(doc, parent) {
        Some(Value::Object(m)) => m.remove(last).ok_or_else(|| missing(path)),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing(path)),
        },
        _ => Err(missing(path)),
    }
}

/// RFC 6902 patch.
pub(crate) fn json_patch(target: &Value, patch: &Value) -> Result<Value, SimError> {
    let Value::Array(ops) = patch else {
        return Err(SimError::bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        ));
    };
    let mut doc = target.clone();
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str);
        let Some(path) = path else {
            return Err(invalid(format!(
                "the server rejected our request due to an error in our request: missing path in {name} operation"
            )));
        };
        match name {
            "add" | "replace" | "test" => {
                let value = op.get("value").cloned().ok_or_else(|| {
                    invalid(format!(
                        "the server rejected our request due to an error in our request: missing value in {name} operation"
                    ))
                })?;
                match name {
                    "add" => add(&mut doc, path, value)?,
                    "replace" => {
                        let segs = parse_pointer(path)?;
                        let slot = get_mut(&mut doc, &segs).ok_or_else(|| {
                            invalid(format!(
                                "the server rejected our request due to an error in our request: replace operation does not apply: doc is missing key: {path}"
                            ))
                        })?;
                        *slot = value;
                    }
                    _ => {
                        let segs = parse_pointer(path)?;
                        if get(&doc, &segs) != Some(&value) {
                            return Err(invalid(format!(
                                "the server rejected our request due to an error in our request: testing value {path} failed: test failed"
                            )));
                        }
                    }
                }
            }
            "remove" => {
                remove(&mut doc, path)?;
            }
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).ok_or_else(|| {
                    invalid(format!(
                        "the server rejected our request due to an error in our request: missing from in {name} operation"
                    ))
                })?;
                let value = if name == "move" {
                    remove(&mut doc, from)?
                } else {
                    get(&doc, &parse_pointer(from)?)
                        .cloned()
                        .ok_or_else(|| missing(from))?
                };
                add(&mut doc, path, value)?;
            }
            other => {
                return Err(invalid(format!(
                    "the server rejected our request due to an error in our request: Unexpected kind: {other}"
                )))
            }
        }
    }
    Ok(doc)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Strategic merge of `patch` into `target` at `path`, whose place in the schema is `meta`.
fn strategic(
    target: &Value,
    patch: &Value,
    meta: PatchMeta,
    path: &str,
) -> Result<Value, SimError> {
    let Value::Object(p) = patch else {
        return Ok(patch.clone());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut out = p.clone();
            out.remove("$patch");
            return Ok(Value::Object(out));
        }
        Some("delete") => return Ok(Value::Null),
        Some("merge") | None => {}
        Some(other) => {
            return Err(SimError::bad_request(format!(
                "Unknown patch type: {other} in map: {path}"
            )))
        }
    }
    let mut out = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" {
            continue;
        }
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Value::Array(del)) = (out.get_mut(list), v) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with("$setElementOrder/") {
            continue;
        }
        let child = join(path, k);
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let child_meta = meta.field(k);
        let merged = match (out.get(k), v) {
            (_, Value::Object(_)) if child_meta.strategy().replace => {
                strategic(&Value::Null, v, child_meta, &child)?
            }
            (Some(Value::Object(_)), Value::Object(_)) | (None, Value::Object(_)) => {
                let base = out.get(k).cloned().unwrap_or(Value::Null);
                strategic(&base, v, child_meta, &child)?
            }
            (cur, Value::Array(items)) => {
                let cur = match cur {
                    Some(Value::Array(a)) => a.clone(),
                    _ => Vec::new(),
                };
                let order = p
                    .get(&format!("$setElementOrder/{k}"))
                    .and_then(Value::as_array);
                Value::Array(merge_list(&cur, items, child_meta, &child, order)?)
            }
            _ => v.clone(),
        };
        if merged.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), merged);
        }
    }
    Ok(Value::Object(out))
}

/// Merges the list `items` of a patch into `cur`, a list whose place in the schema is
/// `meta`.
fn merge_list(
    cur: &[Value],
    items: &[Value],
    meta: PatchMeta,
    path: &str,
    order: Option<&Vec<Value>>,
) -> Result<Vec<Value>, SimError> {
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace {
        return Ok(items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect());
    }
    let strategy = meta.strategy();
    if !strategy.merge || strategy.replace {
        return Ok(items.to_vec());
    }
    let Some(key) = meta.merge_key() else {
        // A list of primitives merged as a set (`metadata.finalizers`).
        let mut out = cur.to_vec();
        for i in items {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
        return Ok(out);
    };
    let item_meta = meta.items();
    let mut out: Vec<Value> = cur.to_vec();
    for item in items {
        let Some(kv) = item.get(key) else {
            return Err(SimError::bad_request(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let pos = out.iter().position(|c| c.get(key) == Some(kv));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                out.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => {
                let merged = strategic(&out[i], item, item_meta, path)?;
                out[i] = merged;
            }
            None => {
                let mut fresh = item.clone();
                if let Value::Object(m) = &mut fresh {
                    m.remove("$patch");
                }
                out.push(strategic(&Value::Null, &fresh, item_meta, path)?);
            }
        }
    }
    if let Some(order) = order {
        let rank = |v: &Value| {
            v.get(key)
                .and_then(|kv| order.iter().position(|o| o.get(key) == Some(kv)))
                .unwrap_or(usize::MAX)
        };
        out.sort_by_key(rank);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let t = json!({"a":"b","c":{"d":"e","f":"g"}});
        let out = apply(
            Kind::Service,
            PatchType::Merge,
            &t,
            br#"{"a":"z","c":{"f":null}}"#,
        )
        .unwrap();
        assert_eq!(out, json!({"a":"z","c":{"d":"e"}}));
    }

    #[test]
    fn json_patch_ops() {
        let t = json!({"spec":{"ports":[{"port":80}],"selector":{"app":"a"}}});
        let p = br#"[{"op":"test","path":"/spec/ports/0/port","value":80},
            {"op":"add","path":"/spec/ports/-","value":{"port":81}},
            {"op":"replace","path":"/spec/selector/app","value":"b"},
            {"op":"copy","from":"/spec/selector","path":"/metadata"},
            {"op":"move","from":"/metadata/app","path":"/spec/x"},
            {"op":"remove","path":"/spec/ports/0"}]"#;
        let out = apply(Kind::Service, PatchType::Json, &t, p).unwrap();
        assert_eq!(
            out,
            json!({"metadata":{},"spec":{"ports":[{"port":81}],"selector":{"app":"b"},"x":"b"}})
        );
        let err = apply(
            Kind::Service,
            PatchType::Json,
            &t,
            br#"[{"op":"test","path":"/spec/ports/0/port","value":1}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let err = apply(
            Kind::Service,
            PatchType::Json,
            &t,
            br#"[{"op":"remove","path":"/nope"}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            apply(Kind::Service, PatchType::Json, &t, b"{")
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn strategic_ports_by_port() {
        let t = json!({"spec":{"ports":[{"name":"http","port":80},{"name":"metrics","port":9090}],"externalIPs":["1.1.1.1"]}});
        let out = apply(
            Kind::Service,
            PatchType::Strategic,
            &t,
            br#"{"spec":{"ports":[{"port":80,"targetPort":8080},{"port":443,"name":"https"}],"externalIPs":["2.2.2.2"]}}"#,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"name":"http","port":80,"targetPort":8080},{"name":"metrics","port":9090},{"name":"https","port":443}])
        );
        assert_eq!(out["spec"]["externalIPs"], json!(["2.2.2.2"]));
        let out = apply(
            Kind::Service,
            PatchType::Strategic,
            &t,
            br#"{"spec":{"ports":[{"port":9090,"$patch":"delete"}]}}"#,
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"name":"http","port":80}]));
        let out = apply(
            Kind::Service,
            PatchType::Strategic,
            &t,
            br#"{"spec":{"ports":[{"port":1,"name":"one"},{"$patch":"replace"}]}}"#,
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"port":1,"name":"one"}]));
        let out = apply(
            Kind::Service,
            PatchType::Strategic,
            &t,
            br#"{"spec":{"$setElementOrder/ports":[{"port":9090},{"port":80}],"ports":[{"port":80,"name":"web"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"name":"metrics","port":9090},{"name":"web","port":80}])
        );
    }

    #[test]
    fn other_types_are_415() {
        assert_eq!(
            PatchType::from_content_type("application/json")
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8").unwrap(),
            PatchType::Merge
        );
    }
}
