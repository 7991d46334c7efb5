//! `fieldValidation=Strict` (and `Warn`): the unknown fields of an object, as a real API
//! server reports them, and the messages a real server sends about a body it cannot decode.
//!
//! The known fields are those of the schema pack ([`super::schema`]), from which the
//! simulator's OpenAPI documents are built too, so what kubectl is told and what the server
//! enforces cannot drift apart. Paths are written as kube-apiserver writes them: dotted from
//! the object's root without a leading dot, list items indexed (`spec.bogus`,
//! `spec.ports[0].bogus`, `metadata.bogus`). Maps with free keys (labels, annotations,
//! selector) and free-form objects (`managedFields[].fieldsV1`) accept anything. Only unknown
//! field names are reported here; type errors are [`super::schema::check`]'s business.

use serde_json::Value;

/// Paths of every field of `object` that the schema of `kind` (a core/v1 kind such as
/// `Service`, `Namespace`, `ServiceList`, or a meta kind such as `DeleteOptions`) does not
/// know. An unknown kind has no known fields to check against and yields nothing.
pub(crate) fn unknown_fields_of(kind: &str, object: &Value) -> Vec<String> {
    [
        format!("io.k8s.api.core.v1.{kind}"),
        format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}"),
    ]
    .iter()
    .find_map(|name| super::schema::unknown_fields(name, object))
    .unwrap_or_default()
}

/// The `Warning` a real server sends for one unknown field it dropped
/// (`fieldValidation=Warn`): `unknown field "spec.bogus"`.
pub(crate) fn unknown_field_warning(path: &str) -> String {
    format!("unknown field {path:?}")
}

/// The message of a 400 for a body that cannot be decoded as `kind` of `version` (`v1`,
/// `v2`): `Deployment in version "v1" cannot be handled as a Deployment: <why>`.
pub(crate) fn cannot_handle(kind: &str, version: &str, why: &str) -> String {
    format!("{kind} in version {version:?} cannot be handled as a {kind}: {why}")
}

/// The message of the 400 BadRequest a real server answers for a `fieldValidation=Strict`
/// request with unknown fields, or `None` when there are none:
/// `Service in version "v1" cannot be handled as a Service: strict decoding error: unknown
/// field "spec.bogus", unknown field "spec.ports[0].x"`. For `fieldValidation=Warn` a real
/// server instead adds one `Warning: 299 - "unknown field \"spec.bogus\""` header per field.
pub(crate) fn strict_error_message(kind: &str, unknown: &[String]) -> Option<String> {
    strict_error_message_in(kind, "v1", unknown)
}

/// [`strict_error_message`] for a kind of another version (`HorizontalPodAutoscaler in
/// version "v2" ...`).
pub(crate) fn strict_error_message_in(
    kind: &str,
    version: &str,
    unknown: &[String],
) -> Option<String> {
    if unknown.is_empty() {
        return None;
    }
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Some(cannot_handle(
        kind,
        version,
        &format!("strict decoding error: {}", fields.join(", ")),
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
