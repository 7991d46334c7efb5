//! Tests of the discovery and OpenAPI documents.

use super::*;
use crate::sim::config::SimClusterConfig;
use crate::sim::kinds::CustomType;
use actix_web::test as atest;
use actix_web::App;

fn rollout(version: &str) -> CustomType {
    CustomType {
        group: "argoproj.io".into(),
        version: version.into(),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
        singular: None,
        namespaced: true,
        short_names: vec!["ro".into()],
        categories: vec!["all".into()],
    }
}

/// A cluster's state with the built-in kinds and, when `custom`, Argo Rollouts in two
/// versions.
fn state(custom: bool) -> SimState {
    let state = SimState::new(&SimClusterConfig::new("t", None, Vec::<String>::new()));
    if custom {
        state.add_custom(&rollout("v1alpha1")).unwrap();
        state.add_custom(&rollout("v1")).unwrap();
    }
    state
}

fn parse(doc: &OpenApiDoc) -> Value {
    serde_json::from_slice(&doc.body).expect("the OpenAPI document is valid JSON")
}

fn api_v1_doc() -> Value {
    parse(&api_v1_document(&state(false).kinds()))
}

fn gv_doc(kinds: &[Kind], group: &str, version: &str) -> Value {
    parse(&group_version_document(kinds, group, version).expect("served group-version"))
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {list}"))
}

/// Every `$ref` of `doc` resolves to one of its schemas; returns how many there are.
fn refs_resolve(doc: &Value) -> usize {
    fn walk(v: &Value, schemas: &Map<String, Value>, n: &mut usize) {
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
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut n = 0;
    walk(doc, schemas, &mut n);
    n
}

/// What kubectl looks for to use server-side field validation: PATCH on the item path with
/// the kind's GVK and a `fieldValidation` query parameter.
fn assert_patchable(doc: &Value, path: &str, gvk: Value) {
    let patch = &doc["paths"][path]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"], gvk, "{path}");
    let params = patch["parameters"].as_array().expect("parameters");
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
        "{path}"
    );
    assert!(
        patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some(),
        "{path}"
    );
}

#[test]
fn api_v1_document_covers_the_core_kinds() {
    let d = api_v1_doc();
    assert_eq!(d["openapi"], "3.0.0");
    for (path, kind) in [
        ("/api/v1/namespaces/{namespace}/services/{name}", "Service"),
        (
            "/api/v1/namespaces/{namespace}/services/{name}/status",
            "Service",
        ),
        ("/api/v1/namespaces/{name}", "Namespace"),
        (
            "/api/v1/namespaces/{namespace}/configmaps/{name}",
            "ConfigMap",
        ),
        ("/api/v1/namespaces/{namespace}/secrets/{name}", "Secret"),
        (
            "/api/v1/namespaces/{namespace}/limitranges/{name}",
            "LimitRange",
        ),
        (
            "/api/v1/namespaces/{namespace}/resourcequotas/{name}/status",
            "ResourceQuota",
        ),
        ("/api/v1/namespaces/{namespace}/events/{name}", "Event"),
    ] {
        assert_patchable(
            &d,
            path,
            json!({"group": "", "kind": kind, "version": "v1"}),
        );
    }
    assert!(d["paths"]["/api/v1/configmaps"]["get"].is_object());
    assert!(d["paths"]["/api/v1/namespaces"]["delete"].is_null());
    assert!(d["paths"]["/api/v1/namespaces/{namespace}/services"]["delete"].is_object());
    let proxy = &d["paths"]["/api/v1/namespaces/{namespace}/services/{name}/proxy/{path}"];
    assert_eq!(
        proxy["get"]["x-kubernetes-group-version-kind"]["kind"],
        "ServiceProxyOptions"
    );
    // Pods are documented read-only.
    let pod = &d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    assert!(pod["get"].is_object() && pod["patch"].is_null());
    assert!(refs_resolve(&d) > 50);

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
        "io.k8s.api.core.v1.ConfigMapList",
        "io.k8s.api.core.v1.Pod",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    ] {
        assert!(s.get(name).is_some(), "{name}");
    }
    // Only what the core group needs.
    assert!(s.get("io.k8s.api.apps.v1.Deployment").is_none());
}

