//! The one error type of kubeplex and its mapping to a Kubernetes `Status` object.
//!
//! Every error kubeplex produces itself (as opposed to an upstream's answer, which passes
//! through unchanged) is an [`Error`]: a [`Reason`] that decides the HTTP code and the
//! `reason` field, and a message. Messages are built by the code that knows the context
//! and must never contain a token or a query string; [`Error::error_response`] is the only
//! place where an error becomes an HTTP response.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

/// The Kubernetes `StatusReason` of an error, which also fixes its HTTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// 400: a malformed header, path or body.
    BadRequest,
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`: the portal token is
    /// missing, malformed, expired, not yet valid, or not for kubeplex (RFC 6750 §3.1).
    InvalidToken,
    /// 401 with `WWW-Authenticate: Bearer`: a credential the route needs is missing (a
    /// plugin proxy entry with `authorization: UserToken` and no Kubernetes token).
    Unauthorized,
    /// 403: the policy refuses this caller this verb on this cluster.
    Forbidden,
    /// 404: unknown cluster, plugin, route.
    NotFound,
    /// 405: method not allowed on this route.
    MethodNotAllowed,
    /// 408: the request body stalled longer than `bodyIdleTimeout`.
    RequestTimeout,
    /// 409: e.g. an ambiguous cluster name with `duplicateNames: reject`.
    Conflict,
    /// 410: a continue token (ours or a member cluster's) is too old.
    Expired,
    /// 431: the request headers exceed `maxHeaderBytes`. Kubernetes has no `StatusReason`
    /// for it; the `reason` is `RequestHeaderFieldsTooLarge`, after the HTTP status text.
    RequestHeaderFieldsTooLarge,
    /// 500: a bug or an unexpected internal state.
    InternalError,
    /// 502: connect, TLS or protocol failure talking to a cluster.
    BadGateway,
    /// 504: the cluster did not answer in time.
    Timeout,
}

impl Reason {
    /// The HTTP status code for this reason.
    pub(crate) fn code(self) -> StatusCode {
        match self {
            Reason::BadRequest => StatusCode::BAD_REQUEST,
            Reason::InvalidToken | Reason::Unauthorized => StatusCode::UNAUTHORIZED,
            Reason::Forbidden => StatusCode::FORBIDDEN,
            Reason::NotFound => StatusCode::NOT_FOUND,
            Reason::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Reason::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Reason::Conflict => StatusCode::CONFLICT,
            Reason::Expired => StatusCode::GONE,
            Reason::RequestHeaderFieldsTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Reason::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Reason::BadGateway => StatusCode::BAD_GATEWAY,
            Reason::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `reason` field of the `Status` object (Kubernetes' `StatusReason`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "BadRequest",
            Reason::InvalidToken | Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::RequestTimeout => "RequestTimeout",
            Reason::Conflict => "Conflict",
            Reason::Expired => "Expired",
            Reason::RequestHeaderFieldsTooLarge => "RequestHeaderFieldsTooLarge",
            Reason::InternalError => "InternalError",
            Reason::BadGateway => "BadGateway",
            Reason::Timeout => "Timeout",
        }
    }
}

/// An error kubeplex produces itself, answered as a Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    /// What kind of failure this is; decides the HTTP code.
    pub reason: Reason,
    /// Human-readable message: never a token, never a query string.
    pub message: String,
}

impl Error {
    /// An error with the given reason and message.
    pub(crate) fn new(reason: Reason, message: impl Into<String>) -> Self {
        Error {
            reason,
            message: message.into(),
        }
    }
    /// 400 BadRequest.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Reason::BadRequest, message)
    }
    /// 404 NotFound.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(Reason::NotFound, message)
    }
    /// 409 Conflict.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(Reason::Conflict, message)
    }
    /// 500 InternalError.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(Reason::InternalError, message)
    }
    /// 502 BadGateway.
    pub(crate) fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(Reason::BadGateway, message)
    }
    /// 504 Timeout.
    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::new(Reason::Timeout, message)
    }

    /// The `Status` object for this error.
    pub(crate) fn to_status(&self) -> Status<'_> {
        Status {
            kind: "Status",
            api_version: "v1",
            metadata: EmptyMeta {},
            status: "Failure",
            message: &self.message,
            reason: self.reason.as_str(),
            code: self.reason.code().as_u16(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

/// Empty `metadata: {}` of a `Status`.
#[derive(Serialize)]
pub(crate) struct EmptyMeta {}

/// A Kubernetes `meta/v1 Status` with `status: Failure`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: EmptyMeta,
    status: &'static str,
    message: &'a str,
    reason: &'static str,
    code: u16,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.reason.code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.reason.code());
        res.insert_header((header::CONTENT_TYPE, "application/json"));
        if self.reason == Reason::InvalidToken {
            res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
        }
        if self.reason == Reason::Unauthorized {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.body(serde_json::to_vec(&self.to_status()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shape() {
        let e = Error::not_found("cluster \"x\" not found");
        let v = serde_json::to_value(e.to_status()).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NotFound");
        assert_eq!(v["code"], 404);
        assert_eq!(v["metadata"], serde_json::json!({}));
    }

    #[test]
    fn unauthorized_has_www_authenticate() {
        let r = Error::new(Reason::InvalidToken, "no token").error_response();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers().get("www-authenticate").unwrap(),
            r#"Bearer error="invalid_token""#
        );
    }
}
