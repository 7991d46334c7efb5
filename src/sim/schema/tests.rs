use super::*;

/// The merge key of the list at `dotted` (`spec.template.spec.containers`) in objects of
/// `kind`, if it is merged by key.
fn merge_key(kind: Kind, dotted: &str) -> Option<&'static str> {
    PatchMeta::of(kind).path(dotted).merge_key()
}
use crate::sim::kinds::{self, CustomType};
use crate::sim::patch::{self, PatchType};
use serde_json::json;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"limits": {"cpu": "500m", "memory": 134217728},
                                      "requests": {"cpu": 0.25, "memory": "64Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}}
                    }]
                }
            }
        }
    })
}

#[test]
fn the_pack_is_whole() {
    let defs = definitions();
    assert!(defs.len() > 200, "{}", defs.len());
    for t in kinds::BUILTINS.iter() {
        let name = t.schema.expect("built-in kinds have a schema");
        let schema = definition(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(
            schema["x-kubernetes-group-version-kind"][0],
            json!({"group": t.group, "kind": t.kind, "version": t.version}),
            "{name}"
        );
        assert!(definition(&format!("{name}List")).is_some(), "{name}List");
    }
    // Every reference resolves, and the closure of everything is everything.
    let all = closure(defs.keys().map(String::as_str));
    assert_eq!(all.len(), defs.len());
    fn refs(v: &Value) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref") {
                    let name = r.as_str().and_then(|r| r.strip_prefix(REF_PREFIX));
                    assert!(name.and_then(definition).is_some(), "unresolved {r}");
                }
                m.values().for_each(refs);
            }
            Value::Array(a) => a.iter().for_each(refs),
            _ => {}
        }
    }
    defs.values().for_each(refs);
    assert_eq!(
        definition("io.k8s.apimachinery.pkg.util.intstr.IntOrString").unwrap()["format"],
        "int-or-string"
    );
    let deployment = closure(["io.k8s.api.apps.v1.Deployment"]);
    assert!(deployment.contains("io.k8s.api.core.v1.Container"));
    assert!(!deployment.contains("io.k8s.api.core.v1.Service"));
}

#[test]
fn a_valid_deployment_passes_unchanged() {
    let mut d = deployment();
    let before = d.clone();
    let warnings = check(Kind::Deployment, &mut d, FieldValidation::Strict).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(d, before);
}

#[test]
fn unknown_fields_are_pruned_and_reported() {
    let mut d = deployment();
    d["spec"]["foo"] = json!(1);
    d["metadata"]["bar"] = json!({"x": 1});
    d["spec"]["template"]["spec"]["containers"][0]["bogus"] = json!(true);
    d["status"] = json!({"replicas": 1, "nope": "x"});
    let warnings = check(Kind::Deployment, &mut d, FieldValidation::Warn).unwrap();
    assert_eq!(
        warnings,
        vec![
            r#"unknown field "metadata.bar""#,
            r#"unknown field "spec.template.spec.containers[0].bogus""#,
            r#"unknown field "spec.foo""#,
            r#"unknown field "status.nope""#,
        ]
    );
    assert!(d["spec"].get("foo").is_none());
    assert!(d["metadata"].get("bar").is_none());
    assert!(d["spec"]["template"]["spec"]["containers"][0]
        .get("bogus")
        .is_none());
    assert_eq!(d["status"], json!({"replicas": 1}));

    // Ignore prunes silently.
    let mut d = deployment();
    d["spec"]["foo"] = json!(1);
    assert!(check(Kind::Deployment, &mut d, FieldValidation::Ignore)
        .unwrap()
        .is_empty());
    assert!(d["spec"].get("foo").is_none());
}

#[test]
fn strict_refuses_unknown_fields() {
    let mut d = deployment();
    d["spec"]["foo"] = json!(1);
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["x"] = json!(1);
    let err = check(Kind::Deployment, &mut d, FieldValidation::Strict).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(err.reason, "BadRequest");
    assert_eq!(
        err.message,
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: \
         unknown field \"spec.template.spec.containers[0].ports[0].x\", unknown field \"spec.foo\""
    );
    let mut hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                         "spec": {"maxReplicas": 3, "oops": 1}});
    let err = check(
        Kind::HorizontalPodAutoscaler,
        &mut hpa,
        FieldValidation::Strict,
    )
    .unwrap_err();
    assert!(
        err.message.starts_with(
            "HorizontalPodAutoscaler in version \"v2\" cannot be handled as a HorizontalPodAutoscaler: strict decoding error: unknown field \"spec.oops\""
        ),
        "{}",
        err.message
    );
}

fn type_error(kind: Kind, edit: impl FnOnce(&mut Value)) -> String {
    let mut d = match kind {
        k if k == Kind::Deployment => deployment(),
        _ => json!({}),
    };
    edit(&mut d);
    let err = check(kind, &mut d, FieldValidation::Ignore).unwrap_err();
    assert_eq!(err.code, 400);
    err.message
}

