//! The fast path of a merged list: the members' items are spliced into the answer as the
//! bytes the members sent, each with the cluster annotations inserted in place, without
//! building a JSON tree of every object (parsing every member's list into
//! `serde_json::Value`s and writing them out again cost most of an aggregated list's time).
//! Any member body this does not understand sends the whole merge down the general path
//! ([`super::merge::merge`]).

use super::fanout::{Answer, Outcome};
use super::merge::{ClusterError, CLUSTER_ANNOTATION, CLUSTER_NAME_ANNOTATION};
use super::vector::Vector;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The parts of a member's Table this path reads; the rows stay raw.
#[derive(Deserialize)]
struct RawTable<'a> {
    kind: String,
    #[serde(default)]
    metadata: ListMeta,
    #[serde(rename = "columnDefinitions", borrow)]
    columns: &'a RawValue,
    #[serde(borrow, default)]
    rows: Vec<&'a RawValue>,
}

/// The parts of a member's list this path reads; the items stay raw.
#[derive(Deserialize)]
struct RawList<'a> {
    kind: String,
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    metadata: ListMeta,
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize, Default)]
struct ListMeta {
    #[serde(rename = "resourceVersion", default)]
    resource_version: String,
}

/// The index just past the JSON value starting at `i` (after whitespace), or `None`.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    i = skip_ws(b, i);
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']') && !b[i].is_ascii_whitespace()
            {
                i += 1;
            }
            Some(i)
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// `b[i]` is `"`: the index just past the string.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// For the object starting at `open` (`b[open] == '{'`): the position of the value of its
/// member `key` (after the colon and whitespace), if it has one.
fn find_member(b: &[u8], open: usize, key: &[u8]) -> Option<Option<usize>> {
    let mut i = skip_ws(b, open + 1);
    if b.get(i) == Some(&b'}') {
        return Some(None);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let end = skip_string(b, i)?;
        let name = &b[i + 1..end - 1];
        i = skip_ws(b, end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let value = skip_ws(b, i + 1);
        if name == key {
            return Some(Some(value));
        }
        i = skip_ws(b, skip_value(b, value)?);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Some(None),
            _ => return None,
        }
    }
}

/// The item's bytes with `kubeplex.io/cluster` and `kubeplex.io/cluster-name` added to its
/// `metadata.annotations` (creating either object when absent); `None` when the item is not
/// a JSON object this understands, or already carries the annotations.
pub(crate) fn annotate_raw(item: &str, pair: &str) -> Option<Vec<u8>> {
    let b = item.as_bytes();
    let open = skip_ws(b, 0);
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let (at, insert) = match find_member(b, open, b"metadata")? {
        None => (
            open + 1,
            format!("\"metadata\":{{\"annotations\":{{{pair}}}}}"),
        ),
        Some(meta) => {
            if b.get(meta) != Some(&b'{') {
                return None;
            }
            match find_member(b, meta, b"annotations")? {
                None => (meta + 1, format!("\"annotations\":{{{pair}}}")),
                Some(ann) => {
                    if b.get(ann) != Some(&b'{') {
                        return None;
                    }
                    let end = skip_value(b, ann)?;
                    let inner = &item[ann..end];
                    if inner.contains(CLUSTER_ANNOTATION) {
                        return None;
                    }
                    (ann + 1, pair.to_string())
                }
            }
        }
    };
    let rest = skip_ws(b, at);
    let comma = !matches!(b.get(rest), Some(b'}'));
    let mut out = Vec::with_capacity(b.len() + insert.len() + 1);
    out.extend_from_slice(&b[..at]);
    out.extend_from_slice(insert.as_bytes());
    if comma {
        out.push(b',');
    }
    out.extend_from_slice(&b[at..]);
    Some(out)
}

