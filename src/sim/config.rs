//! What a simulated cluster is configured with: its name, seed, accepted tokens, injected
//! faults. The simulator owns these types; kubeplex's configuration readers (`simulated`
//! locator) and the `kubeplex sim` command build them.

use std::path::PathBuf;
use std::time::Duration;

/// The seed shipped in `config/seed.yaml`, embedded for the default configuration.
pub const DEFAULT_SEED: &str = include_str!("../../config/seed.yaml");

/// A simulated cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimClusterConfig {
    pub name: String,
    /// Optional YAML seed of Namespace and Service objects.
    pub seed: Option<SeedSource>,
    /// Accepted bearer tokens; empty allows anonymous.
    pub tokens: Vec<SimToken>,
    /// Faults to inject (tests).
    pub faults: SimFaults,
}

impl SimClusterConfig {
    /// A simulated cluster named `name`, seeded from `seed`, accepting exactly `tokens`
    /// (none: anonymous), without limits or faults.
    pub fn new<T: Into<String>>(
        name: impl Into<String>,
        seed: Option<SeedSource>,
        tokens: impl IntoIterator<Item = T>,
    ) -> Self {
        SimClusterConfig {
            name: name.into(),
            seed,
            tokens: tokens
                .into_iter()
                .map(|t| SimToken {
                    token: t.into(),
                    ..SimToken::default()
                })
                .collect(),
            ..SimClusterConfig::default()
        }
    }
}

/// Where a simulated cluster's seed comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedSource {
    /// A YAML file (several documents, or a `kind: List`).
    File(PathBuf),
    /// YAML text embedded in the binary (the default config's `config/seed.yaml`).
    Text {
        /// Name for messages.
        name: String,
        /// The YAML.
        text: String,
    },
}

/// An accepted token of a simulated cluster, optionally limited. Its `Debug` output does
/// not show the token.
#[derive(Clone, PartialEq, Default)]
pub struct SimToken {
    pub token: String,
    /// Namespaces this token may touch; `None` means all.
    pub namespaces: Option<Vec<String>>,
    /// Verbs (get, list, watch, create, update, patch, delete, proxy, exec); `None` means all.
    pub verbs: Option<Vec<String>>,
}

impl std::fmt::Debug for SimToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimToken")
            .field("token", &"<redacted>")
            .field("namespaces", &self.namespaces)
            .field("verbs", &self.verbs)
            .finish()
    }
}

/// Faults a simulated cluster injects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimFaults {
    /// Added before every response head.
    pub latency: Option<Duration>,
    /// Fail every Nth request with `fail_code`.
    pub fail_every: Option<u64>,
    /// Code for `fail_every`, default 500.
    pub fail_code: Option<u16>,
    /// Close each watch after this many events.
    pub close_watch_after: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t = SimToken {
            token: "canary-secret".into(),
            ..SimToken::default()
        };
        assert!(!format!("{t:?}").contains("canary-secret"));
    }
}
