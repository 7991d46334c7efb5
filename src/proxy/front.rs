//! The header route ahead of actix-web's router: the service the server runs for each
//! request, in front of the app.
//!
//! Most of kubeplex's requests are `{base}/proxy/...` with a cluster header. Through the app
//! each of them pays for actix-web's request object (taken from a pool, its path requoted
//! for the router), the CORS layer, two route matches and two boxed handler futures: about a
//! tenth of a proxied request's instructions (BENCHMARKS.md, issue 16, fifth pass). [`Front`]
//! hands such a request to the header route ([`super::serve_by_header`]) as actix-http
//! delivers it ([`super::Incoming::Raw`]), and everything else to the app, unchanged.
//!
//! It takes only what the app would route to the header route and serve the same way; the
//! rest goes through the router:
//! - a raw path of `{base}/proxy` or `{base}/proxy/...` (a percent-encoded prefix is the
//!   router's to decode, and the route's to refuse);
//! - when a route the app matches first (the plugin route, `/api/proxy/plugin`) lies under
//!   `{base}/proxy`, nothing whose next segment could be that route's;
//! - no `Upgrade` header (tunnels keep actix-web's request, which their handshake needs);
//! - no `Origin` header when CORS is configured (the CORS layer answers or decorates those).

use super::{serve_by_header, Incoming, ProxyState};
use actix_http::Request;
use actix_service::{Service, ServiceFactory};
use actix_web::body::BoxBody;
use actix_web::dev::{AppConfig, RequestHead, Response, ServiceResponse};
use actix_web::http::header;
use actix_web::web;
use futures_util::future::{Either, LocalBoxFuture, MapOk, TryFutureExt};

/// Which requests [`Front`] takes (see the module docs).
#[derive(Clone)]
pub(crate) struct Takes {
    /// `{base}/proxy`.
    prefix: String,
    /// The first byte of the next segment of a route matched first that lies under `prefix`.
    earlier: Option<u8>,
    /// CORS is configured.
    cors: bool,
}

impl Takes {
    /// For `server.basePath` `base`, with CORS configured or not; `earlier` is the prefix of
    /// the route the app matches before the header route (the plugin route's).
    pub(crate) fn new(base: &str, cors: bool, earlier: &str) -> Self {
        let prefix = format!("{}/proxy", base.trim_end_matches('/'));
        let earlier = earlier
            .strip_prefix(prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.bytes().next());
        Takes {
            prefix,
            earlier,
            cors,
        }
    }

    /// Whether the request with `head` goes to the header route directly.
    fn takes(&self, head: &RequestHead) -> bool {
        let Some(rest) = head.uri.path().strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            return false;
        }
        // The router requotes the path before matching: a next segment that may be the
        // earlier route's, plainly or encoded, is the router's.
        if let Some(first) = self.earlier {
            if matches!(rest.as_bytes().get(1), Some(&b) if b == first || b == b'%') {
                return false;
            }
        }
        let h = &head.headers;
        !(h.contains_key(header::UPGRADE) || self.cors && h.contains_key(header::ORIGIN))
    }
}

/// The server's service factory: the app, with the header route in front of it.
pub(crate) struct Front<F> {
    app: F,
    state: web::Data<ProxyState>,
    takes: Takes,
}

impl<F> Front<F> {
    /// `app` (an `App`'s service factory) behind the header route of `state`.
    pub(crate) fn new(app: F, state: web::Data<ProxyState>, takes: Takes) -> Self {
        Front { app, state, takes }
    }
}

impl<F> ServiceFactory<Request> for Front<F>
where
    F: ServiceFactory<
        Request,
        Config = AppConfig,
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
    F::Future: 'static,
{
    type Response = Response<BoxBody>;
    type Error = actix_web::Error;
    type Config = AppConfig;
    type Service = FrontService<F::Service>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Service, ()>>;

    fn new_service(&self, cfg: AppConfig) -> Self::Future {
        let app = self.app.new_service(cfg);
        let state = self.state.clone();
        let takes = self.takes.clone();
        Box::pin(async move {
            Ok(FrontService {
                app: app.await?,
                state,
                takes,
            })
        })
    }
}

/// A worker's [`Front`].
pub(crate) struct FrontService<S> {
    app: S,
    state: web::Data<ProxyState>,
    takes: Takes,
}

/// The app's answer as the server's response.
type FromApp<Fut> = MapOk<Fut, fn(ServiceResponse<BoxBody>) -> Response<BoxBody>>;

impl<S> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    type Response = Response<BoxBody>;
    type Error = actix_web::Error;
    type Future =
        Either<LocalBoxFuture<'static, Result<Self::Response, Self::Error>>, FromApp<S::Future>>;

    actix_service::forward_ready!(app);

    fn call(&self, mut req: Request) -> Self::Future {
        if !self.takes.takes(req.head()) {
            let into: fn(ServiceResponse<BoxBody>) -> Response<BoxBody> = Into::into;
            return Either::Right(self.app.call(req).map_ok(into));
        }
        let payload = req.take_payload();
        let state = self.state.clone();
        Either::Left(Box::pin(async move {
            Ok(serve_by_header(Incoming::Raw(req), payload, &state)
                .await
                .into())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGIN: &str = "/api/proxy/plugin";

    fn takes(t: &Takes, path: &str, headers: &[(&str, &str)]) -> bool {
        let mut head = RequestHead::default();
        head.uri = path.parse().unwrap();
        for (n, v) in headers {
            head.headers.insert(
                header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                header::HeaderValue::from_str(v).unwrap(),
            );
        }
        t.takes(&head)
    }

    #[test]
    fn only_what_the_router_would_give_the_header_route_is_taken() {
        let t = Takes::new("/api/kubernetes/", false, PLUGIN);
        assert!(takes(&t, "/api/kubernetes/proxy/api/v1/pods", &[]));
        assert!(takes(&t, "/api/kubernetes/proxy", &[]));
        assert!(takes(
            &t,
            "/api/kubernetes/proxy/",
            &[("origin", "http://x")]
        ));
        assert!(!takes(&t, "/api/kubernetes/proxyx/api", &[]));
        assert!(!takes(&t, "/api/kubernetes/%70roxy/api", &[]));
        assert!(!takes(&t, "/api/kubernetes/clusters/a/api", &[]));
        assert!(!takes(&t, "/api/proxy/plugin/p/a/x", &[]));
        assert!(!takes(
            &t,
            "/api/kubernetes/proxy/api/v1/pods/p/exec",
            &[("upgrade", "websocket")]
        ));
        let cors = Takes::new("/api/kubernetes", true, PLUGIN);
        assert!(takes(&cors, "/api/kubernetes/proxy/api", &[]));
        assert!(!takes(
            &cors,
            "/api/kubernetes/proxy/api",
            &[("origin", "http://x")]
        ));
        // A base path of `/api` puts the plugin route under the header route's prefix.
        let api = Takes::new("/api", false, PLUGIN);
        assert!(takes(&api, "/api/proxy/api/v1/pods", &[]));
        assert!(!takes(&api, "/api/proxy/plugin/p/a/x", &[]));
        assert!(!takes(&api, "/api/proxy/%70lugin/p/a/x", &[]));
        assert!(
            !takes(&api, "/api/proxy/pods", &[]),
            "left to the router, which agrees"
        );
        let root = Takes::new("/", false, PLUGIN);
        assert!(takes(&root, "/proxy/api", &[]));
        assert!(!takes(&root, "/readyz", &[]));
    }
}
