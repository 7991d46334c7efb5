//! A request as the proxy's stages read it, whichever way it came in: routed by actix-web
//! ([`HttpRequest`], every route), or taken ahead of actix-web's router as actix-http hands
//! it over (the header route's fast path, [`super::front`]). Both carry the same head,
//! connection data and extensions (the caller's identity); [`Incoming`] reads them with
//! `HttpRequest`'s own method names, so the stages do not care which it is.

use actix_web::dev::{Payload, RequestHead};
use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, Uri, Version};
use actix_web::{HttpMessage, HttpRequest};
use std::cell::{Ref, RefMut};

/// See the module docs.
pub(crate) enum Incoming {
    /// Routed by actix-web.
    Web(HttpRequest),
    /// Taken ahead of the router; its body was taken out first.
    Raw(actix_http::Request),
}

impl From<HttpRequest> for Incoming {
    fn from(req: HttpRequest) -> Self {
        Incoming::Web(req)
    }
}

impl Incoming {
    /// The request's head.
    pub(crate) fn head(&self) -> &RequestHead {
        match self {
            Incoming::Web(r) => r.head(),
            Incoming::Raw(r) => r.head(),
        }
    }

    /// Data the server's connect hook left on the request's connection.
    pub(crate) fn conn_data<T: 'static>(&self) -> Option<&T> {
        match self {
            Incoming::Web(r) => r.conn_data(),
            Incoming::Raw(r) => r.conn_data(),
        }
    }

    pub(crate) fn method(&self) -> &Method {
        &self.head().method
    }

    pub(crate) fn uri(&self) -> &Uri {
        &self.head().uri
    }

    /// The raw (still percent-encoded) path.
    pub(crate) fn path(&self) -> &str {
        self.head().uri.path()
    }

    /// The query, `""` when there is none.
    pub(crate) fn query_string(&self) -> &str {
        self.head().uri.query().unwrap_or_default()
    }

    pub(crate) fn version(&self) -> Version {
        self.head().version
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.head().headers
    }
}

impl HttpMessage for Incoming {
    type Stream = actix_http::BoxedPayloadStream;

    fn headers(&self) -> &HeaderMap {
        &self.head().headers
    }

    /// Always empty: the body was taken out before (`web::Payload`, or by the fast path).
    fn take_payload(&mut self) -> Payload<Self::Stream> {
        Payload::None
    }

    fn extensions(&self) -> Ref<'_, actix_http::Extensions> {
        match self {
            Incoming::Web(r) => r.extensions(),
            Incoming::Raw(r) => r.extensions(),
        }
    }

    fn extensions_mut(&self) -> RefMut<'_, actix_http::Extensions> {
        match self {
            Incoming::Web(r) => r.extensions_mut(),
            Incoming::Raw(r) => r.extensions_mut(),
        }
    }
}

/// What [`crate::proxy::forward::Caller::of`] reads of a request, from either kind.
pub(crate) trait RequestView: HttpMessage {
    /// The request's head.
    fn request_head(&self) -> &RequestHead;
}

impl RequestView for HttpRequest {
    fn request_head(&self) -> &RequestHead {
        self.head()
    }
}

impl RequestView for Incoming {
    fn request_head(&self) -> &RequestHead {
        self.head()
    }
}