#[test]
fn apps_document_has_deployments_with_scale() {
    let kinds = state(false).kinds();
    let d = gv_doc(&kinds, "apps", "v1");
    let item = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
    assert_patchable(
        &d,
        item,
        json!({"group": "apps", "kind": "Deployment", "version": "v1"}),
    );
    assert_patchable(
        &d,
        &format!("{item}/scale"),
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"}),
    );
    assert_eq!(
        d["paths"][format!("{item}/scale")]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
    assert_eq!(
        d["paths"][item]["get"]["operationId"],
        "readAppsV1NamespacedDeployment"
    );
    assert_eq!(
        d["paths"]["/apis/apps/v1/deployments"]["get"]["operationId"],
        "listAppsV1DeploymentForAllNamespaces"
    );
    assert!(d["paths"]["/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}/scale"].is_null());
    assert!(d["paths"]["/apis/apps/v1/watch/namespaces/{namespace}/statefulsets"].is_object());
    assert!(refs_resolve(&d) > 50);
    let s = &d["components"]["schemas"];
    assert_eq!(
        s["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let containers = &s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert!(s.get("io.k8s.api.autoscaling.v1.Scale").is_some());
    assert!(s.get("io.k8s.api.core.v1.Service").is_none());

    for (group, version, item, kind) in [
        (
            "autoscaling",
            "v2",
            "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}",
            "HorizontalPodAutoscaler",
        ),
        (
            "batch",
            "v1",
            "/apis/batch/v1/namespaces/{namespace}/cronjobs/{name}",
            "CronJob",
        ),
        (
            "batch",
            "v1",
            "/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status",
            "Job",
        ),
        (
            "networking.k8s.io",
            "v1",
            "/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}",
            "Ingress",
        ),
    ] {
        let d = gv_doc(&kinds, group, version);
        assert_patchable(
            &d,
            item,
            json!({"group": group, "kind": kind, "version": version}),
        );
        assert!(refs_resolve(&d) > 10, "{group}/{version}");
    }
    let d = gv_doc(&kinds, "networking.k8s.io", "v1");
    assert_eq!(
        d["paths"]["/apis/networking.k8s.io/v1/ingresses"]["get"]["operationId"],
        "listNetworkingV1IngressForAllNamespaces"
    );
}

#[test]
fn metrics_document_is_read_only() {
    let d = gv_doc(&state(false).kinds(), "metrics.k8s.io", "v1beta1");
    let item = &d["paths"]["/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}"];
    assert_eq!(
        item["get"]["x-kubernetes-group-version-kind"],
        json!({"group": "metrics.k8s.io", "kind": "PodMetrics", "version": "v1beta1"})
    );
    assert!(item["patch"].is_null() && item["delete"].is_null());
    assert!(
        d["paths"]["/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"]["post"].is_null()
    );
    refs_resolve(&d);
    let s = &d["components"]["schemas"]["io.k8s.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics"];
    assert!(s["properties"]["usage"]["additionalProperties"].is_object());
}

#[test]
fn custom_types_get_free_form_schemas() {
    let kinds = state(true).kinds();
    let d = gv_doc(&kinds, "argoproj.io", "v1alpha1");
    let item = "/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/{name}";
    assert_patchable(
        &d,
        item,
        json!({"group": "argoproj.io", "kind": "Rollout", "version": "v1alpha1"}),
    );
    assert_eq!(
        d["paths"][item]["get"]["operationId"],
        "readArgoprojIoV1alpha1NamespacedRollout"
    );
    let s = &d["components"]["schemas"]["io.argoproj.v1alpha1.Rollout"];
    assert_eq!(s["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(s["type"], "object");
    assert_eq!(
        s["x-kubernetes-group-version-kind"],
        json!([{"group": "argoproj.io", "kind": "Rollout", "version": "v1alpha1"}])
    );
    assert!(d["components"]["schemas"]["io.argoproj.v1alpha1.RolloutList"].is_object());
    refs_resolve(&d);
    assert!(group_version_document(&kinds, "argoproj.io", "v2").is_none());
    assert!(group_version_document(&kinds, "", "v1").is_none());
}

#[test]
fn documents_are_cached_per_set_of_kinds() {
    let kinds = state(false).kinds();
    let a = group_version_document(&kinds, "apps", "v1").unwrap();
    let b = group_version_document(&state(false).kinds(), "apps", "v1").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let core = api_v1_document(&kinds);
    let with_custom = api_v1_document(&state(true).kinds());
    // Custom types do not touch the core document.
    assert!(Arc::ptr_eq(&core, &with_custom));
    assert_ne!(a.hash, core.hash);
}

#[test]
fn api_v1_resource_list_has_every_core_kind() {
    let list = api_v1_resource_list(&state(false).kinds());
    let svc = find(&list, "services");
    assert_eq!(svc["shortNames"], json!(["svc"]));
    assert_eq!(svc["namespaced"], true);
    assert_eq!(svc["categories"], json!(["all"]));
    assert_eq!(svc["storageVersionHash"], "0/CO1lhkEBI=");
    assert!(svc["verbs"]
        .as_array()
        .unwrap()
        .contains(&json!("deletecollection")));
    let ns = find(&list, "namespaces");
    assert_eq!(ns["namespaced"], false);
    assert_eq!(ns["storageVersionHash"], "Q3oi5N2YM8M=");
    assert!(!ns["verbs"]
        .as_array()
        .unwrap()
        .contains(&json!("deletecollection")));
    assert_eq!(find(&list, "services/proxy")["kind"], "ServiceProxyOptions");
    assert_eq!(
        find(&list, "services/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    let pods = find(&list, "pods");
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["storageVersionHash"], "xPOwRZ+Yhw8=");
    for sub in ["pods/exec", "pods/attach", "pods/portforward", "pods/log"] {
        find(&list, sub);
    }
    let cm = find(&list, "configmaps");
    assert_eq!(cm["shortNames"], json!(["cm"]));
    assert_eq!(cm["singularName"], "configmap");
    assert_eq!(cm["kind"], "ConfigMap");
    assert!(cm.get("categories").is_none());
    assert!(find(&list, "secrets").get("shortNames").is_none());
    assert_eq!(find(&list, "limitranges")["shortNames"], json!(["limits"]));
    assert_eq!(
        find(&list, "resourcequotas")["shortNames"],
        json!(["quota"])
    );
    assert_eq!(
        find(&list, "resourcequotas/status")["kind"],
        "ResourceQuota"
    );
    assert_eq!(find(&list, "events")["shortNames"], json!(["ev"]));
    // Sorted by name, as kube-apiserver lists them; no named-group kinds.
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(!names.contains(&"deployments"));
}

#[test]
fn groups_and_their_resources() {
    let kinds = state(true).kinds();
    let groups = api_groups_doc(&kinds);
    assert_eq!(groups["kind"], "APIGroupList");
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "apps",
            "autoscaling",
            "batch",
            "networking.k8s.io",
            "metrics.k8s.io",
            "argoproj.io"
        ]
    );
    let argo = api_group_doc(&kinds, "argoproj.io").unwrap();
    assert_eq!(argo["kind"], "APIGroup");
    assert_eq!(
        argo["versions"],
        json!([{"groupVersion": "argoproj.io/v1", "version": "v1"},
               {"groupVersion": "argoproj.io/v1alpha1", "version": "v1alpha1"}])
    );
    assert_eq!(argo["preferredVersion"]["version"], "v1");
    assert!(api_group_doc(&kinds, "nope.example.com").is_none());
    assert!(api_group_doc(&kinds, "").is_none());

    let apps = group_version_resource_list(&kinds, "apps", "v1").unwrap();
    assert_eq!(apps["groupVersion"], "apps/v1");
    let deploy = find(&apps, "deployments");
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert_eq!(deploy["categories"], json!(["all"]));
    assert_eq!(deploy["singularName"], "deployment");
    assert_eq!(
        find(&apps, "deployments/scale"),
        &json!({"name": "deployments/scale", "singularName": "", "namespaced": true,
                "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"]})
    );
    assert_eq!(find(&apps, "deployments/status")["kind"], "Deployment");
    let hpa = group_version_resource_list(&kinds, "autoscaling", "v2").unwrap();
    assert_eq!(
        find(&hpa, "horizontalpodautoscalers")["shortNames"],
        json!(["hpa"])
    );
    let metrics = group_version_resource_list(&kinds, "metrics.k8s.io", "v1beta1").unwrap();
    let pods = find(&metrics, "pods");
    assert_eq!(pods["kind"], "PodMetrics");
    assert_eq!(pods["verbs"], json!(["get", "list", "watch"]));
    assert!(pods.get("storageVersionHash").is_none());
    let ro = group_version_resource_list(&kinds, "argoproj.io", "v1alpha1").unwrap();
    assert_eq!(find(&ro, "rollouts")["shortNames"], json!(["ro"]));
    assert!(group_version_resource_list(&kinds, "apps", "v2").is_none());
    assert!(group_version_resource_list(&kinds, "", "v1").is_none());
}

#[test]
fn versions_sort_like_kubernetes() {
    let mut v = vec![
        "v1alpha1", "foo", "v1beta1", "v2", "v1", "v1beta2", "v10", "v2alpha3",
    ];
    v.sort_by_key(|s| version_priority(s));
    assert_eq!(
        v,
        ["v10", "v2", "v1", "v1beta2", "v1beta1", "v2alpha3", "v1alpha1", "foo"]
    );
}

#[actix_web::test]
async fn routes_answer_json() {
    let app = atest::init_service(
        App::new()
            .app_data(web::Data::new(state(true)))
            .configure(configure),
    )
    .await;
    for (path, kind) in [
        ("/api", "APIVersions"),
        ("/api/v1", "APIResourceList"),
        ("/apis", "APIGroupList"),
        ("/apis/", "APIGroupList"),
        ("/apis/apps", "APIGroup"),
        ("/apis/argoproj.io/", "APIGroup"),
        ("/apis/apps/v1", "APIResourceList"),
        ("/apis/batch/v1/", "APIResourceList"),
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
    for path in [
        "/apis/nope.example.com",
        "/apis/apps/v2",
        "/openapi/v3/apis/apps/v2",
        "/openapi/v3/apis/nope/v1",
    ] {
        let req = atest::TestRequest::get().uri(path).to_request();
        let resp = atest::call_service(&app, req).await;
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = atest::read_body_json(resp).await;
        assert_eq!(body["kind"], "Status", "{path}");
        assert_eq!(body["reason"], "NotFound", "{path}");
    }
    let req = atest::TestRequest::get().uri("/version").to_request();
    let body: Value = atest::call_and_read_body_json(&app, req).await;
    assert_eq!(body["gitVersion"], GIT_VERSION);

    let req = atest::TestRequest::get().uri("/openapi/v3").to_request();
    let index: Value = atest::call_and_read_body_json(&app, req).await;
    let paths = index["paths"].as_object().unwrap();
    for gv in [
        "api/v1",
        "apis/apps/v1",
        "apis/autoscaling/v2",
        "apis/batch/v1",
        "apis/networking.k8s.io/v1",
        "apis/metrics.k8s.io/v1beta1",
        "apis/argoproj.io/v1",
        "apis/argoproj.io/v1alpha1",
    ] {
        let url = paths[gv]["serverRelativeURL"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&format!("/openapi/v3/{gv}?hash=")), "{url}");
        let req = atest::TestRequest::get().uri(&url).to_request();
        let resp = atest::call_service(&app, req).await;
        assert_eq!(
            resp.headers().get(header::CACHE_CONTROL).unwrap(),
            "public, immutable"
        );
        let body: Value = atest::read_body_json(resp).await;
        assert_eq!(body["openapi"], "3.0.0");
        let req = atest::TestRequest::get()
            .uri(&format!("/openapi/v3/{gv}"))
            .to_request();
        let resp = atest::call_service(&app, req).await;
        assert_eq!(
            resp.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-cache, private"
        );
    }
    assert_eq!(paths.len(), 8);
}

#[actix_web::test]
async fn pretty_indents() {
    let app = atest::init_service(
        App::new()
            .app_data(web::Data::new(state(false)))
            .configure(configure),
    )
    .await;
    let req = atest::TestRequest::get()
        .uri("/version?pretty=true")
        .to_request();
    let body = atest::call_and_read_body(&app, req).await;
    assert!(std::str::from_utf8(&body)
        .unwrap()
        .contains("\n  \"major\""));
}
