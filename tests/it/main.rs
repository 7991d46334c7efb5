//! The integration tests, in one binary (one link, one copy of the dependencies on disk):
//! each module starts the real app or binary on port 0 and talks to it over loopback.
//! Shared support lives in `common` (app, settings, recording upstream), `common_tls`
//! (generated certificates, HTTPS upstreams), `kubectl_support`, `support_ws` and
//! `backstage_backend_support` (Backstage's own Kubernetes backend, for differential tests).

mod backstage_backend_support;
mod common;
mod common_tls;
mod kubectl_support;
mod support_ws;

mod aggregate;
mod aggregate_cache;
mod aggregate_pages;
mod aggregate_stream;
mod aggregate_watch;
mod backstage_api;
mod backstage_backend_smoke;
mod backstage_client;
mod backstage_diff;
mod catalog;
mod client_logs;
mod config;
mod config_server_edge;
mod credentials;
mod deploy;
mod hardening;
mod identity;
mod in_cluster;
mod kubeconfig;
mod locate;
mod ops_cors;
mod ops_drain;
mod ops_metrics;
mod ops_readiness;
mod ops_status;
mod plugin_proxy;
mod proxy_audit;
mod proxy_forward;
mod proxy_h2;
mod proxy_kubectl;
mod proxy_routes;
mod proxy_smuggling;
mod proxy_streaming;
mod reload;
mod sim_api;
mod sim_backends;
mod sim_discovery;
mod sim_kinds;
mod sim_kubectl;
mod sim_kubectl_kinds;
mod sim_pods;
mod sim_python_client;
mod sim_tls;
mod tls;
mod tls_proxy;
mod upstream_h2;
mod upstream_peers;
mod ws;
mod ws_kubectl;
