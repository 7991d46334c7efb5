//! `fieldValidation=Strict` (and `Warn`): the unknown fields of an object, as a real API
//! server reports them.
//!
//! The known fields are those of the schemas in the simulator's own OpenAPI document
//! ([`super::discovery::OPENAPI_V3_API_V1`]), so what kubectl is told and what the server
//! enforces cannot drift apart. Paths are written as kube-apiserver writes them: dotted from
//! the object's root without a leading dot, list items indexed (`spec.bogus`,
//! `spec.ports[0].bogus`, `metadata.bogus`). Maps with free keys (labels, annotations,
//! selector) and free-form objects (`managedFields[].fieldsV1`) accept anything. Only unknown
//! field names are reported here; type errors are the validation code's business.

use serde_json::{Map, Value};
use std::sync::OnceLock;

fn schemas() -> &'static Map<String, Value> {
    static SCHEMAS: OnceLock<Map<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let doc: Value = serde_json::from_str(super::discovery::OPENAPI_V3_API_V1)
            .expect("the embedded OpenAPI document is valid JSON (unit-tested)");
        match doc.pointer("/components/schemas") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    })
}

/// Follows `allOf: [x]` and `$ref` to the schema they stand for.
fn resolve(mut schema: &'static Value) -> &'static Value {
    for _ in 0..8 {
        if let Some(first) = schema.get("allOf").and_then(|a| a.get(0)) {
            schema = first;
            continue;
        }
        match schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| schemas().get(name))
        {
            Some(target) => schema = target,
            None => return schema,
        }
    }
    schema
}

fn walk(value: &Value, schema: &'static Value, path: &str, out: &mut Vec<String>) {
    let schema = resolve(schema);
    match value {
        Value::Object(fields) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (key, sub) in fields {
                    let sub_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match props.get(key) {
                        Some(prop) => walk(sub, prop, &sub_path, out),
                        None => out.push(sub_path),
                    }
                }
            } else if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties") {
                for (key, sub) in fields {
                    walk(sub, additional, &format!("{path}.{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Paths of every field of `object` that the schema of `kind` (a core/v1 kind such as
/// `Service`, `Namespace`, `ServiceList`, or a meta kind such as `DeleteOptions`) does not
/// know. An unknown kind has no known fields to check against and yields nothing.
pub(crate) fn unknown_fields_of(kind: &str, object: &Value) -> Vec<String> {
    let schema = schemas()
        .get(&format!("io.k8s.api.core.v1.{kind}"))
        .or_else(|| schemas().get(&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}")));
    let mut out = Vec::new();
    if let Some(schema) = schema {
        walk(object, schema, "", &mut out);
    }
    out
}

/// The message of the 400 BadRequest a real server answers for a `fieldValidation=Strict`
/// request with unknown fields, or `None` when there are none:
/// `Service in version "v1" cannot be handled as a Service: strict decoding error: unknown
/// field "spec.bogus", unknown field "spec.ports[0].x"`. For `fieldValidation=Warn` a real
/// server instead adds one `Warning: 299 - "unknown field \"spec.bogus\""` header per field.
pub(crate) fn strict_error_message(kind: &str, unknown: &[String]) -> Option<String> {
    if unknown.is_empty() {
        return None;
    }
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Some(format!(
        "{kind} in version \"v1\" cannot be handled as a {kind}: strict decoding error: {}",
        fields.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths of every field of `service` that the v1 Service schema does not know.
    fn unknown_fields(service: &Value) -> Vec<String> {
        unknown_fields_of("Service", service)
    }
    use serde_json::json;

    fn full_service() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "web", "namespace": "default", "generateName": "w-",
                "uid": "0b9f3f7e-1c1f-4a57-9a37-1f0bdc2d6d8e", "resourceVersion": "12",
                "generation": 1, "creationTimestamp": "2024-01-01T00:00:00Z",
                "labels": {"app": "web", "any.key/x": "y"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "finalizers": ["a/b"],
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "n", "uid": "u",
                                      "controller": true, "blockOwnerDeletion": false}],
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                                    "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
                                    "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:spec": {"f:ports": {".": {}}}}}]
            },
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP",
                           "nodePort": 30080, "appProtocol": "http"}],
                "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                "externalIPs": ["1.2.3.4"], "loadBalancerIP": "5.6.7.8",
                "loadBalancerSourceRanges": ["10.0.0.0/8"],
                "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Cluster",
                "healthCheckNodePort": 31000, "allocateLoadBalancerNodePorts": true,
                "publishNotReadyAddresses": false, "loadBalancerClass": "x",
                "externalName": "", "trafficDistribution": "PreferClose"
            },
            "status": {
                "loadBalancer": {"ingress": [{"ip": "5.6.7.8", "hostname": "lb", "ipMode": "VIP",
                                              "ports": [{"port": 80, "protocol": "TCP", "error": "x"}]}]},
                "conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "m",
                                "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1}]
            }
        })
    }

    #[test]
    fn a_complete_service_has_no_unknown_fields() {
        assert_eq!(unknown_fields(&full_service()), Vec::<String>::new());
    }

    #[test]
    fn unknown_fields_are_reported_with_real_server_paths() {
        let mut svc = full_service();
        svc["spec"]["bogus"] = json!(1);
        svc["metadata"]["nope"] = json!("x");
        svc["spec"]["ports"][0]["extra"] = json!(true);
        svc["status"]["loadBalancer"]["ingress"][0]["what"] = json!({});
        svc["spec"]["sessionAffinityConfig"]["clientIP"]["deep"] = json!(1);
        svc["top"] = json!(null);
        let mut got = unknown_fields(&svc);
        got.sort();
        assert_eq!(
            got,
            vec![
                "metadata.nope",
                "spec.bogus",
                "spec.ports[0].extra",
                "spec.sessionAffinityConfig.clientIP.deep",
                "status.loadBalancer.ingress[0].what",
                "top",
            ]
        );
    }

    #[test]
    fn free_maps_and_free_objects_accept_anything() {
        let svc = json!({
            "metadata": {"labels": {"weird/key": "v"}, "annotations": {"a": "b"},
                         "managedFields": [{"fieldsV1": {"f:anything": {"x": 1}}}]},
            "spec": {"selector": {"whatever": "x"}, "ports": [{"port": 1, "targetPort": 8080}]}
        });
        assert!(unknown_fields(&svc).is_empty());
    }

    #[test]
    fn namespace_and_other_kinds() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes"], "oops": 1},
                        "status": {"phase": "Active"}});
        assert_eq!(unknown_fields_of("Namespace", &ns), vec!["spec.oops"]);
        let opts = json!({"kind": "DeleteOptions", "propagationPolicy": "Background", "x": 1});
        assert_eq!(unknown_fields_of("DeleteOptions", &opts), vec!["x"]);
        assert!(unknown_fields_of("NoSuchKind", &opts).is_empty());
    }

    #[test]
    fn message_like_kube_apiserver() {
        assert_eq!(strict_error_message("Service", &[]), None);
        assert_eq!(
            strict_error_message("Service", &["spec.bogus".into(), "x".into()]).unwrap(),
            "Service in version \"v1\" cannot be handled as a Service: strict decoding error: \
             unknown field \"spec.bogus\", unknown field \"x\""
        );
    }
}