#[test]
fn type_errors_have_the_go_decoders_wording() {
    let prefix = "Deployment in version \"v1\" cannot be handled as a Deployment: json: ";
    for (edit, expected) in [
        (
            Box::new(|d: &mut Value| d["spec"]["replicas"] = json!("3")) as Box<dyn FnOnce(&mut Value)>,
            "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            Box::new(|d: &mut Value| d["spec"]["replicas"] = json!(1.5)),
            "cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            Box::new(|d: &mut Value| d["spec"]["replicas"] = json!(3_000_000_000u64)),
            "cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            Box::new(|d: &mut Value| d["spec"]["paused"] = json!("yes")),
            "cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool",
        ),
        (
            Box::new(|d: &mut Value| d["spec"]["template"] = json!("x")),
            "cannot unmarshal string into Go struct field DeploymentSpec.spec.template of type v1.PodTemplateSpec",
        ),
        (
            Box::new(|d: &mut Value| d["metadata"]["labels"]["n"] = json!(1)),
            "cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
        ),
        (
            Box::new(|d: &mut Value| d["spec"]["template"]["spec"]["containers"] = json!({"name": "x"})),
            "cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container",
        ),
        (
            Box::new(|d: &mut Value| {
                d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!("80")
            }),
            "cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32",
        ),
        (
            Box::new(|d: &mut Value| d["spec"]["template"]["spec"]["containers"][0]["args"] = json!([1])),
            "cannot unmarshal number into Go struct field Container.spec.template.spec.containers.args of type string",
        ),
        (
            Box::new(|d: &mut Value| d["metadata"]["generation"] = json!(true)),
            "cannot unmarshal bool into Go struct field ObjectMeta.metadata.generation of type int64",
        ),
        (
            Box::new(|d: &mut Value| d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!(true)),
            "cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32",
        ),
    ] {
        assert_eq!(
            type_error(Kind::Deployment, edit),
            format!("{prefix}{expected}")
        );
    }
    let quantity = type_error(Kind::Deployment, |d| {
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("lots")
    });
    assert!(
        quantity.ends_with("cannot be handled as a Deployment: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        "{quantity}"
    );
    let suffix = type_error(Kind::Deployment, |d| {
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("1ki")
    });
    assert!(
        suffix.ends_with("unable to parse quantity's suffix"),
        "{suffix}"
    );
    let not_object = check(Kind::ConfigMap, &mut json!([1]), FieldValidation::Warn).unwrap_err();
    assert_eq!(
        not_object.message,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal array into Go value of type struct"
    );
    let hpa = type_error(Kind::HorizontalPodAutoscaler, |h| {
        h["spec"] = json!({"maxReplicas": "3"})
    });
    assert_eq!(
        hpa,
        "HorizontalPodAutoscaler in version \"v2\" cannot be handled as a HorizontalPodAutoscaler: json: cannot unmarshal string into Go struct field HorizontalPodAutoscalerSpec.spec.maxReplicas of type int32"
    );
}

#[test]
fn int_or_string_quantities_maps_and_nulls() {
    let mut d = deployment();
    let c = &mut d["spec"]["template"]["spec"]["containers"][0];
    c["ports"][0]["containerPort"] = json!(8080);
    c["readinessProbe"]["httpGet"]["port"] = json!(8080);
    c["resources"]["limits"] =
        json!({"cpu": 2, "memory": "1Gi", "nvidia.com/gpu": "1", "x": "1e3"});
    d["spec"]["template"]["metadata"]["annotations"] = json!({"any/key": "v"});
    d["spec"]["replicas"] = Value::Null;
    d["spec"]["minReadySeconds"] = json!(0);
    d["metadata"]["creationTimestamp"] = Value::Null;
    d["metadata"]["managedFields"] = json!([{"fieldsV1": {"f:spec": {"f:anything": {}}}}]);
    let warnings = check(Kind::Deployment, &mut d, FieldValidation::Strict).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    // null struct fields are gone, as after a decode and encode.
    assert!(d["spec"].get("replicas").is_none());
    assert!(d["metadata"].get("creationTimestamp").is_none());
    assert_eq!(d["spec"]["minReadySeconds"], 0);

    let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": 1}});
    let err = check(Kind::Secret, &mut secret, FieldValidation::Warn).unwrap_err();
    assert!(
        err.message
            .ends_with("Go struct field Secret.data of type []uint8"),
        "{}",
        err.message
    );
}

#[test]
fn custom_types_pass_unchanged() {
    let kind = kinds::intern(&CustomType {
        group: "schema.example.com".into(),
        version: "v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
        singular: None,
        namespaced: true,
        short_names: vec![],
        categories: vec![],
    })
    .unwrap();
    let mut w = json!({"apiVersion": "schema.example.com/v1", "kind": "Widget",
                       "spec": {"anything": [1, "x"]}, "top": null});
    let before = w.clone();
    assert!(check(kind, &mut w, FieldValidation::Strict)
        .unwrap()
        .is_empty());
    assert_eq!(w, before);
    assert_eq!(merge_key(kind, "spec.items"), None);
}

#[test]
fn merge_keys_come_from_the_schema() {
    let d = Kind::Deployment;
    assert_eq!(merge_key(d, "spec.template.spec.containers"), Some("name"));
    assert_eq!(
        merge_key(d, "spec.template.spec.containers.env"),
        Some("name")
    );
    assert_eq!(
        merge_key(d, "spec.template.spec.containers.ports"),
        Some("containerPort")
    );
    assert_eq!(
        merge_key(d, "spec.template.spec.containers.volumeMounts"),
        Some("mountPath")
    );
    assert_eq!(merge_key(d, "spec.template.spec.volumes"), Some("name"));
    assert_eq!(merge_key(d, "metadata.ownerReferences"), Some("uid"));
    assert_eq!(merge_key(d, "spec.template.spec.containers.args"), None);
    assert_eq!(merge_key(Kind::Service, "spec.ports"), Some("port"));
    assert_eq!(
        merge_key(
            Kind::CronJob,
            "spec.jobTemplate.spec.template.spec.containers"
        ),
        Some("name")
    );
    let volumes = PatchMeta::of(d)
        .path("spec.template.spec.volumes")
        .strategy();
    assert!(volumes.merge && volumes.retain_keys && !volumes.replace);
    let strategy = PatchMeta::of(d).path("spec.strategy").strategy();
    assert!(strategy.retain_keys && !strategy.merge);
    let finalizers = PatchMeta::of(Kind::Namespace)
        .path("metadata.finalizers")
        .strategy();
    assert!(finalizers.merge);
    assert_eq!(PatchMeta::of(d).path("spec.nope.deeper").merge_key(), None);
}

#[test]
fn strategic_merge_patch_merges_containers_env_and_ports_by_key() {
    let mut target = deployment();
    target["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "web", "image": "nginx:1.27",
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
         "args": ["--a"]},
        {"name": "sidecar", "image": "envoy:1"}
    ]);
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.28",
         "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}, {"name": "A", "$patch": "delete"}],
         "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "name": "https"}],
         "args": ["--b"]},
        {"name": "log", "image": "fluentbit:3"}
    ]}}}});
    let out = patch::apply(
        Kind::Deployment,
        PatchType::Strategic,
        &target,
        patch.to_string().as_bytes(),
    )
    .unwrap();
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers,
        &json!([
            {"name": "web", "image": "nginx:1.28",
             "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
             "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"},
                       {"containerPort": 9090, "name": "metrics"},
                       {"containerPort": 443, "name": "https"}],
             "args": ["--b"]},
            {"name": "sidecar", "image": "envoy:1"},
            {"name": "log", "image": "fluentbit:3"}
        ])
    );
    // The rest of the object is untouched.
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(out["metadata"], target["metadata"]);

    // A container without its merge key is refused, as by a real server.
    let err = patch::apply(
        Kind::Deployment,
        PatchType::Strategic,
        &target,
        br#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#,
    )
    .unwrap_err();
    assert_eq!(err.code, 400);
    assert!(err
        .message
        .contains("does not contain declared merge key: name"));

    // retainKeys: switching the strategy drops rollingUpdate.
    let out = patch::apply(
        Kind::Deployment,
        PatchType::Strategic,
        &target,
        br#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#,
    )
    .unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

    // A subresource's object has its own schema.
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 2}});
    let out = patch::apply_as(
        PatchMeta::of_definition(SCALE),
        PatchType::Strategic,
        &scale,
        br#"{"spec":{"replicas":5}}"#,
    )
    .unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert!(definition(SCALE).is_some());

    // A merge patch replaces lists whatever the schema says.
    let out = patch::apply(
        Kind::Deployment,
        PatchType::Merge,
        &target,
        br#"{"spec":{"template":{"spec":{"containers":[{"name":"only"}]}}}}"#,
    )
    .unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "only"}])
    );
}

