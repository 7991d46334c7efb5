//! A kubeconfig for a running simulated cluster (`kubeplex sim --kubeconfig-out`), which
//! kubectl uses as is: one cluster, user and context named after the simulated cluster,
//! the context current; the CA data of an HTTPS server; the user's bearer token.

use super::SimServer;
use base64::Engine;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

impl SimServer {
    /// The server's URL as a client reaches it: without the trailing `/`, an unspecified
    /// listen address (`0.0.0.0`, `::`) replaced by loopback (`127.0.0.1`, `::1`).
    pub fn client_url(&self) -> String {
        let mut url = self.url.clone();
        if let Some(url::Host::Ipv4(ip)) = url.host() {
            if ip.is_unspecified() {
                let _ = url.set_ip_host(IpAddr::V4(Ipv4Addr::LOCALHOST));
            }
        } else if let Some(url::Host::Ipv6(ip)) = url.host() {
            if ip.is_unspecified() {
                let _ = url.set_ip_host(IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
        }
        url.as_str().trim_end_matches('/').to_owned()
    }

    /// A kubeconfig (YAML) for this server: `server` is [`SimServer::client_url`];
    /// `certificate-authority-data` the base64 of the certificate chain it serves (HTTPS
    /// only); the user carries `token` when given (kubectl sends a token to `https`
    /// servers only). The text holds the token: write it where only its owner can read it.
    pub fn kubeconfig(&self, token: Option<&str>) -> String {
        let name = if self.name.is_empty() {
            "sim"
        } else {
            self.name.as_str()
        };
        let mut cluster = serde_json::json!({ "server": self.client_url() });
        if let Some(pem) = &self.ca_pem {
            cluster["certificate-authority-data"] =
                base64::engine::general_purpose::STANDARD.encode(pem).into();
        }
        let mut user = serde_json::json!({});
        if let Some(t) = token {
            user["token"] = t.into();
        }
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": name, "cluster": cluster }],
            "users": [{ "name": name, "user": user }],
            "contexts": [{ "name": name, "context": { "cluster": name, "user": name } }],
            "current-context": name,
        });
        serde_yaml::to_string(&doc).expect("a JSON value serialises as YAML")
    }
}

#[cfg(test)]
mod tests {
    use crate::sim::config::{SimClusterConfig, SimTls};
    use serde_json::Value;

    fn parse(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[actix_web::test]
    async fn https_with_token() {
        let mut cfg = SimClusterConfig::new("dev", None, ["t0ken", "other"]);
        cfg.tls = SimTls::SelfSigned;
        let sim = crate::sim::spawn("127.0.0.1:0", &cfg).await.unwrap();
        let k = parse(&sim.kubeconfig(Some("t0ken")));
        let port = sim.url().port().unwrap();
        assert_eq!(k["apiVersion"], "v1");
        assert_eq!(k["kind"], "Config");
        assert_eq!(k["current-context"], "dev");
        assert_eq!(k["contexts"][0]["name"], "dev");
        assert_eq!(k["contexts"][0]["context"]["cluster"], "dev");
        assert_eq!(k["contexts"][0]["context"]["user"], "dev");
        assert_eq!(k["clusters"][0]["name"], "dev");
        let cluster = &k["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], format!("https://127.0.0.1:{port}"));
        let ca =
            crate::tls::pem::decode_base64(cluster["certificate-authority-data"].as_str().unwrap())
                .unwrap();
        assert_eq!(Some(ca.as_slice()), sim.ca_pem());
        assert!(String::from_utf8(ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(k["users"][0]["name"], "dev");
        assert_eq!(k["users"][0]["user"]["token"], "t0ken");
    }

    #[actix_web::test]
    async fn http_anonymous_on_an_unspecified_address() {
        let sim = crate::sim::spawn("0.0.0.0:0", &SimClusterConfig::default())
            .await
            .unwrap();
        assert_eq!(sim.url().host_str(), Some("0.0.0.0"));
        let k = parse(&sim.kubeconfig(None));
        let port = sim.url().port().unwrap();
        assert_eq!(
            k["clusters"][0]["cluster"],
            serde_json::json!({ "server": format!("http://127.0.0.1:{port}") })
        );
        assert_eq!(
            k["users"][0],
            serde_json::json!({"name": "sim", "user": {}})
        );
        assert_eq!(k["current-context"], "sim");
    }
}
