//! Discovery and OpenAPI documents for kubectl: `/version`, `/api`, `/api/v1`, `/apis`,
//! `/openapi/v3` and its `api/v1` document.
//!
//! kubectl 1.32 starts every command with `GET /version` and discovery. It asks `/api` and
//! `/apis` for aggregated discovery first (`application/json;g=apidiscovery.k8s.io;v=v2;
//! as=APIGroupDiscoveryList,...,application/json`); these routes answer plain
//! `application/json` (`APIVersions`, `APIGroupList`), from which client-go falls back to the
//! legacy per-group-version documents (`/api/v1`). For `create -f` / `apply -f` kubectl reads
//! `/openapi/v3` and the `api/v1` document: its `PATCH` operations on the item paths carry
//! `x-kubernetes-group-version-kind` and the `fieldValidation` parameter, so kubectl validates
//! server-side (`fieldValidation=Strict`), and its schemas carry the strategic-merge-patch
//! metadata (`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`) that client-side
//! `apply` needs to compute patches. `/openapi/v2` is not served (404): kubectl only accepts it
//! as protobuf and does not need it when v3 is present.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The OpenAPI v3 document of the core group (`/openapi/v3/api/v1`): Service, Namespace,
/// their lists, Status, ObjectMeta and the rest, shaped like kube-apiserver 1.32's.
pub const OPENAPI_V3_API_V1: &str = include_str!("openapi_v3_api_v1.json");

/// The version the simulated server reports on `/version`.
pub const GIT_VERSION: &str = "v1.32.0";

/// Registers the discovery routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/version", web::get().to(version))
        .route("/version/", web::get().to(version))
        .route("/api", web::get().to(api_versions))
        .route("/api/", web::get().to(api_versions))
        .route("/api/v1", web::get().to(api_v1_resources))
        .route("/api/v1/", web::get().to(api_v1_resources))
        .route("/apis", web::get().to(api_groups))
        .route("/apis/", web::get().to(api_groups))
        .route("/openapi/v3", web::get().to(openapi_v3_index))
        .route("/openapi/v3/", web::get().to(openapi_v3_index))
        .route("/openapi/v3/api/v1", web::get().to(openapi_v3_api_v1));
}

/// The `version.Info` served on `/version`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T17:59:15Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// The `APIVersions` served on `/api`; `server_address` is the host the client used.
pub fn api_versions_doc(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

/// The `APIGroupList` served on `/apis`: the simulator serves no named groups.
pub fn api_groups_doc() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
}

/// The `APIResourceList` served on `/api/v1`, listing exactly what the simulator serves:
/// namespaces; services (with `status` and `proxy`, and `deletecollection`); pods for
/// reading and watching, with `exec`, `attach`, `portforward` and `log`.
pub fn api_v1_resource_list() -> Value {
    let rw = [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false,
             "kind": "Namespace", "verbs": rw, "shortNames": ["ns"],
             "storageVersionHash": "Q3oi5N2YM8M="},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["get", "list", "watch"], "shortNames": ["po"], "categories": ["all"],
             "storageVersionHash": "xPOwRZ+Yhw8="},
            {"name": "pods/attach", "singularName": "", "namespaced": true,
             "kind": "PodAttachOptions", "verbs": ["create", "get"]},
            {"name": "pods/exec", "singularName": "", "namespaced": true,
             "kind": "PodExecOptions", "verbs": ["create", "get"]},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod",
             "verbs": ["get"]},
            {"name": "pods/portforward", "singularName": "", "namespaced": true,
             "kind": "PodPortForwardOptions", "verbs": ["create", "get"]},
            {"name": "services", "singularName": "service", "namespaced": true,
             "kind": "Service",
             "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
             "shortNames": ["svc"], "categories": ["all"],
             "storageVersionHash": "0/CO1lhkEBI="},
            {"name": "services/proxy", "singularName": "", "namespaced": true,
             "kind": "ServiceProxyOptions",
             "verbs": ["create", "delete", "get", "patch", "update"]},
            {"name": "services/status", "singularName": "", "namespaced": true,
             "kind": "Service", "verbs": ["get", "patch", "update"]}
        ]
    })
}

/// A stable hash of the `api/v1` OpenAPI document, used in its `serverRelativeURL` (as
/// kube-apiserver does, so clients may cache it).
pub fn openapi_v3_api_v1_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        // FNV-1a, twice with different offsets, for 128 bits of cache key.
        let fnv = |offset: u64| {
            OPENAPI_V3_API_V1.bytes().fold(offset, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        format!(
            "{:016X}{:016X}",
            fnv(0xcbf2_9ce4_8422_2325),
            fnv(0x6c62_272e_07bb_0142)
        )
    })
}

/// The `/openapi/v3` index, pointing at the `api/v1` document.
pub fn openapi_v3_index_doc() -> Value {
    json!({
        "paths": {
            "api/v1": {
                "serverRelativeURL": format!("/openapi/v3/api/v1?hash={}", openapi_v3_api_v1_hash())
            }
        }
    })
}

fn wants_pretty(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "pretty" && (v == "true" || v == "1"))
}

