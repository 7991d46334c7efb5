//! The floor under kubeplex's cost per request (issue 16 item 1): what the HTTP layer it is
//! built on costs before kubeplex does anything. Run by `bench/floor.sh`, which puts each
//! mode behind the anchor script beside nginx.
//!
//! - `static`: actix-web (one worker, no middleware, no log) answering every request with
//!   the body of a file, as the stand-in API server does: the server half of a proxy alone.
//! - `proxy`: actix-web with hyper-util's pooled HTTP/1.1 client (the client kubeplex
//!   forwards with), copying the request head to the upstream and the response head and
//!   streamed body back, nothing else: no cluster choice, header rules, credential, audit
//!   line or metrics.
//!
//! usage: `floor static ADDR FILE` or `floor proxy ADDR UPSTREAM` (UPSTREAM like
//! `http://127.0.0.1:9000`); the first path segments up to `/proxy` are stripped in `proxy`
//! mode, as kubeplex does with `/api/kubernetes/proxy`.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

type Upstream = Client<HttpConnector, http_body_util::Empty<Bytes>>;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: floor static ADDR FILE | floor proxy ADDR UPSTREAM";
    let (mode, addr, arg) = match &args[1..] {
        [m, a, x] => (m.clone(), a.clone(), x.clone()),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2)
        }
    };
    actix_web::rt::System::new().block_on(async move {
        match mode.as_str() {
            "static" => {
                let body = Bytes::from(std::fs::read(&arg)?);
                HttpServer::new(move || {
                    let body = body.clone();
                    App::new().default_service(web::to(move || {
                        let body = body.clone();
                        async move {
                            HttpResponse::Ok()
                                .content_type("application/json")
                                .body(body)
                        }
                    }))
                })
                .workers(1)
                .bind(&addr)?
                .run()
                .await
            }
            "proxy" => {
                let upstream = arg.trim_end_matches('/').to_string();
                HttpServer::new(move || {
                    let mut connector = HttpConnector::new();
                    connector.set_nodelay(true);
                    let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
                    App::new()
                        .app_data(web::Data::new((client, upstream.clone())))
                        .default_service(web::to(forward))
                })
                .workers(1)
                .bind(&addr)?
                .run()
                .await
            }
            _ => {
                eprintln!("{usage}");
                std::process::exit(2)
            }
        }
    })
}

async fn forward(req: HttpRequest, state: web::Data<(Upstream, String)>) -> HttpResponse {
    let (client, upstream) = &**state;
    let path = req.uri().path();
    let rest = path
        .find("/proxy/")
        .map_or(path, |i| &path[i + "/proxy".len()..]);
    let mut uri = format!("{upstream}{rest}");
    if let Some(q) = req.uri().query() {
        uri.push('?');
        uri.push_str(q);
    }
    let mut out = http1::Request::builder()
        .method(req.method().as_str())
        .uri(uri);
    for (name, value) in req.headers() {
        if name != actix_web::http::header::HOST {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let Ok(out) = out.body(http_body_util::Empty::new()) else {
        return HttpResponse::BadRequest().finish();
    };
    match client.request(out).await {
        Ok(resp) => {
            let (head, body) = resp.into_parts();
            let len = head
                .headers
                .get(http1::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let mut back = HttpResponse::build(
                actix_web::http::StatusCode::from_u16(head.status.as_u16()).unwrap_or_default(),
            );
            for (name, value) in &head.headers {
                if name != http1::header::CONTENT_LENGTH {
                    back.append_header((name.as_str(), value.as_bytes()));
                }
            }
            let stream = body
                .into_data_stream()
                .map_err(|e| actix_web::error::ErrorBadGateway(e.to_string()));
            match len {
                Some(n) => back.body(actix_web::body::SizedStream::new(n, stream)),
                None => back.streaming(stream),
            }
        }
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}
