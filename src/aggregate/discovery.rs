//! What kubectl asks before it lists, answered for the aggregate server URL
//! (`--server http://host:7007{base}/aggregate`): `/version` and the OpenAPI documents from
//! the first member that answers; `/api`, `/apis`, `/apis/{group}` and the resource lists
//! (`/api/v1`, `/apis/{group}/{version}`) as what every answering member serves (the
//! intersection), so kubectl never asks a member for something it lacks.

use super::fanout::{Answer, Outcome};
use crate::status::Error;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The discovery documents this module merges, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Doc {
    /// `/version`, `/openapi/...`: the first answer.
    First,
    /// `/api`: `APIVersions`.
    Versions,
    /// `/apis`: `APIGroupList`.
    Groups,
    /// `/apis/{group}`: `APIGroup`.
    Group,
    /// `/api/v1`, `/apis/{group}/{version}`: `APIResourceList`.
    Resources,
}

/// Which discovery document `tail` (after `{base}/aggregate`) asks for, if any.
pub(crate) fn doc_of(tail: &str) -> Option<Doc> {
    let segs: Vec<&str> = tail
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Some(Doc::First),
        ["openapi", ..] => Some(Doc::First),
        ["api"] => Some(Doc::Versions),
        ["apis"] => Some(Doc::Groups),
        ["apis", _] => Some(Doc::Group),
        ["api", _] | ["apis", _, _] => Some(Doc::Resources),
        _ => None,
    }
}

fn oks(answers: Vec<Answer>) -> (Vec<(Value, String)>, Vec<String>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for a in answers {
        match a.outcome {
            Outcome::Http {
                status,
                body,
                content_type,
            } if (200..300).contains(&status) => match serde_json::from_slice::<Value>(&body) {
                Ok(v) => ok.push((v, content_type)),
                Err(_) => failed.push(format!("{}: not JSON", a.cluster.key)),
            },
            Outcome::Http { status, .. } => failed.push(format!("{}: {status}", a.cluster.key)),
            Outcome::Failed(e) => failed.push(format!("{}: {}", a.cluster.key, e.message)),
        }
    }
    (ok, failed)
}

fn names(v: &Value, list: &str, field: &str) -> BTreeSet<String> {
    v.get(list)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.get(field).and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Keeps in `first[list]` the entries whose `field` every other document also has.
fn intersect(mut first: Value, others: &[Value], list: &str, field: &str) -> Value {
    let mut keep = names(&first, list, field);
    for o in others {
        let theirs = names(o, list, field);
        keep.retain(|n| theirs.contains(n));
    }
    if let Some(Value::Array(items)) = first.get_mut(list) {
        items.retain(|i| {
            i.get(field)
                .and_then(Value::as_str)
                .is_some_and(|n| keep.contains(n))
        });
    }
    first
}

/// The merged document (and its media type), or a 502 naming every member when none
/// answered, or a 404 when no member serves it.
pub(crate) fn merge(doc: Doc, answers: Vec<Answer>) -> Result<(Value, String), Error> {
    let not_served = answers
        .iter()
        .all(|a| matches!(a.outcome, Outcome::Http { status: 404, .. }));
    let (mut ok, failed) = oks(answers);
    if ok.is_empty() {
        if not_served {
            return Err(Error::not_found(
                "no cluster serves this discovery document",
            ));
        }
        return Err(Error::bad_gateway(format!(
            "no cluster answered: {}",
            failed.join("; ")
        )));
    }
    let (first, content_type) = ok.remove(0);
    let others: Vec<Value> = ok.into_iter().map(|(v, _)| v).collect();
    let merged = match doc {
        Doc::First => first,
        Doc::Versions => {
            let versions = |v: &Value| -> BTreeSet<String> {
                v.get("versions")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut v = first;
            let mut keep = versions(&v);
            for o in &others {
                let theirs = versions(o);
                keep.retain(|n| theirs.contains(n));
            }
            v["versions"] = json!(keep.into_iter().collect::<Vec<_>>());
            v
        }
        Doc::Groups => {
            let mut v = intersect(first, &others, "groups", "name");
            // Within a group, the versions every member serves.
            if let Some(Value::Array(groups)) = v.get_mut("groups") {
                for g in groups.iter_mut() {
                    let name = g
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let theirs: Vec<Value> = others
                        .iter()
                        .filter_map(|o| {
                            o.get("groups")?
                                .as_array()?
                                .iter()
                                .find(|og| og.get("name").and_then(Value::as_str) == Some(&name))
                                .cloned()
                        })
                        .collect();
                    *g = intersect(g.clone(), &theirs, "versions", "groupVersion");
                }
            }
            v
        }
        Doc::Group => intersect(first, &others, "versions", "groupVersion"),
        Doc::Resources => intersect(first, &others, "resources", "name"),
    };
    Ok((merged, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_by_path() {
        assert_eq!(doc_of("/version"), Some(Doc::First));
        assert_eq!(doc_of("/openapi/v3/apis/apps/v1"), Some(Doc::First));
        assert_eq!(doc_of("/api"), Some(Doc::Versions));
        assert_eq!(doc_of("/apis"), Some(Doc::Groups));
        assert_eq!(doc_of("/apis/apps"), Some(Doc::Group));
        assert_eq!(doc_of("/api/v1"), Some(Doc::Resources));
        assert_eq!(doc_of("/apis/apps/v1"), Some(Doc::Resources));
        assert_eq!(doc_of("/api/v1/services"), None);
        assert_eq!(doc_of("/apis/apps/v1/deployments"), None);
    }

    #[test]
    fn intersection_keeps_what_all_serve() {
        let a = json!({"resources": [{"name": "pods"}, {"name": "services"}, {"name": "widgets"}]});
        let b = json!({"resources": [{"name": "services"}, {"name": "pods"}]});
        let merged = intersect(a, &[b], "resources", "name");
        assert_eq!(
            merged,
            json!({"resources": [{"name": "pods"}, {"name": "services"}]})
        );
    }
}
