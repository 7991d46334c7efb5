//! The errors of the entity routes, answered in Backstage's error body
//! (`{"error":{"name","message"},"request":{"method","url"},"response":{"statusCode"}}`,
//! the `url` relative to the plugin's base path), which Backstage's frontend reads. These
//! routes speak Backstage's API, so their errors are Backstage's, not Kubernetes `Status`es.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

/// A request-level failure of an entity route.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Error {
    /// The HTTP status.
    pub status: StatusCode,
    /// Backstage's error class name (`InputError`, `NotAllowedError`, ...).
    pub name: &'static str,
    /// What went wrong; never a token.
    pub message: String,
}

impl Error {
    /// 400 `InputError`: the body is not what the route takes.
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Error {
            status: StatusCode::BAD_REQUEST,
            name: "InputError",
            message: message.into(),
        }
    }

    /// 401 `AuthenticationError`: the portal token does not verify (mode `jwt`).
    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Error {
            status: StatusCode::UNAUTHORIZED,
            name: "AuthenticationError",
            message: message.into(),
        }
    }

    /// 403 `NotAllowedError`.
    pub(crate) fn not_allowed(message: impl Into<String>) -> Self {
        Error {
            status: StatusCode::FORBIDDEN,
            name: "NotAllowedError",
            message: message.into(),
        }
    }

    /// A failure reading the catalog, with the status to answer.
    pub(crate) fn catalog(status: StatusCode, message: impl Into<String>) -> Self {
        let name = match status.as_u16() {
            401 => "AuthenticationError",
            403 => "NotAllowedError",
            503 => "ServiceUnavailableError",
            _ => "Error",
        };
        Error {
            status,
            name,
            message: message.into(),
        }
    }

    /// The answer: Backstage's error body for `method` and `url` (the path under the base).
    pub(crate) fn response(&self, method: &str, url: &str) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({
            "error": {"name": self.name, "message": self.message},
            "request": {"method": method, "url": url},
            "response": {"statusCode": self.status.as_u16()},
        }))
    }
}
