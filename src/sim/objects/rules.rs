//! What differs per kind: the name rule, defaults (as the API server's defaulters set them),
//! validation and immutable fields (kube-apiserver's messages and field paths), whether
//! `metadata.generation` is kept, and the status the kind's controller would write at once
//! (a Deployment with 3 replicas is 3/3 ready, a Job is Complete) so portals and kubectl
//! show a healthy cluster.

use crate::sim::errors::Cause;
use crate::sim::store::{Generic, Kind};
use crate::sim::validation;
use base64::Engine;
use serde_json::{json, Map, Value};

/// The kind's rule for `metadata.name`.
pub(super) fn name_rule(kind: Kind) -> fn(&str) -> Vec<String> {
    if kind == Kind::CronJob {
        |s| {
            let mut e = validation::dns1123_subdomain(s);
            if s.len() > 52 {
                e.push("must be no more than 52 characters".into());
            }
            e
        }
    } else {
        validation::dns1123_subdomain
    }
}

/// Whether objects of the kind carry `metadata.generation` (those with a `spec`).
pub(super) fn has_generation(kind: Kind) -> bool {
    !(kind == Kind::ConfigMap || kind == Kind::Secret || kind == Kind::Event)
}

fn obj_mut<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("just made an object")
}

fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), value);
    }
}

