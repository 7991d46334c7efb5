//! The entity of an `entityRef`, read from the Backstage catalog as Backstage's backend
//! reads it: `GET {catalog}/entities/by-name/{kind}/{namespace}/{name}` with the caller's
//! `Authorization` (the portal token; the catalog decides what this caller may see).
//! One awc client per worker thread, built on first use.

use super::error::Error;
use super::request::EntityRef;
use actix_web::http::StatusCode;
use serde_json::Value;
use std::cell::RefCell;
use std::time::Duration;

/// How long the catalog has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest entity read.
const MAX_ENTITY: usize = 4 * 1024 * 1024;

thread_local! {
    static CLIENT: RefCell<Option<(String, awc::Client)>> = const { RefCell::new(None) };
}

/// This worker's client for the catalog at `base` (kept per origin, so that every entity's
/// URL shares its connections).
fn client(base: &url::Url) -> Result<awc::Client, Error> {
    let origin = base.origin().ascii_serialization();
    CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((for_origin, client)) = c.as_ref() {
            if *for_origin == origin {
                return Ok(client.clone());
            }
        }
        let connector = crate::upstream::connector::cluster_connector(
            base,
            &crate::tls::TlsSettings::default(),
            TIMEOUT,
        )
        .map_err(|e| {
            Error::catalog(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the catalog client: {e}"),
            )
        })?;
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(TIMEOUT)
            .finish();
        *c = Some((origin, client.clone()));
        Ok(client)
    })
}

/// The entity `r` names, `None` when the catalog does not have it (or does not show it to
/// this caller).
pub(crate) async fn entity(
    catalog: &str,
    r: &EntityRef,
    authorization: Option<&actix_web::http::header::HeaderValue>,
) -> Result<Option<Value>, Error> {
    let unavailable = |m: String| Error::catalog(StatusCode::SERVICE_UNAVAILABLE, m);
    let mut url = url::Url::parse(catalog)
        .map_err(|e| unavailable(format!("the catalog URL is not a URL: {e}")))?;
    url.path_segments_mut()
        .map_err(|_| unavailable("the catalog URL cannot be a base".into()))?
        .pop_if_empty()
        .extend(["entities", "by-name", &r.kind, &r.namespace, &r.name]);
    let client = client(&url)?;
    let mut req = client
        .get(url.as_str())
        .insert_header(("Accept", "application/json"));
    if let Some(a) = authorization {
        req = req.insert_header((actix_web::http::header::AUTHORIZATION, a.clone()));
    }
    let mut res = req.send().await.map_err(|e| {
        unavailable(format!(
            "the catalog did not answer: {}",
            crate::tls::describe::describe_send_error(&e)
        ))
    })?;
    match res.status().as_u16() {
        200..=299 => {}
        404 => return Ok(None),
        code => {
            let status = if matches!(code, 401 | 403) {
                res.status()
            } else {
                StatusCode::BAD_GATEWAY
            };
            return Err(Error::catalog(
                status,
                format!("the catalog answered {code} for {r}"),
            ));
        }
    }
    let body = res
        .body()
        .limit(MAX_ENTITY)
        .await
        .map_err(|e| unavailable(format!("reading the catalog's answer: {e}")))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        _ => Err(Error::catalog(
            StatusCode::BAD_GATEWAY,
            format!("the catalog's answer for {r} is not an entity"),
        )),
    }
}
