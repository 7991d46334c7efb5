//! Everything TLS, in one place: PEM and base64 parsing (`pem`), the rustls client
//! configuration and verifiers for clusters ([`client`]), the server configurations of
//! kubeplex's listener and of the simulated clusters, from files or self-signed
//! (`listener`), the [`TlsError`] they fail with, and the descriptions of TLS and connection
//! failures that 502 messages carry ([`describe`]). One crypto provider for the whole
//! binary: ring.
//!
//! This module depends on nothing else of kubeplex: the cluster, upstream, app and
//! simulator layers call into it.

pub mod client;
pub mod describe;
mod error;
pub(crate) mod listener;
pub(crate) mod pem;

pub use client::TlsSettings;
pub use error::TlsError;

use rustls::crypto::CryptoProvider;
use std::sync::Arc;

/// The one crypto provider kubeplex uses (ring).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