fn json_response(req: &HttpRequest, value: &Value) -> HttpResponse {
    let body = if wants_pretty(req) {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .unwrap_or_default();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(body)
}

async fn version(req: HttpRequest) -> HttpResponse {
    json_response(&req, &version_info())
}

async fn api_versions(req: HttpRequest) -> HttpResponse {
    let host = req.connection_info().host().to_owned();
    json_response(&req, &api_versions_doc(&host))
}

async fn api_groups(req: HttpRequest) -> HttpResponse {
    json_response(&req, &api_groups_doc())
}

async fn api_v1_resources(req: HttpRequest) -> HttpResponse {
    json_response(&req, &api_v1_resource_list())
}

async fn openapi_v3_index(req: HttpRequest) -> HttpResponse {
    json_response(&req, &openapi_v3_index_doc())
}

async fn openapi_v3_api_v1(req: HttpRequest) -> HttpResponse {
    let hashed = url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "hash" && v == openapi_v3_api_v1_hash());
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ETAG, format!("\"{}\"", openapi_v3_api_v1_hash())));
    if hashed {
        resp.insert_header((header::CACHE_CONTROL, "public, immutable"));
    } else {
        resp.insert_header((header::CACHE_CONTROL, "no-cache, private"));
    }
    resp.body(OPENAPI_V3_API_V1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test as atest;
    use actix_web::App;

    fn doc() -> Value {
        serde_json::from_str(OPENAPI_V3_API_V1).expect("the OpenAPI document is valid JSON")
    }

    #[test]
    fn openapi_patch_on_service_item_has_gvk_and_field_validation() {
        let d = doc();
        for path in [
            "/api/v1/namespaces/{namespace}/services/{name}",
            "/api/v1/namespaces/{namespace}/services/{name}/status",
        ] {
            let patch = &d["paths"][path]["patch"];
            assert_eq!(
                patch["x-kubernetes-group-version-kind"],
                json!({"group": "", "kind": "Service", "version": "v1"}),
                "{path}"
            );
            let params = patch["parameters"].as_array().expect("parameters");
            assert!(params
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
            assert!(patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_some());
        }
        let ns_patch = &d["paths"]["/api/v1/namespaces/{name}"]["patch"];
        assert_eq!(
            ns_patch["x-kubernetes-group-version-kind"]["kind"],
            "Namespace"
        );
    }

    #[test]
    fn openapi_every_ref_resolves() {
        fn walk(v: &Value, schemas: &serde_json::Map<String, Value>, n: &mut usize) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let name = r
                            .strip_prefix("#/components/schemas/")
                            .unwrap_or_else(|| panic!("unexpected ref {r}"));
                        assert!(schemas.contains_key(name), "unresolved {r}");
                        *n += 1;
                    }
                    m.values().for_each(|v| walk(v, schemas, n));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, schemas, n)),
                _ => {}
            }
        }
        let d = doc();
        let schemas = d["components"]["schemas"].as_object().expect("schemas");
        let mut n = 0;
        walk(&d, schemas, &mut n);
        assert!(n > 50);
    }

    #[test]
    fn openapi_service_ports_carry_merge_metadata() {
        let d = doc();
        let s = &d["components"]["schemas"];
        assert_eq!(
            s["io.k8s.api.core.v1.Service"]["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Service", "version": "v1"}])
        );
        let ports = &s["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "port");
        assert_eq!(ports["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["port", "protocol"])
        );
        for name in [
            "io.k8s.api.core.v1.ServiceList",
            "io.k8s.api.core.v1.Namespace",
            "io.k8s.api.core.v1.NamespaceList",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        ] {
            assert!(s.get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn resource_list_has_services_and_subresources() {
        let list = api_v1_resource_list();
        let find = |n: &str| {
            list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == n)
                .cloned()
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        let svc = find("services");
        assert_eq!(svc["shortNames"], json!(["svc"]));
        assert_eq!(svc["namespaced"], true);
        assert_eq!(svc["categories"], json!(["all"]));
        assert_eq!(find("namespaces")["namespaced"], false);
        assert_eq!(find("services/proxy")["kind"], "ServiceProxyOptions");
        assert_eq!(
            find("services/status")["verbs"],
            json!(["get", "patch", "update"])
        );
        assert_eq!(find("pods")["shortNames"], json!(["po"]));
        assert!(svc["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("deletecollection")));
        for sub in ["pods/exec", "pods/attach", "pods/portforward", "pods/log"] {
            find(sub);
        }
    }

    #[actix_web::test]
    async fn routes_answer_json() {
        let app = atest::init_service(App::new().configure(configure)).await;
        for (path, kind) in [
            ("/api", "APIVersions"),
            ("/api/v1", "APIResourceList"),
            ("/apis", "APIGroupList"),
        ] {
            let req = atest::TestRequest::get().uri(path).to_request();
            let resp = atest::call_service(&app, req).await;
            assert!(resp.status().is_success(), "{path}");
            assert_eq!(
                resp.headers().get(header::CONTENT_TYPE).unwrap(),
                "application/json"
            );
            let body: Value = atest::read_body_json(resp).await;
            assert_eq!(body["kind"], kind, "{path}");
        }
        let req = atest::TestRequest::get().uri("/version").to_request();
        let body: Value = atest::call_and_read_body_json(&app, req).await;
        assert_eq!(body["gitVersion"], GIT_VERSION);

        let req = atest::TestRequest::get().uri("/openapi/v3").to_request();
        let index: Value = atest::call_and_read_body_json(&app, req).await;
        let url = index["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(url.starts_with("/openapi/v3/api/v1?hash="));
        let req = atest::TestRequest::get().uri(&url).to_request();
        let resp = atest::call_service(&app, req).await;
        assert_eq!(
            resp.headers().get(header::CACHE_CONTROL).unwrap(),
            "public, immutable"
        );
        let body: Value = atest::read_body_json(resp).await;
        assert_eq!(body["openapi"], "3.0.0");
    }

    #[actix_web::test]
    async fn pretty_indents() {
        let app = atest::init_service(App::new().configure(configure)).await;
        let req = atest::TestRequest::get()
            .uri("/version?pretty=true")
            .to_request();
        let body = atest::call_and_read_body(&app, req).await;
        assert!(std::str::from_utf8(&body)
            .unwrap()
            .contains("\n  \"major\""));
    }
}
