//! The entity of an `entityRef`, read from the Backstage catalog as Backstage's backend
//! reads it: `GET {catalog}/entities/by-name/{kind}/{namespace}/{name}` with the caller's
//! `Authorization` (the portal token; the catalog decides what this caller may see).

use super::error::Error;
use super::request::EntityRef;
use actix_web::http::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// How long the catalog has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest entity read.
const MAX_ENTITY: usize = 4 * 1024 * 1024;

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
    let got = crate::upstream::fetch::get(&url, authorization, TIMEOUT, MAX_ENTITY)
        .await
        .map_err(|e| unavailable(format!("the catalog did not answer: {e}")))?;
    match got.status {
        200..=299 => {}
        404 => return Ok(None),
        code => {
            let status = match code {
                401 => StatusCode::UNAUTHORIZED,
                403 => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_GATEWAY,
            };
            return Err(Error::catalog(
                status,
                format!("the catalog answered {code} for {r}"),
            ));
        }
    }
    match serde_json::from_slice::<Value>(&got.body) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        _ => Err(Error::catalog(
            StatusCode::BAD_GATEWAY,
            format!("the catalog's answer for {r} is not an entity"),
        )),
    }
}
