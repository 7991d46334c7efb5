//! CORS for browser callers (SPEC §9), configured like Backstage's `backend.cors` (read
//! from an app-config's `backend.cors` as is, or from `kubeplex.server.cors`; the latter
//! wins), and behaving like the `cors` middleware Backstage's backend runs:
//!
//! - `origin`: one pattern or a list; a pattern is a glob matched against the whole
//!   `Origin` without regard to case, as Backstage's minimatch with `noglobstar` does (`*`
//!   and `?` do not match `/`; `[...]` and `{a,b}` work), e.g. `https://*.example.com`.
//! - `methods` (default `GET,HEAD,PUT,PATCH,POST,DELETE`), `allowedHeaders` (default: the
//!   headers the preflight asks for), `exposedHeaders`, `credentials`, `maxAge` (seconds),
//!   `optionsSuccessStatus` (default 204).
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//! here and never reaches a cluster; its allowing headers only for an allowed origin. An
//! actual request from an allowed origin gets `Access-Control-Allow-Origin` (the origin
//! itself, with `Vary: Origin`), `Access-Control-Allow-Credentials` and
//! `Access-Control-Expose-Headers` as configured; from any other origin, nothing. Without a
//! `cors` block nothing is added anywhere and preflights are proxied like any request.

use crate::config::CorsSettings;
use actix_web::body::BoxBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::HttpResponse;
use futures_util::future::{Either, LocalBoxFuture, Ready};
use std::rc::Rc;
use std::sync::Arc;

/// The glob of one origin pattern, as minimatch with `nocase` and `noglobstar` reads it.
pub(crate) fn origin_glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("not a valid origin pattern: {e}"))
}

/// The policy built from [`CorsSettings`] once.
struct Policy {
    origins: Vec<globset::GlobMatcher>,
    methods: HeaderValue,
    allowed_headers: Option<HeaderValue>,
    exposed_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
    status: StatusCode,
}

impl Policy {
    fn new(s: &CorsSettings) -> Self {
        let join = |v: &[String]| HeaderValue::from_str(&v.join(",")).ok();
        Policy {
            origins: s
                .origins
                .iter()
                .filter_map(|p| origin_glob(p).ok())
                .collect(),
            methods: join(&s.methods).unwrap_or(HeaderValue::from_static("")),
            allowed_headers: s.allowed_headers.as_deref().and_then(join),
            exposed_headers: Some(&s.exposed_headers)
                .filter(|e| !e.is_empty())
                .and_then(|e| join(e)),
            credentials: s.credentials,
            max_age: s.max_age.map(HeaderValue::from),
            status: StatusCode::from_u16(s.options_success_status)
                .unwrap_or(StatusCode::NO_CONTENT),
        }
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        origin
            .to_str()
            .is_ok_and(|o| self.origins.iter().any(|g| g.is_match(o)))
    }

    /// The answer to a preflight from `origin`.
    fn preflight(&self, origin: &HeaderValue, req: &HeaderMap) -> HttpResponse {
        let mut res = HttpResponse::new(self.status);
        let h = res.headers_mut();
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        if !self.allows(origin) {
            return res;
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
        match &self.allowed_headers {
            Some(v) => {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
            }
            None => {
                h.append(
                    header::VARY,
                    HeaderValue::from_static("Access-Control-Request-Headers"),
                );
                if let Some(asked) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
                }
            }
        }
        if let Some(m) = &self.max_age {
            h.insert(header::ACCESS_CONTROL_MAX_AGE, m.clone());
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        res
    }

    /// The headers an actual response to `origin` gets.
    fn decorate(&self, origin: &HeaderValue, h: &mut HeaderMap) {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        if !self.allows(origin) {
            return;
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(e) = &self.exposed_headers {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}

/// The CORS middleware: with no settings, it adds nothing and costs one branch.
#[derive(Clone)]
pub(crate) struct Cors(Option<Arc<Policy>>);

impl Cors {
    /// The middleware for `settings` (`None`: CORS off).
    pub(crate) fn new(settings: Option<&CorsSettings>) -> Self {
        Cors(settings.map(|s| Arc::new(Policy::new(s))))
    }
}

impl<S> Transform<S, ServiceRequest> for Cors
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>
        + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = CorsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        futures_util::future::ready(Ok(CorsService {
            service: Rc::new(service),
            policy: self.0.clone(),
        }))
    }
}

/// See [`Cors`].
pub(crate) struct CorsService<S> {
    service: Rc<S>,
    policy: Option<Arc<Policy>>,
}

type Answer = Result<ServiceResponse<BoxBody>, actix_web::Error>;

impl<S> Service<ServiceRequest> for CorsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>
        + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Either<S::Future, LocalBoxFuture<'static, Answer>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let Some(policy) = &self.policy else {
            return Either::Left(self.service.call(req));
        };
        let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
            return Either::Left(self.service.call(req));
        };
        let policy = policy.clone();
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let res = policy.preflight(&origin, req.headers());
            return Either::Right(Box::pin(async move { Ok(req.into_response(res)) }));
        }
        let fut = self.service.call(req);
        Either::Right(Box::pin(async move {
            let mut res = fut.await?;
            // Header lines relayed as they are (the direct path's) become map entries, so
            // the CORS headers replace the cluster's own.
            let head = res.response_mut().head_mut();
            head.raw_headers_into_map();
            policy.decorate(&origin, &mut head.headers);
            Ok(res)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns_match_like_minimatch_nocase_noglobstar() {
        let m = |p: &str, o: &str| origin_glob(p).unwrap().is_match(o);
        assert!(m("http://localhost:3000", "http://localhost:3000"));
        assert!(m("http://localhost:3000", "HTTP://LOCALHOST:3000"));
        assert!(m("https://*.example.com", "https://portal.example.com"));
        assert!(!m("https://*.example.com", "https://example.com"));
        assert!(!m("https://*.example.com", "https://evil.com/.example.com"));
        assert!(m("https://{a,b}.example.com", "https://b.example.com"));
        assert!(!m("https://{a,b}.example.com", "https://c.example.com"));
        assert!(m("http://localhost:300?", "http://localhost:3001"));
        assert!(!m("*", "http://localhost:3000"), "* stops at /");
        assert!(!m(
            "https://*.example.com",
            "https://a.example.com.evil.net"
        ));
    }
}
