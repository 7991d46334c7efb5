//! The configuration tree before validation: YAML values that remember which source they
//! came from, so that every problem can name its file even after several files were merged.
//!
//! Each source is parsed with serde_yaml (anchors, aliases and `<<` merge keys resolved),
//! its strings get `${VAR}` substituted (`substitute`), Backstage's `$env`, `$file` and
//! `$include` maps are resolved (`super::substitute`), and the sources are deep-merged in
//! order (`merge`): maps merge key by key, everything else (scalars, lists) is replaced by
//! the later source, as Backstage does.

use super::Problem;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a value came from: the name used in messages and the folder that relative paths
/// resolve against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file path as given, `<embedded default>`, or `environment variable X`.
    pub name: String,
    /// Folder for relative paths; `None` resolves against the current directory.
    pub dir: Option<PathBuf>,
    /// The embedded default, whose `config/seed.yaml` is the seed compiled into the binary.
    pub embedded: bool,
}

/// A value with its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was set.
    pub origin: Arc<Origin>,
}

/// A YAML value; maps keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string (after `${VAR}` substitution).
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// A map with string keys, in source order.
    Map(Vec<(String, Node)>),
    /// A value that could not be read (already reported); readers skip it silently.
    Invalid,
}

impl Value {
    /// What this is, for "expected X, got Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
            Value::Invalid => "an invalid value",
        }
    }
}

impl Node {
    /// An empty map from `origin`.
    pub(crate) fn empty_map(origin: Arc<Origin>) -> Node {
        Node {
            value: Value::Map(Vec::new()),
            origin,
        }
    }

    /// The entry `key` of a map node.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The entry `key` of a map node, created as an empty map (or replacing a non-map) if
    /// needed; used to apply environment overrides.
    pub(crate) fn entry_map(&mut self, key: &str, origin: &Arc<Origin>) -> &mut Node {
        if !matches!(self.value, Value::Map(_)) {
            self.value = Value::Map(Vec::new());
        }
        let Value::Map(m) = &mut self.value else {
            unreachable!("just made a map")
        };
        let idx = match m.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                m.push((key.to_string(), Node::empty_map(origin.clone())));
                m.len() - 1
            }
        };
        let node = &mut m[idx].1;
        if !matches!(node.value, Value::Map(_)) {
            *node = Node::empty_map(origin.clone());
        }
        node
    }

    /// Sets `key` of a map node to `value`, replacing any previous value.
    pub(crate) fn set(&mut self, key: &str, value: Node) {
        if !matches!(self.value, Value::Map(_)) {
            self.value = Value::Map(Vec::new());
        }
        let Value::Map(m) = &mut self.value else {
            unreachable!("just made a map")
        };
        match m.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => m.push((key.to_string(), value)),
        }
    }
}

/// Looks up environment variables for `${VAR}` substitution and `KUBEPLEX_` overrides.
pub type Env = HashMap<String, String>;

/// Turns YAML values into [`Node`]s, remembering the files `$file` and `$include` read.
pub(crate) struct Converter<'a> {
    /// The environment for `${VAR}` and `$env`.
    pub env: &'a Env,
    /// Where problems go.
    pub problems: &'a mut Vec<Problem>,
    /// The files read by `$file` and `$include`, in order (for reload to watch).
    pub files: Vec<PathBuf>,
    /// How many `$include`s deep the value being converted is.
    pub(super) depth: usize,
}

impl<'a> Converter<'a> {
    /// A converter with no file read yet.
    pub(crate) fn new(env: &'a Env, problems: &'a mut Vec<Problem>) -> Self {
        Converter {
            env,
            problems,
            files: Vec::new(),
            depth: 0,
        }
    }

    /// Records a problem about `path` in the file of `origin`.
    pub(super) fn problem(&mut self, origin: &Origin, path: &str, message: String) {
        self.problems.push(Problem {
            file: origin.name.clone(),
            key: path.to_string(),
            message,
        });
    }