/// The merged list (and the members that failed), or `None` when a member's answer needs
/// the general path (not a list, a Table, a get, or bytes this does not understand).
pub(crate) fn merge_lists(answers: &[Answer]) -> Option<(Vec<u8>, Vec<ClusterError>)> {
    let mut lists = Vec::new();
    let mut failed = false;
    for a in answers {
        match &a.outcome {
            Outcome::Http { status, body, .. } if (200..300).contains(status) => {
                let list: RawList<'_> = serde_json::from_slice(body).ok()?;
                if !list.kind.ends_with("List") || list.kind == "Table" {
                    return None;
                }
                lists.push((a, list));
            }
            _ => failed = true,
        }
    }
    if lists.is_empty() || failed {
        // Failures are sorted out (and reported) by the general path.
        return None;
    }
    let kind = lists[0].1.kind.clone();
    let api_version = lists[0].1.api_version.clone();
    let size: usize = answers
        .iter()
        .map(|a| match &a.outcome {
            Outcome::Http { body, .. } => body.len(),
            Outcome::Failed(_) => 0,
        })
        .sum();
    let mut vector = Vector::default();
    let mut items: Vec<u8> = Vec::with_capacity(size + size / 8);
    let mut first = true;
    for (a, list) in &lists {
        let key = a.cluster.key.as_str();
        vector.set(key, &list.metadata.resource_version);
        let pair = format!(
            "{}:{},{}:{}",
            serde_json::to_string(CLUSTER_ANNOTATION).ok()?,
            serde_json::to_string(key).ok()?,
            serde_json::to_string(CLUSTER_NAME_ANNOTATION).ok()?,
            serde_json::to_string(&a.cluster.spec.name).ok()?,
        );
        for item in list.items.iter().flatten() {
            let annotated = annotate_raw(item.get(), &pair)?;
            if !first {
                items.push(b',');
            }
            first = false;
            items.extend_from_slice(&annotated);
        }
    }
    let head = serde_json::json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"resourceVersion": vector.encode()},
    })
    .to_string();
    let mut out = Vec::with_capacity(items.len() + head.len() + 16);
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    out.extend_from_slice(&items);
    out.extend_from_slice(b"]}");
    Some((out, Vec::new()))
}

/// A Table row with the cluster key as its first cell and the cluster annotations on its
/// object (a `PartialObjectMetadata` or the whole object); `None` when the row is not one
/// this understands.
pub(crate) fn cluster_row(row: &str, key_json: &str, pair: &str) -> Option<Vec<u8>> {
    let b = row.as_bytes();
    let open = skip_ws(b, 0);
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let cells = find_member(b, open, b"cells")??;
    if b.get(cells) != Some(&b'[') {
        return None;
    }
    let after = skip_ws(b, cells + 1);
    let comma = b.get(after) != Some(&b']');
    // The object, annotated, replaces its bytes (when it is an object).
    let object = match find_member(b, open, b"object")? {
        Some(o) if b.get(o) == Some(&b'{') => {
            let end = skip_value(b, o)?;
            Some((o, end, annotate_raw(&row[o..end], pair)?))
        }
        _ => None,
    };
    let mut out = Vec::with_capacity(b.len() + key_json.len() + pair.len() + 8);
    out.extend_from_slice(&b[..cells + 1]);
    out.extend_from_slice(key_json.as_bytes());
    if comma {
        out.push(b',');
    }
    match object {
        Some((o, end, annotated)) if o > cells => {
            out.extend_from_slice(&b[cells + 1..o]);
            out.extend_from_slice(&annotated);
            out.extend_from_slice(&b[end..]);
        }
        Some((o, end, annotated)) => {
            // The object comes before the cells: rebuild in order.
            let mut rebuilt = Vec::with_capacity(out.len() + annotated.len());
            rebuilt.extend_from_slice(&b[..o]);
            rebuilt.extend_from_slice(&annotated);
            rebuilt.extend_from_slice(&b[end..cells + 1]);
            rebuilt.extend_from_slice(key_json.as_bytes());
            if comma {
                rebuilt.push(b',');
            }
            rebuilt.extend_from_slice(&b[cells + 1..]);
            return Some(rebuilt);
        }
        None => out.extend_from_slice(&b[cells + 1..]),
    }
    Some(out)
}

