//! Typed reading of the configuration tree with problem collection: every reader returns
//! `None` after recording what is wrong (file, key path, message), so validation goes on
//! and reports every problem at once. Other modules (aggregate, plugin proxy) can use
//! these readers on their own `kubeplex.*` blocks from [`super::Settings::sections`].

use super::tree::{join, Node, Value};
use super::Problem;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The problems found so far.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem about `path`, set in the file `node` came from.
    pub(crate) fn at(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.0.push(Problem {
            file: node.origin.name.clone(),
            key: path.to_string(),
            message: message.into(),
        });
    }
}

/// `expected X, got Y`, unless the value was already reported as invalid.
fn wrong_type(p: &mut Problems, node: &Node, path: &str, expected: &str) {
    if node.value != Value::Invalid {
        p.at(
            node,
            path,
            format!("expected {expected}, got {}", node.value.kind()),
        );
    }
}

/// Reads a string; numbers and booleans are taken as their text.
pub(crate) fn string(node: &Node, path: &str, p: &mut Problems) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => {
            wrong_type(p, node, path, "a string");
            None
        }
    }
}

/// Reads a boolean (`true`/`false`, also as strings after `${VAR}` substitution).
pub(crate) fn boolean(node: &Node, path: &str, p: &mut Problems) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        Value::Str(s) if s == "true" => Some(true),
        Value::Str(s) if s == "false" => Some(false),
        _ => {
            wrong_type(p, node, path, "true or false");
            None
        }
    }
}

/// Reads a non-negative integer (also as a string after `${VAR}` substitution).
pub(crate) fn uint(node: &Node, path: &str, p: &mut Problems) -> Option<u64> {
    let parsed = match &node.value {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::Str(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    if parsed.is_none() {
        match &node.value {
            Value::Int(_) | Value::Str(_) => p.at(
                node,
                path,
                format!("not a non-negative integer: {}", show(node)),
            ),
            _ => wrong_type(p, node, path, "an integer"),
        }
    }
    parsed
}

/// Reads a duration written as `500ms`, `5s`, `2m`, `1h 30m`.
pub(crate) fn duration(node: &Node, path: &str, p: &mut Problems) -> Option<Duration> {
    match &node.value {
        Value::Str(s) => match humantime::parse_duration(s.trim()) {
            Ok(d) => Some(d),
            Err(_) => {
                p.at(
                    node,
                    path,
                    format!("not a duration: {s:?} (write e.g. 500ms, 5s, 2m)"),
                );
                None
            }
        },
        Value::Int(_) | Value::Float(_) => {
            p.at(
                node,
                path,
                format!(
                    "not a duration: {} (add a unit, e.g. 500ms, 5s, 2m)",
                    show(node)
                ),
            );
            None
        }
        _ => {
            wrong_type(p, node, path, "a duration such as 5s");
            None
        }
    }
}

/// Reads a list of strings.
pub(crate) fn strings(node: &Node, path: &str, p: &mut Problems) -> Option<Vec<String>> {
    let items = list(node, path, p)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (item_path, item) in items {
        match string(item, &item_path, p) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Reads a list, giving each item with its key path (`path[i]`).
pub(crate) fn list<'a>(
    node: &'a Node,
    path: &str,
    p: &mut Problems,
) -> Option<Vec<(String, &'a Node)>> {
    match &node.value {
        Value::Seq(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("{path}[{i}]"), n))
                .collect(),
        ),
        _ => {
            wrong_type(p, node, path, "a list");
            None
        }
    }
}

/// Reads a file path: `~/` is the home directory, a relative path resolves against the
/// folder of the file that set it.
pub(crate) fn file_path(
    node: &Node,
    path: &str,
    home: Option<&str>,
    p: &mut Problems,
) -> Option<PathBuf> {
    let s = string(node, path, p)?;
    if s.is_empty() {
        p.at(node, path, "must not be empty");
        return None;
    }
    Some(resolve_path(&s, node.origin.dir.as_deref(), home))
}

/// Resolves `s` against `dir` (and `~/` against `home`).
pub(crate) fn resolve_path(s: &str, dir: Option<&Path>, home: Option<&str>) -> PathBuf {
    if let (Some(rest), Some(home)) = (s.strip_prefix("~/"), home) {
        return Path::new(home).join(rest);
    }
    let p = Path::new(s);
    match dir {
        Some(d) if p.is_relative() => d.join(p),
        _ => p.to_path_buf(),
    }
}

/// A short rendering of a scalar for messages (strings quoted).
pub(crate) fn show(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.kind().to_string(),
    }
}

/// A map being read: its node, its key path and the keys it knows.
pub(crate) struct Obj<'a> {
    /// The map node.
    pub node: &'a Node,
    /// Its key path.
    pub path: String,
    entries: &'a [(String, Node)],
}

impl<'a> Obj<'a> {
    /// Reads `node` as a map; `null` is an empty map.
    pub(crate) fn new(node: &'a Node, path: &str, p: &mut Problems) -> Option<Obj<'a>> {
        match &node.value {
            Value::Map(m) => Some(Obj {
                node,
                path: path.to_string(),
                entries: m,
            }),
            Value::Null => Some(Obj {
                node,
                path: path.to_string(),
                entries: &[],
            }),
            _ => {
                wrong_type(p, node, path, "a map");
                None
            }
        }
    }

    /// The key path of `key` in this map.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of `key`, `None` when absent or null.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| v.value != Value::Null)
    }

