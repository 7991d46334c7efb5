//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: kubectl's Service columns.

use serde_json::Value;

/// Whether the `Accept` header asks for a `meta.k8s.io/v1` Table.
pub fn wants_table(accept: &str) -> bool {
    let _ = accept;
    false
}

/// A `Table` of Services (NAME, TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), AGE), each row
/// carrying the object (or its metadata, per `includeObject`). `list_metadata` is the
/// list's `metadata` (resourceVersion, continue).
pub fn service_table(items: &[Value], include_object: &str, list_metadata: Value) -> Value {
    let _ = (items, include_object);
    serde_json::json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_metadata, "columnDefinitions": [], "rows": []})
}