/// Pod template defaults (`spec.template.spec`), as the core defaulters set them.
fn pod_spec_defaults(spec: &mut Map<String, Value>, restart: &str) {
    default(spec, "restartPolicy", json!(restart));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                let last = image.rsplit('/').next().unwrap_or("");
                let latest = !last.contains(':') || last.ends_with(":latest");
                let policy = if latest && !image.contains('@') {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                default(c, "imagePullPolicy", json!(policy));
                default(c, "terminationMessagePath", json!("/dev/termination-log"));
                default(c, "terminationMessagePolicy", json!("File"));
                default(c, "resources", json!({}));
                if let Some(Value::Array(ports)) = c.get_mut("ports") {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        default(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

fn template_defaults(spec: &mut Map<String, Value>, restart: &str) {
    let template = obj_mut(spec, "template");
    let pod = obj_mut(template, "spec");
    pod_spec_defaults(pod, restart);
}

/// The update strategy at `spec.{key}`, as the apps defaulters complete it (kubectl's
/// generated manifests send `strategy: {}`): type RollingUpdate when unset, then each missing
/// parameter of `rolling`; a StatefulSet (`always` false) gets them only when its type was
/// unset or its `rollingUpdate` is given.
fn strategy_defaults(spec: &mut Map<String, Value>, key: &str, rolling: Value, always: bool) {
    let strategy = obj_mut(spec, key);
    let unset = strategy.get("type").is_none_or(|t| t.is_null() || t == "");
    if unset {
        strategy.insert("type".into(), json!("RollingUpdate"));
    }
    let given = strategy.get("rollingUpdate").is_some_and(|r| !r.is_null());
    if strategy.get("type") != Some(&json!("RollingUpdate")) || !(always || unset || given) {
        return;
    }
    let params = obj_mut(strategy, "rollingUpdate");
    for (k, v) in rolling.as_object().into_iter().flatten() {
        default(params, k, v.clone());
    }
}

/// Sets the defaults the API server's defaulters set for the kind.
pub(super) fn defaults(obj: &mut Generic) {
    let kind = obj.kind;
    if kind == Kind::Secret {
        default(&mut obj.body, "type", json!("Opaque"));
        if let Some(Value::Object(string_data)) = obj.body.shift_remove("stringData") {
            let data = obj_mut(&mut obj.body, "data");
            for (k, v) in string_data {
                let text = v.as_str().unwrap_or("").to_string();
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
        return;
    }
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let name = obj.metadata.name().to_string();
    if !obj.body.contains_key("spec") && !has_generation(kind) {
        return;
    }
    if kind == Kind::Deployment {
        let spec = obj_mut(&mut obj.body, "spec");
        default(spec, "replicas", json!(1));
        let rolling = json!({"maxUnavailable": "25%", "maxSurge": "25%"});
        strategy_defaults(spec, "strategy", rolling, true);
        default(spec, "revisionHistoryLimit", json!(10));
        default(spec, "progressDeadlineSeconds", json!(600));
        template_defaults(spec, "Always");
    } else if kind == Kind::ReplicaSet {
        let spec = obj_mut(&mut obj.body, "spec");
        default(spec, "replicas", json!(1));
        template_defaults(spec, "Always");
    } else if kind == Kind::StatefulSet {
        let spec = obj_mut(&mut obj.body, "spec");
        default(spec, "replicas", json!(1));
        default(spec, "podManagementPolicy", json!("OrderedReady"));
        strategy_defaults(spec, "updateStrategy", json!({"partition": 0}), false);
        default(spec, "revisionHistoryLimit", json!(10));
        default(
            spec,
            "persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        );
        template_defaults(spec, "Always");
    } else if kind == Kind::DaemonSet {
        let spec = obj_mut(&mut obj.body, "spec");
        let rolling = json!({"maxUnavailable": 1, "maxSurge": 0});
        strategy_defaults(spec, "updateStrategy", rolling, true);
        default(spec, "revisionHistoryLimit", json!(10));
        template_defaults(spec, "Always");
    } else if kind == Kind::Job {
        let spec = obj_mut(&mut obj.body, "spec");
        job_defaults(spec, &uid, &name);
    } else if kind == Kind::CronJob {
        let spec = obj_mut(&mut obj.body, "spec");
        default(spec, "concurrencyPolicy", json!("Allow"));
        default(spec, "suspend", json!(false));
        default(spec, "successfulJobsHistoryLimit", json!(3));
        default(spec, "failedJobsHistoryLimit", json!(1));
        let jt = obj_mut(spec, "jobTemplate");
        let jspec = obj_mut(jt, "spec");
        template_defaults(jspec, "Never");
    } else if kind == Kind::HorizontalPodAutoscaler {
        let spec = obj_mut(&mut obj.body, "spec");
        default(spec, "minReplicas", json!(1));
    }
}

fn job_defaults(spec: &mut Map<String, Value>, uid: &str, name: &str) {
    if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
        spec.insert("completions".into(), json!(1));
    }
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    template_defaults(spec, "Never");
    if !uid.is_empty() && spec.get("manualSelector") != Some(&json!(true)) {
        let labels = json!({
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        });
        default(
            spec,
            "selector",
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        let meta = obj_mut(obj_mut(spec, "template"), "metadata");
        let l = obj_mut(meta, "labels");
        for (k, v) in labels.as_object().expect("object") {
            l.entry(k.clone()).or_insert(v.clone());
        }
    }
}

fn go_map(v: Option<&Value>) -> String {
    let entries: Vec<String> = v
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k:?}:{}", v))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    format!("map[string]string{{{}}}", entries.join(", "))
}

/// Whether `selector` (a LabelSelector) selects `labels`.
fn selects(selector: &Value, labels: Option<&Value>) -> bool {
    let labels = labels.and_then(Value::as_object);
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        if !m.iter().all(|(k, v)| get(k) == v.as_str()) {
            return false;
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let ok = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

fn selector_is_empty(selector: &Value) -> bool {
    let empty = |k: &str| {
        selector.get(k).is_none_or(|v| {
            v.as_object().is_some_and(Map::is_empty)
                || v.as_array().is_some_and(Vec::is_empty)
                || v.is_null()
        })
    };
    empty("matchLabels") && empty("matchExpressions")
}

fn pod_spec_causes(spec: Option<&Value>, at: &str, restart: &[&str], causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::required(format!("{at}.containers"), "")),
        Some(cs) if cs.is_empty() => causes.push(Cause::required(format!("{at}.containers"), "")),
        Some(cs) => {
            let mut seen = Vec::new();
            for (i, c) in cs.iter().enumerate() {
                let field = format!("{at}.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => causes.push(Cause::required(format!("{field}.name"), "")),
                    Some(n) => {
                        for e in validation::dns1123_label(n) {
                            causes.push(Cause::invalid(format!("{field}.name"), &json!(n), &e));
                        }
                        if seen.contains(&n) {
                            causes.push(Cause::duplicate(format!("{field}.name"), &json!(n)));
                        }
                        seen.push(n);
                    }
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    causes.push(Cause::required(format!("{field}.image"), ""));
                }
            }
        }
    }
    if let Some(policy) = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
    {
        if !restart.contains(&policy) {
            causes.push(Cause::not_supported(
                format!("{at}.restartPolicy"),
                policy,
                restart,
            ));
        }
    }
}

/// Selector, template labels and pod template of a workload (`spec` at `at`).
fn workload_causes(spec: Option<&Value>, at: &str, kind_word: &str, causes: &mut Vec<Cause>) {
    let selector = spec.and_then(|s| s.get("selector"));
    let template = spec.and_then(|s| s.get("template"));
    match selector {
        None | Some(Value::Null) => causes.push(Cause::required(format!("{at}.selector"), "")),
        Some(sel) if selector_is_empty(sel) => causes.push(Cause::invalid(
            format!("{at}.selector"),
            &json!("v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"),
            &format!("empty selector is invalid for {kind_word}"),
        )),
        Some(sel) => {
            let labels = template.and_then(|t| t.pointer("/metadata/labels"));
            if !selects(sel, labels) {
                causes.push(Cause::invalid(
                    format!("{at}.template.metadata.labels"),
                    &Value::String(go_map(labels)),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    match template {
        None | Some(Value::Null) => causes.push(Cause::required(format!("{at}.template"), "")),
        Some(t) => pod_spec_causes(
            t.get("spec"),
            &format!("{at}.template.spec"),
            &["Always"],
            causes,
        ),
    }
    if let Some(r) = spec.and_then(|s| s.get("replicas")).and_then(Value::as_i64) {
        if r < 0 {
            causes.push(Cause::invalid(
                format!("{at}.replicas"),
                &json!(r),
                "must be greater than or equal to 0",
            ));
        }
    }
}

fn immutable(field: &str, new: Option<&Value>, old: Option<&Value>, causes: &mut Vec<Cause>) {
    if new != old {
        causes.push(Cause::invalid(
            field,
            new.unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
}

const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn config_keys(obj: &Generic, fields: &[&str], causes: &mut Vec<Cause>) {
    for field in fields {
        if let Some(m) = obj.body.get(*field).and_then(Value::as_object) {
            for k in m.keys() {
                let ok = !k.is_empty()
                    && k.len() <= 253
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
                if !ok {
                    causes.push(Cause::invalid(
                        format!("{field}[{k}]"),
                        &json!(k),
                        CONFIG_KEY_MSG,
                    ));
                }
            }
        }
    }
}

fn cron_is_valid(schedule: &str) -> bool {
    let s = schedule.trim();
    if s.starts_with('@') {
        return matches!(
            s,
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly"
        ) || s.starts_with("@every ");
    }
    let s = s
        .strip_prefix("CRON_TZ=")
        .or_else(|| s.strip_prefix("TZ="))
        .map(|rest| rest.split_once(' ').map_or("", |(_, r)| r))
        .unwrap_or(s);
    let fields: Vec<&str> = s.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().all(|f| {
            f.split(',').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"*/-?".contains(&b))
            })
        })
}

/// Validation of the kind (`old` set for updates: immutable fields).
pub(super) fn validate(obj: &Generic, old: Option<&Generic>) -> Vec<Cause> {
    let kind = obj.kind;
    let mut causes = Vec::new();
    let spec = obj.body.get("spec");
    let old_spec = old.and_then(|o| o.body.get("spec"));
    if kind == Kind::Deployment
        || kind == Kind::ReplicaSet
        || kind == Kind::StatefulSet
        || kind == Kind::DaemonSet
    {
        let word = kind.resource().trim_end_matches('s');
        workload_causes(spec, "spec", word, &mut causes);
        if let Some(old_spec) = old_spec {
            immutable(
                "spec.selector",
                spec.and_then(|s| s.get("selector")),
                old_spec.get("selector"),
                &mut causes,
            );
            if kind == Kind::StatefulSet {
                let updatable = [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ];
                let rest = |s: Option<&Value>| -> Vec<(String, Value)> {
                    s.and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter(|(k, _)| !updatable.contains(&k.as_str()))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (mut a, mut b) = (rest(spec), rest(Some(old_spec)));
                a.sort_by(|x, y| x.0.cmp(&y.0));
                b.sort_by(|x, y| x.0.cmp(&y.0));
                if a != b {
                    causes.push(Cause::forbidden(
                        "spec",
                        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                    ));
                }
            }
        }
    } else if kind == Kind::Job {
        job_causes(spec, "spec", &mut causes);
        if let Some(old_spec) = old_spec {
            for f in ["template", "selector", "completions", "completionMode"] {
                immutable(
                    &format!("spec.{f}"),
                    spec.and_then(|s| s.get(f)),
                    old_spec.get(f),
                    &mut causes,
                );
            }
        }
    } else if kind == Kind::CronJob {
        match spec.and_then(|s| s.get("schedule")).and_then(Value::as_str) {
            None | Some("") => causes.push(Cause::required("spec.schedule", "")),
            Some(s) if !cron_is_valid(s) => causes.push(Cause::invalid(
                "spec.schedule",
                &json!(s),
                &format!("unparseable schedule: {s:?}"),
            )),
            Some(_) => {}
        }
        match spec.and_then(|s| s.get("jobTemplate")) {
            None | Some(Value::Null) => causes.push(Cause::required("spec.jobTemplate", "")),
            Some(jt) => {
                let jspec = jt.get("spec");
                let template = jspec.and_then(|s| s.get("template"));
                pod_spec_causes(
                    template.and_then(|t| t.get("spec")),
                    "spec.jobTemplate.spec.template.spec",
                    &["OnFailure", "Never"],
                    &mut causes,
                );
            }
        }
    } else if kind == Kind::HorizontalPodAutoscaler {
        let target = spec.and_then(|s| s.get("scaleTargetRef"));
        for f in ["kind", "name"] {
            if target
                .and_then(|t| t.get(f))
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                causes.push(Cause::required(format!("spec.scaleTargetRef.{f}"), ""));
            }
        }
        let max = spec
            .and_then(|s| s.get("maxReplicas"))
            .and_then(Value::as_i64);
        let min = spec
            .and_then(|s| s.get("minReplicas"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        match max {
            None => causes.push(Cause::invalid(
                "spec.maxReplicas",
                &json!(0),
                "must be greater than or equal to 1",
            )),
            Some(m) if m < 1 => causes.push(Cause::invalid(
                "spec.maxReplicas",
                &json!(m),
                "must be greater than or equal to 1",
            )),
            Some(m) if min > m => causes.push(Cause::invalid(
                "spec.minReplicas",
                &json!(min),
                "must be less than or equal to maxReplicas",
            )),
            _ => {}
        }
        if min < 1 {
            causes.push(Cause::invalid(
                "spec.minReplicas",
                &json!(min),
                "must be greater than or equal to 1",
            ));
        }
    } else if kind == Kind::Ingress {
        ingress_causes(spec, &mut causes);
    } else if kind == Kind::ConfigMap || kind == Kind::Secret {
        config_keys(obj, &["data", "binaryData"], &mut causes);
        if kind == Kind::Secret {
            secret_causes(obj, old, &mut causes);
        }
        if let Some(old) = old {
            if old.body.get("immutable") == Some(&json!(true)) {
                for f in ["data", "binaryData"] {
                    if obj.body.get(f) != old.body.get(f) {
                        causes.push(Cause::forbidden(
                            f,
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
                if obj.body.get("immutable") != Some(&json!(true)) {
                    causes.push(Cause::forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
    } else if kind == Kind::LimitRange {
        if let Some(limits) = spec.and_then(|s| s.get("limits")).and_then(Value::as_array) {
            for (i, l) in limits.iter().enumerate() {
                if l.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    causes.push(Cause::required(format!("spec.limits[{i}].type"), ""));
                }
            }
        }
    } else if kind == Kind::Event {
        let involved_ns = obj
            .body
            .get("involvedObject")
            .and_then(|o| o.get("namespace"))
            .and_then(Value::as_str);
        let ns = obj.metadata.namespace.as_deref().unwrap_or("");
        if let Some(ins) = involved_ns.filter(|n| !n.is_empty() && *n != ns) {
            causes.push(Cause::invalid(
                "involvedObject.namespace",
                &json!(ins),
                "does not match event.namespace",
            ));
        }
    }
    causes
}

fn job_causes(spec: Option<&Value>, at: &str, causes: &mut Vec<Cause>) {
    match spec.and_then(|s| s.get("template")) {
        None | Some(Value::Null) => causes.push(Cause::required(format!("{at}.template"), "")),
        Some(t) => pod_spec_causes(
            t.get("spec"),
            &format!("{at}.template.spec"),
            &["OnFailure", "Never"],
            causes,
        ),
    }
    for f in ["parallelism", "completions", "backoffLimit"] {
        if let Some(n) = spec.and_then(|s| s.get(f)).and_then(Value::as_i64) {
            if n < 0 {
                causes.push(Cause::invalid(
                    format!("{at}.{f}"),
                    &json!(n),
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
}

fn ingress_causes(spec: Option<&Value>, causes: &mut Vec<Cause>) {
    let rules = spec.and_then(|s| s.get("rules")).and_then(Value::as_array);
    let default_backend = spec.and_then(|s| s.get("defaultBackend"));
    if rules.is_none_or(Vec::is_empty) && default_backend.is_none_or(Value::is_null) {
        causes.push(Cause::invalid(
            "spec.rules",
            &json!("[]"),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let paths = rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (j, p) in paths.iter().enumerate() {
            let at = format!("spec.rules[{i}].http.paths[{j}]");
            match p.get("pathType").and_then(Value::as_str) {
                None | Some("") => causes.push(Cause::required(
                    format!("{at}.pathType"),
                    "pathType must be specified",
                )),
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(other) => causes.push(Cause::not_supported(
                    format!("{at}.pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            if let Some(path) = p.get("path").and_then(Value::as_str) {
                if !path.starts_with('/') {
                    causes.push(Cause::invalid(
                        format!("{at}.path"),
                        &json!(path),
                        "must be an absolute path",
                    ));
                }
            }
            let svc = p.pointer("/backend/service");
            let resource = p.pointer("/backend/resource");
            match (svc, resource) {
                (None, None) => causes.push(Cause::invalid(
                    format!("{at}.backend"),
                    &json!("{}"),
                    "must specify one of: `resource` or `service`",
                )),
                (Some(s), _) => {
                    if s.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                    {
                        causes.push(Cause::required(format!("{at}.backend.service.name"), ""));
                    }
                    let port = s.get("port");
                    let has_number = port.and_then(|p| p.get("number")).is_some();
                    let has_name = port.and_then(|p| p.get("name")).is_some();
                    if has_number == has_name {
                        causes.push(Cause::required(
                            format!("{at}.backend.service.port"),
                            "port name or number is required",
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}

fn secret_causes(obj: &Generic, old: Option<&Generic>, causes: &mut Vec<Cause>) {
    let typ = obj
        .body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("Opaque");
    if let Some(data) = obj.body.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let ok = v
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !ok {
                causes.push(Cause::invalid(
                    format!("data[{k}]"),
                    v,
                    "must be base64-encoded",
                ));
            }
        }
    }
    let has = |k: &str| obj.body.get("data").and_then(|d| d.get(k)).is_some();
    match typ {
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    causes.push(Cause::required(format!("data[{k}]"), ""));
                }
            }
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            causes.push(Cause::required("data[.dockerconfigjson]", ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            causes.push(Cause::required("data[username]", ""));
        }
        _ => {}
    }
    if let Some(old) = old {
        let old_type = old
            .body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("Opaque");
        if old_type != typ {
            causes.push(Cause::invalid("type", &json!(typ), "field is immutable"));
        }
    }
}

fn replicas(spec: Option<&Value>) -> i64 {
    spec.and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn images(spec: Option<&Value>) -> usize {
    spec.and_then(|s| s.pointer("/template/spec/containers"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// The status the kind's controller would write once it has caught up with the spec.
pub(crate) fn synthesize_status(obj: &mut Generic) {
    let kind = obj.kind;
    let generation = obj.metadata.generation.unwrap_or(1);
    let created = obj.metadata.creation_timestamp.clone().unwrap_or_default();
    let spec = obj.body.get("spec").cloned();
    let spec = spec.as_ref();
    let with_replicas = |mut status: Map<String, Value>, r: i64, keys: &[&str]| {
        for k in keys {
            if r > 0 || *k == "replicas" {
                status.insert((*k).into(), json!(r));
            }
        }
        status
    };
    let status = if kind == Kind::Deployment {
        let r = replicas(spec);
        let mut s = Map::new();
        s.insert("observedGeneration".into(), json!(generation));
        let mut s = with_replicas(
            s,
            r,
            &[
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
            ],
        );
        let rs_name = format!("{}-{}", obj.metadata.name(), template_hash(spec));
        s.insert(
            "conditions".into(),
            json!([
                {"type": "Available", "status": "True", "lastUpdateTime": created,
                 "lastTransitionTime": created, "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": "True", "lastUpdateTime": created,
                 "lastTransitionTime": created, "reason": "NewReplicaSetAvailable",
                 "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed.")}
            ]),
        );
        Some(s)
    } else if kind == Kind::ReplicaSet {
        let r = replicas(spec);
        let mut s = with_replicas(
            Map::new(),
            r,
            &[
                "replicas",
                "fullyLabeledReplicas",
                "readyReplicas",
                "availableReplicas",
            ],
        );
        s.insert("observedGeneration".into(), json!(generation));
        Some(s)
    } else if kind == Kind::StatefulSet {
        let r = replicas(spec);
        let revision = format!("{}-{}", obj.metadata.name(), template_hash(spec));
        let mut s = Map::new();
        s.insert("observedGeneration".into(), json!(generation));
        let mut s = with_replicas(
            s,
            r,
            &[
                "replicas",
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
            ],
        );
        s.insert("currentRevision".into(), json!(revision));
        s.insert("updateRevision".into(), json!(revision));
        s.insert("collisionCount".into(), json!(0));
        s.insert("availableReplicas".into(), json!(r));
        Some(s)
    } else if kind == Kind::DaemonSet {
        let _ = images(spec);
        Some(
            json!({
                "currentNumberScheduled": 1, "numberMisscheduled": 0,
                "desiredNumberScheduled": 1, "numberReady": 1,
                "observedGeneration": generation, "updatedNumberScheduled": 1,
                "numberAvailable": 1
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        )
    } else if kind == Kind::Job {
        let suspended = spec.and_then(|s| s.get("suspend")) == Some(&json!(true));
        let completions = spec
            .and_then(|s| s.get("completions"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let s = if suspended {
            json!({"conditions": [{"type": "Suspended", "status": "True",
                "lastProbeTime": created, "lastTransitionTime": created,
                "reason": "JobSuspended", "message": "Job suspended"}]})
        } else {
            json!({
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": created,
                     "lastTransitionTime": created, "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods"},
                    {"type": "Complete", "status": "True", "lastProbeTime": created,
                     "lastTransitionTime": created, "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods"}
                ],
                "startTime": created,
                "completionTime": created,
                "succeeded": completions,
                "terminating": 0,
                "ready": 0,
                "uncountedTerminatedPods": {}
            })
        };
        s.as_object().cloned()
    } else if kind == Kind::CronJob {
        Some(Map::new())
    } else if kind == Kind::HorizontalPodAutoscaler {
        let min = spec
            .and_then(|s| s.get("minReplicas"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        json!({
            "currentReplicas": min,
            "desiredReplicas": min,
            "currentMetrics": null,
            "conditions": [
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": created,
                 "reason": "ReadyForNewScale",
                 "message": "recommended size matches current size"}
            ]
        })
        .as_object()
        .cloned()
        .map(|mut m| {
            m.shift_remove("currentMetrics");
            m
        })
    } else if kind == Kind::Ingress {
        Some(
            json!({"loadBalancer": {}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
    } else if kind == Kind::ResourceQuota {
        let hard = spec
            .and_then(|s| s.get("hard"))
            .cloned()
            .unwrap_or(json!({}));
        let used: Map<String, Value> = hard
            .as_object()
            .map(|m| m.keys().map(|k| (k.clone(), json!("0"))).collect())
            .unwrap_or_default();
        Some(
            json!({"hard": hard, "used": used})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
    } else {
        None
    };
    if let Some(status) = status {
        obj.body.insert("status".into(), Value::Object(status));
    }
}

/// A stable 10-character hash of the pod template, as `pod-template-hash` labels look.
fn template_hash(spec: Option<&Value>) -> String {
    let text = spec
        .and_then(|s| s.get("template"))
        .map(Value::to_string)
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// The `status.selector` of a Scale: the label selector as a string (`app=web,tier in (a)`).
pub(crate) fn scale_selector(obj: &Generic) -> String {
    let Some(sel) = obj.pointer("/spec/selector") else {
        return String::new();
    };
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                _ => format!("!{key}"),
            },
        );
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: Kind, v: Value) -> Generic {
        Generic::from_value(kind, v).unwrap()
    }

    fn deployment() -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    }

    #[test]
    fn deployment_defaults_validation_and_status() {
        let mut d = obj(Kind::Deployment, deployment());
        defaults(&mut d);
        assert_eq!(d.pointer("/spec/replicas"), Some(&json!(1)));
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0/imagePullPolicy"),
            Some(&json!("IfNotPresent"))
        );
        assert!(validate(&d, None).is_empty());
        synthesize_status(&mut d);
        assert_eq!(d.pointer("/status/readyReplicas"), Some(&json!(1)));
        let mut bad = deployment();
        bad["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
        let causes = validate(&obj(Kind::Deployment, bad), None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        assert!(causes[0]
            .message
            .contains("`selector` does not match template `labels`"));
        let mut changed = obj(Kind::Deployment, deployment());
        changed.body["spec"]["selector"] = json!({"matchLabels": {"app": "web", "x": "y"}});
        changed.body["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        let causes = validate(&changed, Some(&d));
        assert_eq!(causes[0].field, "spec.selector");
        assert!(causes[0].message.ends_with("field is immutable"));
    }

    #[test]
    fn partial_update_strategies_are_completed() {
        let with = |kind, strategy: Value| {
            let mut v = deployment();
            let key = if kind == Kind::Deployment {
                "strategy"
            } else {
                "updateStrategy"
            };
            v["spec"][key] = strategy;
            let mut o = obj(kind, v);
            defaults(&mut o);
            o.body["spec"][key].clone()
        };
        let rolling = json!({"type": "RollingUpdate",
                             "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
        assert_eq!(with(Kind::Deployment, json!({})), rolling);
        assert_eq!(
            with(Kind::Deployment, json!({"type": "RollingUpdate"})),
            rolling
        );
        assert_eq!(
            with(Kind::Deployment, json!({"rollingUpdate": {"maxSurge": 1}})),
            json!({"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}, "type": "RollingUpdate"})
        );
        assert_eq!(
            with(Kind::Deployment, json!({"type": "Recreate"})),
            json!({"type": "Recreate"})
        );
        assert_eq!(
            with(Kind::StatefulSet, json!({})),
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            with(Kind::StatefulSet, json!({"type": "RollingUpdate"})),
            json!({"type": "RollingUpdate"})
        );
        assert_eq!(
            with(Kind::DaemonSet, json!({"type": "RollingUpdate"})),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(
            with(Kind::DaemonSet, json!({"type": "OnDelete"})),
            json!({"type": "OnDelete"})
        );
    }

    #[test]
    fn secrets_configmaps_jobs_cronjobs_hpas_ingresses() {
        let mut s = obj(
            Kind::Secret,
            json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}),
        );
        defaults(&mut s);
        assert_eq!(s.pointer("/data/password"), Some(&json!("aHVudGVyMg==")));
        assert_eq!(s.pointer("/type"), Some(&json!("Opaque")));
        let cm = obj(
            Kind::ConfigMap,
            json!({"metadata": {"name": "c"}, "data": {"bad key": "x"}}),
        );
        assert_eq!(validate(&cm, None)[0].field, "data[bad key]");
        let job = obj(
            Kind::Job,
            json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {
                "restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        );
        let causes = validate(&job, None);
        assert_eq!(causes[0].field, "spec.template.spec.restartPolicy");
        let cj = obj(
            Kind::CronJob,
            json!({"metadata": {"name": "c"}, "spec": {"schedule": "not a cron"}}),
        );
        let fields: Vec<_> = validate(&cj, None).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["spec.schedule", "spec.jobTemplate"]);
        assert!(cron_is_valid("*/5 * * * *"));
        assert!(cron_is_valid("@hourly"));
        let hpa = obj(
            Kind::HorizontalPodAutoscaler,
            json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 5, "maxReplicas": 3}}),
        );
        assert_eq!(validate(&hpa, None)[0].field, "spec.minReplicas");
        let ing = obj(
            Kind::Ingress,
            json!({"metadata": {"name": "i"}, "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        );
        assert_eq!(
            validate(&ing, None)[0].field,
            "spec.rules[0].http.paths[0].pathType"
        );
    }

    #[test]
    fn scale_selector_strings() {
        let d = obj(Kind::Deployment, deployment());
        assert_eq!(scale_selector(&d), "app=web");
    }
}