    /// Whether `key` is set (even to a value already reported as invalid).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Records `message` about `key` (in the file that set it, else this map's file).
    pub(crate) fn problem(&self, key: &str, message: impl Into<String>, p: &mut Problems) {
        let node = self.get(key).unwrap_or(self.node);
        p.at(node, &self.path_of(key), message);
    }

    /// An optional string.
    pub(crate) fn string(&self, key: &str, p: &mut Problems) -> Option<String> {
        self.get(key).and_then(|n| string(n, &self.path_of(key), p))
    }

    /// A required, non-empty string; records `required` when absent.
    pub(crate) fn required_string(&self, key: &str, p: &mut Problems) -> Option<String> {
        match self.get(key) {
            None => {
                self.problem(key, "required", p);
                None
            }
            Some(n) => {
                let s = string(n, &self.path_of(key), p)?;
                if s.is_empty() {
                    self.problem(key, "must not be empty", p);
                    return None;
                }
                Some(s)
            }
        }
    }

    /// An optional boolean.
    pub(crate) fn boolean(&self, key: &str, p: &mut Problems) -> Option<bool> {
        self.get(key)
            .and_then(|n| boolean(n, &self.path_of(key), p))
    }

    /// An optional non-negative integer.
    pub(crate) fn uint(&self, key: &str, p: &mut Problems) -> Option<u64> {
        self.get(key).and_then(|n| uint(n, &self.path_of(key), p))
    }

    /// An optional duration.
    pub(crate) fn duration(&self, key: &str, p: &mut Problems) -> Option<Duration> {
        self.get(key)
            .and_then(|n| duration(n, &self.path_of(key), p))
    }

    /// An optional list of strings.
    pub(crate) fn strings(&self, key: &str, p: &mut Problems) -> Option<Vec<String>> {
        self.get(key)
            .and_then(|n| strings(n, &self.path_of(key), p))
    }

    /// An optional list.
    pub(crate) fn list(&self, key: &str, p: &mut Problems) -> Option<Vec<(String, &'a Node)>> {
        self.get(key).and_then(|n| list(n, &self.path_of(key), p))
    }

    /// An optional file path, resolved against its file's folder.
    pub(crate) fn file_path(
        &self,
        key: &str,
        home: Option<&str>,
        p: &mut Problems,
    ) -> Option<PathBuf> {
        self.get(key)
            .and_then(|n| file_path(n, &self.path_of(key), home, p))
    }

    /// An optional nested map.
    pub(crate) fn obj(&self, key: &str, p: &mut Problems) -> Option<Obj<'a>> {
        self.get(key)
            .and_then(|n| Obj::new(n, &self.path_of(key), p))
    }

    /// An optional map of strings to strings.
    pub(crate) fn string_map(
        &self,
        key: &str,
        p: &mut Problems,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let obj = self.obj(key, p)?;
        let mut out = std::collections::BTreeMap::new();
        for (k, v) in obj.entries {
            if let Some(s) = string(v, &obj.path_of(k), p) {
                out.insert(k.clone(), s);
            }
        }
        Some(out)
    }

    /// Records `unknown key` for every key not in `known`, with a "did you mean" when a
    /// known key is a few edits away (a typo), else the list of known keys.
    pub(crate) fn deny_unknown(&self, known: &[&str], p: &mut Problems) {
        self.deny_unknown_except(known, &[], p);
    }

    /// [`Obj::deny_unknown`] that also accepts (and ignores) the keys in `ignored`
    /// (another program's keys, e.g. Backstage's): suggested for a typo, not listed.
    pub(crate) fn deny_unknown_except(&self, known: &[&str], ignored: &[&str], p: &mut Problems) {
        for (k, v) in self.entries {
            if known.contains(&k.as_str()) || ignored.contains(&k.as_str()) {
                continue;
            }
            let candidates: Vec<&str> = known.iter().chain(ignored).copied().collect();
            let message = match did_you_mean(k, &candidates) {
                Some(m) => format!("unknown key; did you mean {m}?"),
                None => format!("unknown key (expected one of: {})", known.join(", ")),
            };
            p.at(v, &self.path_of(k), message);
        }
    }
}

/// The candidate closest to `word` if it is close enough to be a typo: case-insensitive
/// edit distance at most a quarter of the word's length (at least 1, at most 3).
pub(crate) fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.chars().count() / 4).clamp(1, 3);
    let w = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance with adjacent transpositions (optimal string alignment): insertions,
/// deletions, substitutions and swaps of two neighbouring characters each cost 1.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::{did_you_mean, edit_distance};

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("mdoe", "mode"), 1);
        let keys = ["clusterLocatorMethods", "serviceLocatorMethod", "listen"];
        assert_eq!(
            did_you_mean("clusterLocatorMethod", &keys),
            Some("clusterLocatorMethods")
        );
        assert_eq!(did_you_mean("lisen", &keys), Some("listen"));
        assert_eq!(
            did_you_mean("CLUSTERLOCATORMETHODS", &keys),
            Some("clusterLocatorMethods")
        );
        assert_eq!(did_you_mean("colour", &keys), None);
    }
}
