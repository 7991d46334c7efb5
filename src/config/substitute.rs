//! Backstage's configuration substitutions besides `${VAR}`: a map whose only key is
//!
//! - `$env: VAR` becomes the value of the environment variable `VAR`;
//! - `$file: path` becomes the text of the file, as is (not trimmed, as Backstage does);
//! - `$include: path[#a.b.c]` becomes the YAML or JSON document in the file (chosen by its
//!   extension: `.yaml`, `.yml`, `.json`), or the value at the key path after `#`, as a
//!   subtree whose own relative paths (and own `$file`/`$include`) resolve against the
//!   included file's folder and whose problems name the included file.
//!
//! As in Backstage, a relative path resolves against the folder of the file that holds the
//! substitution, `${VAR}` is substituted in the value first, and a map with any key that
//! starts with `$` is a substitution: it must have that one key, and the key must be one of
//! the three. Unlike Backstage, a variable that is not set is an error (as `${VAR}` is in
//! kubeplex) rather than an absent value. Messages name the file and key path that hold the
//! substitution, and never the value read (it may be a secret).

use super::tree::{substitute, Converter, Node, Origin, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many `$include`s deep an included document may itself include (a guard against an
/// include cycle).
pub(crate) const MAX_INCLUDE_DEPTH: usize = 16;

/// The substitution keys, in the order messages list them.
pub(crate) const KEYS: &[&str] = &["$env", "$file", "$include"];

/// Whether `map` is a substitution: it has a string key starting with `$`.
pub(crate) fn is_directive(map: &serde_yaml::Mapping) -> bool {
    map.keys()
        .any(|k| matches!(k, serde_yaml::Value::String(s) if s.starts_with('$')))
}

/// Resolves the substitution `map` found at `path` of the file `origin`; a problem leaves
/// [`Value::Invalid`] in its place.
pub(crate) fn resolve(
    conv: &mut Converter<'_>,
    map: serde_yaml::Mapping,
    origin: &Arc<Origin>,
    path: &str,
) -> Node {
    let value = match resolve_value(conv, map, origin, path) {
        Ok(node) => return node,
        Err(message) => {
            conv.problem(origin, path, message);
            Value::Invalid
        }
    };
    Node {
        value,
        origin: origin.clone(),
    }
}

fn resolve_value(
    conv: &mut Converter<'_>,
    map: serde_yaml::Mapping,
    origin: &Arc<Origin>,
    path: &str,
) -> Result<Node, String> {
    let key = map
        .keys()
        .find_map(|k| match k {
            serde_yaml::Value::String(s) if s.starts_with('$') => Some(s.clone()),
            _ => None,
        })
        .expect("is_directive checked");
    if map.len() != 1 {
        return Err(format!(
            "{key} must be the only key of its map (found {} keys)",
            map.len()
        ));
    }
    if !KEYS.contains(&key.as_str()) {
        return Err(format!(
            "unknown substitution {key} (expected {})",
            KEYS.join(", ")
        ));
    }
    let raw = match map.into_iter().next().map(|(_, v)| v) {
        Some(serde_yaml::Value::String(s)) => s,
        Some(other) => return Err(format!("{key}: expected a string, got {}", kind(&other))),
        None => unreachable!("one key"),
    };
    let arg = substitute(&raw, conv.env).map_err(|m| format!("{key}: {m}"))?;
    if arg.is_empty() {
        return Err(format!("{key}: must not be empty"));
    }
    let str_node = |s: String| Node {
        value: Value::Str(s),
        origin: origin.clone(),
    };
    match key.as_str() {
        "$env" => match conv.env.get(&arg) {
            Some(v) => Ok(str_node(v.clone())),
            None => Err(format!("$env: environment variable {arg} is not set")),
        },
        "$file" => {
            let file = relative_to(origin, &arg);
            conv.files.push(file.clone());
            match std::fs::read_to_string(&file) {
                Ok(text) => Ok(str_node(text)),
                Err(e) => Err(format!("$file: cannot read {}: {e}", file.display())),
            }
        }
        _ => include(conv, &arg, origin, path),
    }
}

/// `$include: file[#key.path]`.
fn include(
    conv: &mut Converter<'_>,
    arg: &str,
    origin: &Arc<Origin>,
    path: &str,
) -> Result<Node, String> {
    let (file_part, fragment) = match arg.split_once('#') {
        Some((f, k)) => (f, k),
        None => (arg, ""),
    };
    let file = relative_to(origin, file_part);
    let shown = file.display().to_string();
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !matches!(ext.as_str(), "yaml" | "yml" | "json") {
        return Err(format!(
            "$include: cannot include {shown}: no configuration parser for it (the name must end in .yaml, .yml or .json)"
        ));
    }
    if conv.depth >= MAX_INCLUDE_DEPTH {
        return Err(format!(
            "$include: {shown}: includes nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
        ));
    }
    conv.files.push(file.clone());
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("$include: cannot read {shown}: {e}"))?;
    let mut doc: serde_yaml::Value = if ext == "json" {
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("$include: invalid JSON in {shown}: {e}"))?;
        serde_yaml::to_value(json).map_err(|e| format!("$include: invalid JSON in {shown}: {e}"))?
    } else {
        serde_yaml::from_str(&text)
            .map_err(|e| format!("$include: invalid YAML in {shown}: {e}"))?
    };
    doc.apply_merge()
        .map_err(|e| format!("$include: invalid YAML merge key in {shown}: {e}"))?;
    if !fragment.is_empty() {
        for part in fragment.split('.') {
            doc = match doc {
                serde_yaml::Value::Mapping(mut m) => m.remove(part),
                _ => None,
            }
            .ok_or_else(|| format!("$include: key path {fragment:?} not found in {shown}"))?;
        }
    }
    let included = Arc::new(Origin {
        name: shown,
        dir: file.parent().map(Path::to_path_buf),
        embedded: false,
    });
    conv.depth += 1;
    let node = conv.node(doc, &included, path);
    conv.depth -= 1;
    Ok(node)
}

/// `s` resolved against the folder of the file `origin` (the current directory when it has
/// none).
fn relative_to(origin: &Origin, s: &str) -> PathBuf {
    let p = Path::new(s);
    match &origin.dir {
        Some(d) if p.is_relative() => d.join(p),
        _ => p.to_path_buf(),
    }
}

fn kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}
