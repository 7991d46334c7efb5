//! Discovery and OpenAPI v3 of the simulated cluster as the real kubectl 1.32 reads them:
//! `api-resources` and `api-versions` list every group the cluster serves (the built-in
//! kinds and a custom type from config) with their short names, and `explain` finds the
//! schemas of named groups in the per-group-version OpenAPI v3 documents.

use crate::kubectl_support::Kubectl;
use kubeplex::sim::config::SimClusterConfig;
use kubeplex::sim::kinds::CustomType;
use kubeplex::sim::SimServer;

async fn start() -> (SimServer, Kubectl) {
    let mut config = SimClusterConfig::new("discovery", None, Vec::<String>::new());
    config.custom_types.push(CustomType {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
        singular: None,
        namespaced: true,
        short_names: vec!["ro".into()],
        categories: vec!["all".into()],
    });
    let sim = kubeplex::sim::spawn("127.0.0.1:0", &config)
        .await
        .expect("start simulated cluster");
    let url = sim.url().as_str().trim_end_matches('/').to_owned();
    (sim, Kubectl::new(&url, None))
}

/// The cells of the `kubectl api-resources` row for `name` in `api_version`.
fn resource_row<'a>(out: &'a str, name: &str, api_version: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name) && cells.contains(&api_version))
        .unwrap_or_else(|| panic!("no {name} in {api_version}:\n{out}"))
}

#[actix_web::test]
async fn api_resources_lists_every_group_with_short_names() {
    let (_sim, k) = start().await;
    let out = k.ok(&["api-resources"]).await;
    for expected in [
        &["configmaps", "cm", "v1", "true", "ConfigMap"][..],
        &["limitranges", "limits", "v1", "true", "LimitRange"],
        &["resourcequotas", "quota", "v1", "true", "ResourceQuota"],
        &["events", "ev", "v1", "true", "Event"],
        &["secrets", "v1", "true", "Secret"],
        &["services", "svc", "v1", "true", "Service"],
        &["namespaces", "ns", "v1", "false", "Namespace"],
        &["pods", "po", "v1", "true", "Pod"],
        &["deployments", "deploy", "apps/v1", "true", "Deployment"],
        &["replicasets", "rs", "apps/v1", "true", "ReplicaSet"],
        &["statefulsets", "sts", "apps/v1", "true", "StatefulSet"],
        &["daemonsets", "ds", "apps/v1", "true", "DaemonSet"],
        &[
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler",
        ],
        &["jobs", "batch/v1", "true", "Job"],
        &["cronjobs", "cj", "batch/v1", "true", "CronJob"],
        &[
            "ingresses",
            "ing",
            "networking.k8s.io/v1",
            "true",
            "Ingress",
        ],
        &["pods", "metrics.k8s.io/v1beta1", "true", "PodMetrics"],
        &["rollouts", "ro", "argoproj.io/v1alpha1", "true", "Rollout"],
    ] {
        let api_version = expected[expected.len() - 3];
        assert_eq!(
            resource_row(&out, expected[0], api_version),
            expected,
            "{out}"
        );
    }

    let names = k
        .ok(&["api-resources", "--api-group=apps", "-o", "name"])
        .await;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "daemonsets.apps",
            "deployments.apps",
            "replicasets.apps",
            "statefulsets.apps"
        ]
    );
    let all = k
        .ok(&["api-resources", "--categories=all", "-o", "name"])
        .await;
    for name in [
        "deployments.apps",
        "cronjobs.batch",
        "rollouts.argoproj.io",
        "services",
    ] {
        assert!(all.lines().any(|l| l == name), "{name} in {all}");
    }

    let versions = k.ok(&["api-versions"]).await;
    for gv in [
        "v1",
        "apps/v1",
        "autoscaling/v2",
        "batch/v1",
        "networking.k8s.io/v1",
        "metrics.k8s.io/v1beta1",
        "argoproj.io/v1alpha1",
    ] {
        assert!(versions.lines().any(|l| l == gv), "{gv} in {versions}");
    }
}

#[actix_web::test]
async fn explain_reads_the_group_documents() {
    let (_sim, k) = start().await;
    let out = k.ok(&["explain", "deployment.spec.replicas"]).await;
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("KIND:       Deployment"), "{out}");
    assert!(out.contains("VERSION:    v1"), "{out}");
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");

    let out = k
        .ok(&["explain", "deploy.spec.template.spec.containers.ports"])
        .await;
    assert!(out.contains("FIELD: ports <[]ContainerPort>"), "{out}");
    assert!(out.contains("containerPort"), "{out}");

    let out = k.ok(&["explain", "hpa.spec.scaleTargetRef"]).await;
    assert!(out.contains("GROUP:      autoscaling"), "{out}");
    assert!(out.contains("VERSION:    v2"), "{out}");
    assert!(out.contains("<CrossVersionObjectReference>"), "{out}");

    let out = k.ok(&["explain", "cronjobs.spec.jobTemplate"]).await;
    assert!(out.contains("<JobTemplateSpec>"), "{out}");
    let out = k.ok(&["explain", "ingress.spec.rules"]).await;
    assert!(out.contains("<[]IngressRule>"), "{out}");
    let out = k.ok(&["explain", "configmap.data"]).await;
    assert!(out.contains("FIELD: data <map[string]string>"), "{out}");
    let out = k.ok(&["explain", "rollouts"]).await;
    assert!(out.contains("KIND:       Rollout"), "{out}");
    assert!(out.contains("metadata"), "{out}");
    // The core document still explains Services.
    let out = k.ok(&["explain", "service.spec.ports"]).await;
    assert!(out.contains("FIELD: ports <[]ServicePort>"), "{out}");
}
