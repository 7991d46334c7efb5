//! The simulated API server's own `Status` errors, shaped exactly as a kube-apiserver sends
//! them (`reason`, `code`, `details` with `causes[]` for 422 Invalid). These are the
//! simulated cluster's answers, not kubeplex's proxy errors: the simulator depends on
//! nothing of the proxy.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// One cause of a 422 Invalid: a field path, a `FieldValue*` reason and a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, ...
    pub reason: String,
    /// The error body without the field (`Invalid value: 0: must be ...`).
    pub message: String,
    /// The field path (`spec.ports[0].port`).
    pub field: String,
}

impl Cause {
    /// `Required value` (with an optional detail).
    pub fn required(field: impl Into<String>, detail: &str) -> Cause {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Cause {
            reason: "FieldValueRequired".into(),
            message,
            field: field.into(),
        }
    }

    /// `Invalid value: <value>: <detail>`; `value` is printed as Go's `%#v` would.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {detail}", go_value(value)),
            field: field.into(),
        }
    }

    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Cause {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {value:?}: supported values: {}",
                list.join(", ")
            ),
            field: field.into(),
        }
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Cause {
        Cause {
            reason: "FieldValueDuplicate".into(),
            message: format!("Duplicate value: {}", go_value(value)),
            field: field.into(),
        }
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {detail}"),
            field: field.into(),
        }
    }

    /// The whole error line, as in a Status message (`spec.ports[0].port: Invalid value: ...`).
    pub fn line(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// A value printed as the Go API server prints it in field errors.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let parts: Vec<String> = items.iter().map(go_value).collect();
            format!("[]string{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// `details` of a Status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Details {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

/// A failure `Status` of the simulated API server.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    /// HTTP code (also the Status `code`).
    pub code: u16,
    /// The Status `reason` (`NotFound`, `Invalid`, ...); empty for none.
    pub reason: &'static str,
    /// The Status `message`.
    pub message: String,
    /// The Status `details`, if any.
    pub details: Option<Box<Details>>,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for SimError {}

/// `details` naming `name` of `kind`, which may be group-qualified (`deployments.apps`,
/// `Deployment.apps`): the group goes to `details.group`.
fn details(name: &str, kind: &str) -> Option<Box<Details>> {
    let (kind, group) = match kind.split_once('.') {
        Some((k, g)) => (k, Some(g.to_string())),
        None => (kind, None),
    };
    Some(Box::new(Details {
        name: (!name.is_empty()).then(|| name.to_string()),
        group,
        kind: Some(kind.to_string()),
        ..Default::default()
    }))
}

impl SimError {
    /// A Status with this code, reason and message and no details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> SimError {
        SimError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 404 `<resource> "<name>" not found`.
    pub fn not_found(resource: &str, name: &str) -> SimError {
        SimError {
            details: details(name, resource),
            ..SimError::new(404, "NotFound", format!("{resource} {name:?} not found"))
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> SimError {
        SimError {
            details: Some(Box::default()),
            ..SimError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    /// 409 `<resource> "<name>" already exists`.
    pub fn already_exists(resource: &str, name: &str) -> SimError {
        SimError {
            details: details(name, resource),
            ..SimError::new(
                409,
                "AlreadyExists",
                format!("{resource} {name:?} already exists"),
            )
        }
    }

    /// 409 Conflict: `Operation cannot be fulfilled on <resource> "<name>": <why>`.
    pub fn conflict(resource: &str, name: &str, why: &str) -> SimError {
        SimError {
            details: details(name, resource),
            ..SimError::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {resource} {name:?}: {why}"),
            )
        }
    }

    /// 409 Conflict for a stale `metadata.resourceVersion`.
    pub fn stale(resource: &str, name: &str) -> SimError {
        SimError::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with every cause. `kind` is the object kind (`Service`).
    pub fn invalid(kind: &str, name: &str, causes: Vec<Cause>) -> SimError {
        let lines: Vec<String> = causes.iter().map(Cause::line).collect();
        let joined = if lines.len() == 1 {
            lines[0].clone()
        } else {
            format!("[{}]", lines.join(", "))
        };
        SimError {
            code: 422,
            reason: "Invalid",
            message: format!("{kind} {name:?} is invalid: {joined}"),
            details: details(name, kind).map(|mut d| {
                d.name = Some(name.to_string());
                d.causes = causes;
                d
            }),
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> SimError {
        SimError::new(400, "BadRequest", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> SimError {
        SimError {
            details: Some(Box::default()),
            ..SimError::new(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        }
    }

    /// 415 UnsupportedMediaType for a patch or body type.
    pub fn unsupported_media_type(content_type: &str) -> SimError {
        SimError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 410 Expired: `too old resource version: <asked> (<oldest>)`.
    pub fn too_old(asked: u64, oldest: u64) -> SimError {
        SimError::new(
            410,
            "Expired",
            format!("too old resource version: {asked} ({oldest})"),
        )
    }

    /// 410 Expired for a continue token whose snapshot was compacted.
    pub fn continue_expired() -> SimError {
        SimError::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter, or use the continue value \
             from the response to obtain the next list page.",
        )
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> SimError {
        SimError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden with the RBAC wording.
    pub fn forbidden(
        user: &str,
        verb: &str,
        resource: &str,
        group: &str,
        subresource: Option<&str>,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> SimError {
        let full = match subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        let qualified = match group {
            "" => full.clone(),
            g => format!(
                "{resource}.{g}{}",
                subresource.map(|s| format!("/{s}")).unwrap_or_default()
            ),
        };
        let subject = match name {
            Some(n) => format!("{qualified} {n:?} is forbidden"),
            None => format!("{qualified} is forbidden"),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace {ns:?}"),
            None => "at the cluster scope".to_string(),
        };
        SimError {
            details: Some(Box::new(Details {
                name: name.map(str::to_string),
                group: (!group.is_empty()).then(|| group.to_string()),
                kind: Some(resource.to_string()),
                ..Default::default()
            })),
            ..SimError::new(
                403,
                "Forbidden",
                format!(
                    "{subject}: User {user:?} cannot {verb} resource {full:?} in API group {group:?} {scope}"
                ),
            )
        }
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> SimError {
        SimError {
            details: Some(Box::default()),
            ..SimError::new(500, "InternalError", message)
        }
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> SimError {
        SimError::new(503, "ServiceUnavailable", message)
    }

    /// An injected fault with the given code.
    pub fn fault(code: u16) -> SimError {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        SimError::new(code, reason, format!("injected fault: failing with {code}"))
    }

    /// The Status object as JSON.
    pub fn to_value(&self) -> Value {
        let mut status = serde_json::Map::new();
        status.insert("kind".into(), "Status".into());
        status.insert("apiVersion".into(), "v1".into());
        status.insert("metadata".into(), Value::Object(Default::default()));
        status.insert("status".into(), "Failure".into());
        status.insert("message".into(), self.message.clone().into());
        if !self.reason.is_empty() {
            status.insert("reason".into(), self.reason.into());
        }
        if let Some(d) = &self.details {
            status.insert(
                "details".into(),
                serde_json::to_value(d).unwrap_or(Value::Null),
            );
        }
        status.insert("code".into(), self.code.into());
        Value::Object(status)
    }
}

impl ResponseError for SimError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::to_vec(&self.to_value()).unwrap_or_default();
        body.push(b'\n');
        let mut builder = HttpResponse::build(self.status_code());
        builder.insert_header(("Content-Type", "application/json"));
        if self.code == 401 {
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        builder.body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_lists_every_cause() {
        let e = SimError::invalid(
            "Service",
            "web",
            vec![
                Cause::invalid(
                    "spec.ports[0].port",
                    &json!(0),
                    "must be between 1 and 65535, inclusive",
                ),
                Cause::required("spec.ports[1].name", ""),
            ],
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Service \"web\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[1].name: Required value]"
        );
        let v = e.to_value();
        assert_eq!(v["details"]["causes"][1]["reason"], "FieldValueRequired");
        assert_eq!(v["details"]["kind"], "Service");
    }

    #[test]
    fn forbidden_wording() {
        let e = SimError::forbidden("alice", "list", "services", "", None, Some("default"), None);
        assert_eq!(
            e.message,
            "services is forbidden: User \"alice\" cannot list resource \"services\" in API group \"\" in the namespace \"default\""
        );
    }
}
