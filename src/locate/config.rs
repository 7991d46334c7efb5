//! The `config` locator: clusters listed in the configuration, with Backstage's fields.
//! TLS material is read here (base64 decoded, files read) so that a cluster's client
//! configuration is built from bytes; token files are read per request by the credential
//! code, since projected tokens rotate.

use super::LocateError as Error;
use crate::cluster::{ClusterSpec, ServerCredential};
use crate::config::ClusterConfig;
use crate::tls::pem::decode_base64;
use crate::tls::TlsSettings;
use std::path::Path;

/// Turns the configured clusters into specs, in order.
pub(crate) fn locate(locator: &str, clusters: &[ClusterConfig]) -> Result<Vec<ClusterSpec>, Error> {
    clusters.iter().map(|c| spec(locator, c)).collect()
}

fn fail(locator: &str, name: &str, what: String) -> Error {
    Error::Cluster {
        locator: locator.to_owned(),
        cluster: name.to_owned(),
        message: what,
    }
}

fn read(locator: &str, name: &str, field: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        fail(
            locator,
            name,
            format!("cannot read {field} {}: {e}", path.display()),
        )
    })
}

fn decode(locator: &str, name: &str, field: &str, data: &str) -> Result<Vec<u8>, Error> {
    decode_base64(data).map_err(|e| fail(locator, name, format!("{field}: {e}")))
}

/// Builds one cluster's spec.
pub(crate) fn spec(locator: &str, c: &ClusterConfig) -> Result<ClusterSpec, Error> {
    let name = c.name.as_str();
    let in_cluster = c.auth_provider.as_deref() == Some("serviceAccount");
    let url_text = if c.url.is_empty() && in_cluster {
        super::in_cluster::url().ok_or_else(|| {
            fail(
                locator,
                name,
                "no url, and kubeplex is not running in a pod \
                 (KUBERNETES_SERVICE_HOST is not set)"
                    .into(),
            )
        })?
    } else {
        c.url.clone()
    };
    let url = crate::config::locators::check_url(&url_text)
        .map_err(|e| fail(locator, name, format!("url: {e}")))?;
    let credential = match (&c.service_account_token, &c.token_file) {
        (Some(t), _) => ServerCredential::token(t.expose()),
        (None, Some(f)) => ServerCredential::TokenFile(f.clone()),
        (None, None) => ServerCredential::None,
    };
    let ca_pem = match (&c.ca_data, &c.ca_file) {
        (Some(d), _) => Some(decode(locator, name, "caData", d)?),
        (None, Some(f)) => Some(read(locator, name, "caFile", f)?),
        (None, None) => None,
    };
    let client_cert_pem = match (&c.client_cert_data, &c.client_cert_file) {
        (Some(d), _) => Some(decode(locator, name, "clientCertData", d)?),
        (None, Some(f)) => Some(read(locator, name, "clientCertFile", f)?),
        (None, None) => None,
    };
    let client_key_pem = match (&c.client_key_data, &c.client_key_file) {
        (Some(d), _) => Some(decode(locator, name, "clientKeyData", d)?),
        (None, Some(f)) => Some(read(locator, name, "clientKeyFile", f)?),
        (None, None) => None,
    };
    let mut spec = ClusterSpec {
        name: c.name.clone(),
        url,
        title: c.title.clone(),
        auth_provider: c.auth_provider.clone(),
        oidc_token_provider: c.oidc_token_provider.clone(),
        dashboard_url: c.dashboard_url.clone(),
        dashboard_app: c.dashboard_app.clone(),
        credential,
        impersonate: c.impersonate,
        backstage: crate::cluster::BackstageDetails {
            skip_metrics_lookup: c.skip_metrics_lookup,
            dashboard_parameters: c.dashboard_parameters.clone(),
            custom_resources: c.custom_resources.clone(),
        },
        tls: TlsSettings {
            ca_pem,
            skip_verify: c.skip_tls_verify,
            server_name: c.tls_server_name.clone(),
            client_cert_pem,
            client_key_pem: client_key_pem.map(Into::into),
            http1_only: c.http1_only,
        },
        connect_guard: None,
    };
    // A serviceAccount cluster without a token uses the pod's own service account.
    super::in_cluster::apply(&mut spec);
    Ok(spec)
}
