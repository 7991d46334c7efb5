//! The proxy routes: choose a cluster, filter headers, apply the credential, forward
//! (streamed) or tunnel an upgrade.