/// The merged Table (a leading `Cluster` column, each row's first cell its cluster key and
/// its object annotated), or `None` when a member's answer needs the general path.
pub(crate) fn merge_tables(answers: &[Answer]) -> Option<Vec<u8>> {
    let mut tables = Vec::new();
    for a in answers {
        match &a.outcome {
            Outcome::Http { status, body, .. } if (200..300).contains(status) => {
                let t: RawTable<'_> = serde_json::from_slice(body).ok()?;
                if t.kind != "Table" {
                    return None;
                }
                tables.push((a, t));
            }
            _ => return None,
        }
    }
    if tables.is_empty() {
        return None;
    }
    let mut columns: Vec<serde_json::Value> = vec![super::merge::cluster_column()];
    let first: Vec<serde_json::Value> = serde_json::from_str(tables[0].1.columns.get()).ok()?;
    columns.extend(first);
    let mut vector = Vector::default();
    let mut rows: Vec<u8> = Vec::new();
    let mut first_row = true;
    for (a, t) in &tables {
        let key = a.cluster.key.as_str();
        vector.set(key, &t.metadata.resource_version);
        let key_json = serde_json::to_string(key).ok()?;
        let pair = format!(
            "{}:{},{}:{}",
            serde_json::to_string(CLUSTER_ANNOTATION).ok()?,
            key_json,
            serde_json::to_string(CLUSTER_NAME_ANNOTATION).ok()?,
            serde_json::to_string(&a.cluster.spec.name).ok()?,
        );
        for row in &t.rows {
            let r = cluster_row(row.get(), &key_json, &pair)?;
            if !first_row {
                rows.push(b',');
            }
            first_row = false;
            rows.extend_from_slice(&r);
        }
    }
    let head = serde_json::json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": vector.encode()},
        "columnDefinitions": columns,
    })
    .to_string();
    let mut out = Vec::with_capacity(rows.len() + head.len() + 16);
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"rows\":[");
    out.extend_from_slice(&rows);
    out.extend_from_slice(b"]}");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn annotated(item: Value) -> Value {
        let pair = r#""kubeplex.io/cluster":"a:b","kubeplex.io/cluster-name":"b""#;
        let bytes = annotate_raw(&item.to_string(), pair).expect("annotated");
        serde_json::from_slice(&bytes).expect("still JSON")
    }

    #[test]
    fn annotations_are_added_wherever_metadata_stands() {
        let want = json!({"kubeplex.io/cluster": "a:b", "kubeplex.io/cluster-name": "b"});
        let v = annotated(json!({"metadata": {"name": "x"}, "spec": {"a": "}{\"metadata\""}}));
        assert_eq!(v["metadata"]["annotations"], want);
        assert_eq!(v["metadata"]["name"], "x");
        assert_eq!(v["spec"]["a"], "}{\"metadata\"");
        let v = annotated(json!({"metadata": {"annotations": {"x": "y"}, "name": "n"}}));
        assert_eq!(v["metadata"]["annotations"]["x"], "y");
        assert_eq!(v["metadata"]["annotations"]["kubeplex.io/cluster"], "a:b");
        let v = annotated(json!({"metadata": {"annotations": {}}}));
        assert_eq!(v["metadata"]["annotations"], want);
        let v = annotated(json!({"kind": "Pod", "spec": {"metadata": {}}, "metadata": {}}));
        assert_eq!(v["metadata"]["annotations"], want);
        assert_eq!(v["spec"]["metadata"], json!({}));
        let v = annotated(json!({"spec": 1}));
        assert_eq!(v["metadata"]["annotations"], want);
        let v = annotated(json!({}));
        assert_eq!(v["metadata"]["annotations"], want);
        assert!(annotate_raw("[1]", "").is_none());
        assert!(annotate_raw(r#"{"metadata": 5}"#, "").is_none());
        assert!(annotate_raw(
            r#"{"metadata":{"annotations":{"kubeplex.io/cluster":"x"}}}"#,
            ""
        )
        .is_none());
    }

    #[test]
    fn rows_get_the_cluster_cell_and_annotated_objects() {
        let pair = r#""kubeplex.io/cluster":"a:b","kubeplex.io/cluster-name":"b""#;
        for row in [
            json!({"cells": ["web", 1], "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "web"}}}),
            json!({"object": {"metadata": {"name": "web"}}, "cells": ["web", 1]}),
        ] {
            let out = cluster_row(&row.to_string(), r#""a:b""#, pair).unwrap();
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["cells"], json!(["a:b", "web", 1]));
            assert_eq!(
                v["object"]["metadata"]["annotations"]["kubeplex.io/cluster-name"],
                "b"
            );
            assert_eq!(v["object"]["metadata"]["name"], "web");
        }
        let none = cluster_row(r#"{"cells": [], "object": null}"#, r#""k""#, pair).unwrap();
        let v: Value = serde_json::from_slice(&none).unwrap();
        assert_eq!(v, json!({"cells": ["k"], "object": null}));
        assert!(cluster_row(r#"{"object": {}}"#, r#""k""#, pair).is_none());
    }
}