#[test]
fn no_panics_on_odd_input() {
    let odd = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!({"spec": []}),
        json!({"spec": {"template": {"spec": {"containers": [null, 1, "x", [], {"ports": [[]]}]}}}}),
        json!({"metadata": {"labels": [], "annotations": "x", "ownerReferences": {}}}),
        json!({"spec": {"replicas": -1, "selector": null, "strategy": {"rollingUpdate": {"maxSurge": {}}}}}),
        json!({"status": {"conditions": [{"lastTransitionTime": 5}]}}),
    ];
    for kind in kinds::BUILTINS.iter().map(|t| Kind::of(t)) {
        for v in &odd {
            for validation in [
                FieldValidation::Ignore,
                FieldValidation::Warn,
                FieldValidation::Strict,
            ] {
                let _ = check(kind, &mut v.clone(), validation);
            }
            let _ = patch::apply(
                kind,
                PatchType::Strategic,
                &deployment(),
                v.to_string().as_bytes(),
            );
        }
    }
    assert!(parse_quantity("").is_err());
    assert!(parse_quantity("+").is_err());
    assert!(parse_quantity(".").is_err());
    assert!(parse_quantity("1..2").is_err());
    assert!(parse_quantity("1.5Gi").is_ok());
    assert!(parse_quantity("-2e-3").is_ok());
    assert!(parse_quantity("12e").is_err());
}
