//! The `simulated` locator: each cluster is an in-process simulated API server (SPEC §8)
//! on an ephemeral loopback port; the servers live as long as the returned [`Located`].
//! A cluster with `tls: true` serves HTTPS with a self-signed certificate, which becomes
//! the located cluster's CA: kubeplex verifies it as any other cluster's.

use super::LocateError as Error;
use super::Located;
use crate::cluster::ClusterSpec;
use crate::sim::config::SimClusterConfig;
use crate::sim::SimServer;

/// The located cluster of a running simulated server: its URL and, when it serves HTTPS,
/// the certificate it serves as the CA.
pub(crate) fn spec(name: &str, server: &SimServer) -> ClusterSpec {
    let mut spec = ClusterSpec::new(name, server.url().clone());
    spec.tls.ca_pem = server.ca_pem().map(<[u8]>::to_vec);
    spec
}

/// Starts one simulated server per cluster and returns their specs and servers.
pub(crate) async fn locate(locator: &str, clusters: &[SimClusterConfig]) -> Result<Located, Error> {
    let mut out = Located {
        locator: locator.to_string(),
        clusters: Vec::with_capacity(clusters.len()),
        sims: Vec::with_capacity(clusters.len()),
    };
    for c in clusters {
        let server = crate::sim::spawn("127.0.0.1:0", c)
            .await
            .map_err(|e| Error::Simulated {
                locator: locator.to_owned(),
                cluster: c.name.clone(),
                message: e.to_string(),
            })?;
        out.clusters.push(spec(&c.name, &server));
        out.sims.push(server);
    }
    Ok(out)
}