    /// Converts `value`, found at key path `path` of the file `origin`.
    pub(crate) fn node(
        &mut self,
        value: serde_yaml::Value,
        origin: &Arc<Origin>,
        path: &str,
    ) -> Node {
        let value = match value {
            serde_yaml::Value::Null => Value::Null,
            serde_yaml::Value::Bool(b) => Value::Bool(b),
            serde_yaml::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_yaml::Value::String(s) => match substitute(&s, self.env) {
                Ok(s) => Value::Str(s),
                Err(message) => {
                    self.problem(origin, path, message);
                    Value::Invalid
                }
            },
            serde_yaml::Value::Sequence(items) => Value::Seq(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.node(v, origin, &format!("{path}[{i}]")))
                    .collect(),
            ),
            serde_yaml::Value::Mapping(map) => {
                if super::substitute::is_directive(&map) {
                    return super::substitute::resolve(self, map, origin, path);
                }
                let mut out: Vec<(String, Node)> = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let key = match k {
                        serde_yaml::Value::String(s) => s,
                        serde_yaml::Value::Bool(b) => b.to_string(),
                        serde_yaml::Value::Number(n) => n.to_string(),
                        other => {
                            self.problem(
                                origin,
                                path,
                                format!(
                                    "map keys must be strings, got {}",
                                    describe_yaml_kind(&other)
                                ),
                            );
                            continue;
                        }
                    };
                    let child_path = join(path, &key);
                    let node = self.node(v, origin, &child_path);
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, old)) => *old = node,
                        None => out.push((key, node)),
                    }
                }
                Value::Map(out)
            }
            serde_yaml::Value::Tagged(t) => {
                self.problem(
                    origin,
                    path,
                    format!("YAML tags are not supported (found {})", t.tag),
                );
                Value::Invalid
            }
        };
        Node {
            value,
            origin: origin.clone(),
        }
    }
}

fn describe_yaml_kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
        _ => "a scalar",
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Substitutes `${VAR}` (and `${VAR:-default}`) from `env`; `$${` is a literal `${`.
/// A variable that is not set (and has no default) is an error naming it.
pub(crate) fn substitute(s: &str, env: &Env) -> Result<String, String> {
    if !s.contains("${") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut missing = Vec::new();
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                // The value is not echoed: it may be a secret.
                return Err("unterminated ${ (missing })".into());
            };
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n.trim(), Some(d)),
                None => (expr.trim(), None),
            };
            if name.is_empty() {
                return Err("empty variable name in ${}".into());
            }
            match (env.get(name), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => missing.push(name.to_string()),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    match missing.as_slice() {
        [] => Ok(out),
        [one] => Err(format!("environment variable {one} is not set")),
        many => Err(format!(
            "environment variables {} are not set",
            many.join(", ")
        )),
    }
}

/// Deep-merges `later` into `base`: maps merge key by key, anything else is replaced.
pub(crate) fn merge(base: &mut Node, later: Node) {
    match (&mut base.value, later.value) {
        (Value::Map(b), Value::Map(l)) => {
            base.origin = later.origin;
            for (k, v) in l {
                match b.iter_mut().find(|(bk, _)| *bk == k) {
                    Some((_, bv)) => merge(bv, v),
                    None => b.push((k, v)),
                }
            }
        }
        (_, value) => {
            *base = Node {
                value,
                origin: later.origin,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Converts a parsed YAML document into a [`Node`] tree through a [`Converter`].
    fn from_yaml(
        value: serde_yaml::Value,
        origin: &Arc<Origin>,
        env: &Env,
        path: &str,
        problems: &mut Vec<Problem>,
    ) -> Node {
        Converter::new(env, problems).node(value, origin, path)
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitution() {
        let e = env(&[("A", "1"), ("B", "two")]);
        assert_eq!(substitute("x${A}y${B}", &e).unwrap(), "x1ytwo");
        assert_eq!(substitute("$${A}", &e).unwrap(), "${A}");
        assert_eq!(substitute("${C:-dflt}", &e).unwrap(), "dflt");
        assert_eq!(substitute("cost $5", &e).unwrap(), "cost $5");
        assert_eq!(
            substitute("${NOPE}", &e).unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert_eq!(
            substitute("s3cret${A", &e).unwrap_err(),
            "unterminated ${ (missing })"
        );
    }

    #[test]
    fn merge_maps_replace_lists() {
        let o1 = Arc::new(Origin {
            name: "a".into(),
            dir: None,
            embedded: false,
        });
        let o2 = Arc::new(Origin {
            name: "b".into(),
            dir: None,
            embedded: false,
        });
        let mut p = Vec::new();
        let mut a = from_yaml(
            serde_yaml::from_str("x: {y: 1, z: 2}\nl: [1, 2]").unwrap(),
            &o1,
            &Env::new(),
            "",
            &mut p,
        );
        let b = from_yaml(
            serde_yaml::from_str("x: {y: 3}\nl: [4]").unwrap(),
            &o2,
            &Env::new(),
            "",
            &mut p,
        );
        merge(&mut a, b);
        let x = a.get("x").unwrap();
        assert_eq!(x.get("y").unwrap().value, Value::Int(3));
        assert_eq!(x.get("y").unwrap().origin.name, "b");
        assert_eq!(x.get("z").unwrap().origin.name, "a");
        let Value::Seq(l) = &a.get("l").unwrap().value else {
            panic!()
        };
        assert_eq!(l.len(), 1);
    }
}
