//! kubeplex's own small reads from portal services (the Backstage catalog's entities, a
//! JWKS): a GET with an optional `Authorization`, a time bound and a size bound, over one
//! awc client per worker thread and origin (default TLS roots: these are the portal's
//! servers, not clusters).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

/// What a read gave: status and body.
pub(crate) struct Fetched {
    pub status: u16,
    pub body: bytes::Bytes,
}

thread_local! {
    static CLIENTS: RefCell<HashMap<String, awc::Client>> = RefCell::new(HashMap::new());
}

/// This worker's client for the origin of `url`.
fn client(url: &url::Url, timeout: Duration) -> Result<awc::Client, String> {
    let origin = url.origin().ascii_serialization();
    CLIENTS.with(|c| {
        if let Some(client) = c.borrow().get(&origin) {
            return Ok(client.clone());
        }
        let connector =
            super::connector::cluster_connector(url, &crate::tls::TlsSettings::default(), timeout)?;
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(timeout)
            .finish();
        c.borrow_mut().insert(origin, client.clone());
        Ok(client)
    })
}

/// GETs `url` (`Accept: application/json`, and `authorization` when given) within
/// `timeout`, reading at most `limit` bytes. The error says why, without the URL's query.
pub(crate) async fn get(
    url: &url::Url,
    authorization: Option<&actix_web::http::header::HeaderValue>,
    timeout: Duration,
    limit: usize,
) -> Result<Fetched, String> {
    let client = client(url, timeout)?;
    let mut req = client
        .get(url.as_str())
        .insert_header(("Accept", "application/json"));
    if let Some(a) = authorization {
        req = req.insert_header((actix_web::http::header::AUTHORIZATION, a.clone()));
    }
    let mut res = req
        .send()
        .await
        .map_err(|e| crate::tls::describe::describe_send_error(&e))?;
    let status = res.status().as_u16();
    let body = res
        .body()
        .limit(limit)
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(Fetched { status, body })
}
