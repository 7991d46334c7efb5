//! The access policy (SPEC §5): ordered rules of subjects × clusters × namespaces × verbs,
//! each `allow` or `deny`; the first rule that matches decides, and nothing matching is a
//! deny. Subjects are globs over the token's `sub` and each of its `ent` claims; clusters
//! globs over a cluster's name and its key; namespaces globs over the request's namespace
//! ("" for cluster-scoped and all-namespace requests, which only `*`-like globs match).

use super::Identity;
use crate::cluster::Cluster;
use crate::config::PolicyRule;
use globset::{Glob, GlobMatcher};

/// A rule's glob list: matches when any glob does.
struct Globs(Vec<Pattern>);

/// One glob, matched without globset's regex when its shape allows: policies are mostly
/// names, `*`, and a name with a `*` at one end (each rule is checked on every request).
enum Pattern {
    /// `*`: anything.
    Any,
    /// No glob characters: this string.
    Exact(String),
    /// `<prefix>*`.
    Prefix(String),
    /// `*<suffix>`.
    Suffix(String),
    /// Anything else, as globset matches it.
    Glob(GlobMatcher),
}

impl Pattern {
    fn new(glob: &str) -> Option<Self> {
        let special = |c: char| matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\');
        let plain = |s: &str| !s.contains(special);
        Some(if glob == "*" {
            Pattern::Any
        } else if plain(glob) {
            Pattern::Exact(glob.to_string())
        } else if let Some(p) = glob.strip_suffix('*').filter(|p| plain(p)) {
            Pattern::Prefix(p.to_string())
        } else if let Some(p) = glob.strip_prefix('*').filter(|p| plain(p)) {
            Pattern::Suffix(p.to_string())
        } else {
            Pattern::Glob(Glob::new(glob).ok()?.compile_matcher())
        })
    }

    fn is_match(&self, s: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => s == e,
            Pattern::Prefix(p) => s.starts_with(p.as_str()),
            Pattern::Suffix(p) => s.ends_with(p.as_str()),
            Pattern::Glob(g) => g.is_match(s),
        }
    }
}

impl Globs {
    /// Compiles `globs`; the configuration checked them, so a bad one matches nothing.
    fn new(globs: &[String]) -> Self {
        Globs(globs.iter().filter_map(|g| Pattern::new(g)).collect())
    }

    fn any(&self, s: &str) -> bool {
        self.0.iter().any(|g| g.is_match(s))
    }
}

struct Rule {
    subjects: Globs,
    clusters: Globs,
    namespaces: Globs,
    verbs: Vec<String>,
    allow: bool,
}

/// The compiled policy.
pub(crate) struct Policy {
    rules: Vec<Rule>,
}

/// What a request asks to do, for [`Policy::allows`].
pub(crate) struct Access<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The namespace, "" when cluster-scoped or across namespaces.
    pub namespace: &'a str,
    /// The verb.
    pub verb: &'a str,
}

impl Policy {
    /// Compiles the configured rules.
    pub(crate) fn new(rules: &[PolicyRule]) -> Self {
        Policy {
            rules: rules
                .iter()
                .map(|r| Rule {
                    subjects: Globs::new(&r.subjects),
                    clusters: Globs::new(&r.clusters),
                    namespaces: Globs::new(&r.namespaces),
                    verbs: r.verbs.clone(),
                    allow: r.allow,
                })
                .collect(),
        }
    }

    /// Whether `who` may do `access`: the first matching rule's effect, else no.
    pub(crate) fn allows(&self, who: &Identity, access: &Access<'_>) -> bool {
        for r in &self.rules {
            let subject =
                r.subjects.any(&who.subject) || who.groups.iter().any(|g| r.subjects.any(g));
            if !subject {
                continue;
            }
            let cluster = r.clusters.any(&access.cluster.spec.name)
                || r.clusters.any(access.cluster.key.as_str());
            if !cluster || !r.namespaces.any(access.namespace) {
                continue;
            }
            if !r.verbs.iter().any(|v| v == "*" || v == access.verb) {
                continue;
            }
            return r.allow;
        }
        false
    }

    /// Whether `who` may use `cluster` at all: an allow rule for it comes before any rule
    /// denying it everything. What `GET {base}/clusters` and the fan-outs use to leave
    /// clusters out.
    pub(crate) fn may_use(&self, who: &Identity, cluster: &Cluster) -> bool {
        for r in &self.rules {
            let subject =
                r.subjects.any(&who.subject) || who.groups.iter().any(|g| r.subjects.any(g));
            let applies = subject
                && (r.clusters.any(&cluster.spec.name) || r.clusters.any(cluster.key.as_str()));
            if !applies {
                continue;
            }
            if r.allow {
                return true;
            }
            // A deny of everything on this cluster ends the search; a narrower deny leaves
            // room for a later allow.
            if r.verbs.iter().any(|v| v == "*")
                && r.namespaces.any("")
                && r.namespaces.any("any-namespace")
            {
                return false;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_patterns_match_as_globset_does() {
        let globs = [
            "*",
            "prod",
            "user:default/ci-*",
            "*:prod",
            "team-b*",
            "*-system",
            "secret-*",
            "",
            "a*b",
            "**",
            "user:?",
            "[ab]c",
            "{x,y}*",
            "dev\\*",
        ];
        let names = [
            "",
            "prod",
            "prod2",
            "staging:prod",
            "user:default/ci-bot",
            "user:default/ci-",
            "user:default/cI-bot",
            "team-b",
            "team-b/x",
            "kube-system",
            "secret-",
            "a/b",
            "ab",
            "user:x",
            "ac",
            "xz",
            "dev*",
            "devx",
            "line\nbreak",
        ];
        for glob in globs {
            let fast = Pattern::new(glob).unwrap();
            let reference = Glob::new(glob).unwrap().compile_matcher();
            for name in names {
                assert_eq!(
                    fast.is_match(name),
                    reference.is_match(name),
                    "{glob:?} against {name:?}"
                );
            }
        }
        assert!(matches!(Pattern::new("*"), Some(Pattern::Any)));
        assert!(matches!(Pattern::new("prod"), Some(Pattern::Exact(_))));
        assert!(matches!(Pattern::new("team-b*"), Some(Pattern::Prefix(_))));
        assert!(matches!(Pattern::new("*-system"), Some(Pattern::Suffix(_))));
        assert!(matches!(Pattern::new("a*b"), Some(Pattern::Glob(_))));
    }
}
