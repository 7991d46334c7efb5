//! kubectl 1.32 end to end against the simulated cluster over TLS with a token, for the
//! kinds portals read: `get` of many kinds at once, `create deployment`, `apply -f` of every
//! kind with server-side field validation, `scale`, `top pods`, custom resources, `describe
//! deployment` (it reads the ReplicaSets and Events) and `get events`.

use crate::kubectl_support::{cells, Kubectl};
use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimTls, DEFAULT_SEED};
use kubeplex::sim::{self, SimServer};

const TOKEN: &str = "kinds-e2e-token";

/// The demo seed, over HTTPS (self-signed), with one token; kubectl with the kubeconfig the
/// simulator writes for itself.
async fn start() -> (SimServer, tempfile::TempDir, Kubectl) {
    let cfg = SimClusterConfig {
        tls: SimTls::SelfSigned,
        ..SimClusterConfig::new(
            "demo",
            Some(SeedSource::Text {
                name: "config/seed.yaml".into(),
                text: DEFAULT_SEED.into(),
            }),
            [TOKEN],
        )
    };
    let server = sim::spawn("127.0.0.1:0", &cfg).await.expect("sim starts");
    assert_eq!(server.url().scheme(), "https");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, server.kubeconfig(Some(TOKEN))).unwrap();
    let kubectl = Kubectl::with_kubeconfig(&path);
    (server, dir, kubectl)
}

/// The rows of a `kubectl get` output, split into cells (header first).
fn rows(out: &str) -> Vec<Vec<&str>> {
    out.lines().filter(|l| !l.is_empty()).map(cells).collect()
}

#[actix_web::test]
async fn get_many_kinds_at_once_over_tls() {
    let (_sim, _dir, k) = start().await;
    let out = k
        .ok(&["get", "deploy,rs,sts,ds,cm,hpa,job,cronjob,ing", "-A"])
        .await;
    for expect in [
        "deployment.apps/web",
        "deployment.apps/checkout",
        "replicaset.apps/web-",
        "statefulset.apps/ledger-db",
        "daemonset.apps/node-exporter",
        "configmap/web-config",
        "horizontalpodautoscaler.autoscaling/web",
        "cronjob.batch/checkout-settlement",
        "ingress.networking.k8s.io/web",
    ] {
        assert!(out.contains(expect), "{expect} missing from:\n{out}");
    }
    // The Deployment's columns as kubectl prints them: READY UP-TO-DATE AVAILABLE.
    let deploy = k.ok(&["get", "deployments", "-n", "storefront"]).await;
    let r = rows(&deploy);
    assert_eq!(r[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let web = r.iter().find(|c| c[0] == "web").expect("web row");
    assert_eq!(&web[1..4], ["3/3", "3", "3"]);
    // Pods of the Deployment carry their ReplicaSet as owner.
    let owners = k
        .ok(&[
            "get",
            "pods",
            "-n",
            "storefront",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{\"\\n\"}{end}",
        ])
        .await;
    let owners: Vec<&str> = owners.lines().collect();
    assert_eq!(owners.len(), 3, "{owners:?}");
    assert!(owners.iter().all(|o| o.starts_with("ReplicaSet/web-")));
    // Seeded Services are as old as the rest of the seed, and a seeded load balancer
    // keeps the address its seed gives it.
    let svc = k.ok(&["get", "svc", "web", "-n", "storefront"]).await;
    let r = rows(&svc);
    assert_eq!(r[0][3], "EXTERNAL-IP");
    assert_eq!(r[1][3], "203.0.113.10", "{svc}");
    assert!(r[1][5].ends_with('m'), "created minutes ago: {svc}");
    // Custom resources by plural and short name.
    let rollouts = k.ok(&["get", "rollouts", "-n", "payments"]).await;
    assert_eq!(rows(&rollouts)[1][0], "checkout");
    let short = k.ok(&["get", "ro", "-A", "-o", "name"]).await;
    assert_eq!(short.trim(), "rollout.argoproj.io/checkout");
}

#[actix_web::test]
async fn create_scale_describe_and_events() {
    let (_sim, _dir, k) = start().await;
    k.ok(&["create", "namespace", "e2e"]).await;
    let created = k
        .ok(&[
            "create",
            "deployment",
            "api",
            "-n",
            "e2e",
            "--image=registry.example.com/api:1.0",
            "--replicas=2",
            "--port=8080",
        ])
        .await;
    assert_eq!(created.trim(), "deployment.apps/api created");
    let scaled = k
        .ok(&["scale", "deployment/api", "-n", "e2e", "--replicas=5"])
        .await;
    assert_eq!(scaled.trim(), "deployment.apps/api scaled");
    let replicas = k
        .ok(&[
            "get",
            "deploy",
            "api",
            "-n",
            "e2e",
            "-o",
            "jsonpath={.spec.replicas} {.status.readyReplicas}",
        ])
        .await;
    assert_eq!(replicas, "5 5");
    let rs = k.ok(&["get", "rs", "-n", "e2e", "-o", "name"]).await;
    assert_eq!(rs.lines().count(), 1, "{rs}");
    let described = k.ok(&["describe", "deployment", "api", "-n", "e2e"]).await;
    for expect in [
        "Name:                   api",
        "Replicas:               5 desired | 5 updated | 5 total | 5 available | 0 unavailable",
        "StrategyType:           RollingUpdate",
        "NewReplicaSet:   api-",
        "ScalingReplicaSet",
        "from 0 to 2",
        "from 2 to 5",
    ] {
        assert!(
            described.contains(expect),
            "{expect:?} missing from:\n{described}"
        );
    }
    // A restart stamps the template: a new ReplicaSet takes the replicas, the old one is
    // scaled to 0, and the history has two revisions.
    k.ok(&["rollout", "restart", "deployment/api", "-n", "e2e"])
        .await;
    let status = k
        .ok(&["rollout", "status", "deployment/api", "-n", "e2e"])
        .await;
    assert_eq!(status.trim(), r#"deployment "api" successfully rolled out"#);
    let sets = k
        .ok(&[
            "get",
            "rs",
            "-n",
            "e2e",
            "-o",
            "jsonpath={range .items[*]}{.spec.replicas}{\"\\n\"}{end}",
        ])
        .await;
    let mut replicas: Vec<&str> = sets.lines().collect();
    replicas.sort();
    assert_eq!(replicas, ["0", "5"]);
    let history = k
        .ok(&["rollout", "history", "deployment/api", "-n", "e2e"])
        .await;
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let events = k.ok(&["get", "events", "-n", "e2e"]).await;
    let header = &rows(&events)[0];
    assert_eq!(header[..4], ["LAST", "SEEN", "TYPE", "REASON"]);
    assert!(events.contains("deployment/api"), "{events}");
    assert!(events.contains("Scaled up replica set api-"), "{events}");
}

#[actix_web::test]
async fn top_pods_reads_metrics() {
    let (_sim, _dir, k) = start().await;
    let first = k.ok(&["top", "pods", "-n", "payments"]).await;
    let r = rows(&first);
    assert_eq!(r[0], ["NAME", "CPU(cores)", "MEMORY(bytes)"]);
    let checkout: Vec<_> = r.iter().filter(|c| c[0].starts_with("checkout-")).collect();
    assert_eq!(checkout.len(), 2, "{first}");
    for c in &checkout {
        assert!(c[1].ends_with('m') && c[2].ends_with("Mi"), "{c:?}");
    }
    // Derived deterministically: the same figures every time.
    let second = k.ok(&["top", "pods", "-n", "payments"]).await;
    assert_eq!(first, second);
    let all = k.ok(&["top", "pods", "-A"]).await;
    assert!(all.contains("ledger-db-0"), "{all}");
}

const MANIFESTS: &str = r#"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: applied}
data: {mode: blue}
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret, namespace: applied}
stringData: {password: hunter2}
---
apiVersion: v1
kind: LimitRange
metadata: {name: limits, namespace: applied}
spec: {limits: [{type: Container, default: {cpu: 200m}}]}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota, namespace: applied}
spec: {hard: {pods: "10"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: applied}
spec:
  replicas: 2
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1.0
        env: [{name: MODE, value: blue}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: applied}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres:16}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: applied}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: agent:1}]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: app, namespace: applied}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  minReplicas: 2
  maxReplicas: 5
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: applied}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: once, image: busybox}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: applied}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: nightly, image: busybox}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: applied}
spec:
  rules:
  - host: app.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: app, namespace: applied}
spec: {replicas: 2}
"#;

#[actix_web::test]
async fn apply_every_kind_with_server_side_validation() {
    let (_sim, _dir, k) = start().await;
    k.ok(&["create", "namespace", "applied"]).await;
    let file = k.write_file("all.yaml", MANIFESTS);
    let file = file.to_str().unwrap();
    let out = k.ok(&["apply", "-f", file]).await;
    for expect in [
        "configmap/app-config created",
        "secret/app-secret created",
        "limitrange/limits created",
        "resourcequota/quota created",
        "deployment.apps/app created",
        "statefulset.apps/db created",
        "daemonset.apps/agent created",
        "horizontalpodautoscaler.autoscaling/app created",
        "job.batch/once created",
        "cronjob.batch/nightly created",
        "ingress.networking.k8s.io/app created",
        "rollout.argoproj.io/app created",
    ] {
        assert!(out.contains(expect), "{expect} missing from:\n{out}");
    }
    // Applying again changes nothing.
    let again = k.ok(&["apply", "-f", file]).await;
    assert!(again.contains("deployment.apps/app unchanged"), "{again}");
    // A changed image and env entry: the client-side apply patch merges the containers
    // and env by name.
    let changed = MANIFESTS
        .replace(
            "registry.example.com/app:1.0",
            "registry.example.com/app:1.1",
        )
        .replace("{name: MODE, value: blue}", "{name: MODE, value: green}");
    let file2 = k.write_file("changed.yaml", &changed);
    let out = k.ok(&["apply", "-f", file2.to_str().unwrap()]).await;
    assert!(out.contains("deployment.apps/app configured"), "{out}");
    let got = k
        .ok(&[
            "get",
            "deploy",
            "app",
            "-n",
            "applied",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].value} {.metadata.generation}",
        ])
        .await;
    assert_eq!(got, "registry.example.com/app:1.1 green 2");
    // Server-side field validation: an unknown field is refused (kubectl's default
    // --validate=strict sends fieldValidation=Strict).
    let bad = k.write_file(
        "bad.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad, namespace: applied}\n\
         spec:\n  replicaz: 2\n  selector: {matchLabels: {app: bad}}\n  template:\n    metadata: {labels: {app: bad}}\n    spec: {containers: [{name: bad, image: bad:1}]}\n",
    );
    let err = k.fails(&["apply", "-f", bad.to_str().unwrap()]).await;
    assert!(err.contains(r#"unknown field "spec.replicaz""#), "{err}");
    // What a real server refuses: the selector does not match the template's labels.
    let invalid = k.write_file(
        "invalid.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: invalid, namespace: applied}\n\
         spec:\n  selector: {matchLabels: {app: one}}\n  template:\n    metadata: {labels: {app: other}}\n    spec: {containers: [{name: c, image: c:1}]}\n",
    );
    let err = k.fails(&["apply", "-f", invalid.to_str().unwrap()]).await;
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );
}

/// kubectl's typed `create` subcommands send protobuf; each object arrives whole.
#[actix_web::test]
async fn typed_create_subcommands() {
    let (_sim, _dir, k) = start().await;
    k.ok(&["create", "namespace", "typed"]).await;
    let n = ["-n", "typed"];
    let run = |args: Vec<&'static str>| {
        let k = &k;
        async move {
            // The namespace first: what follows `--` is the container's command.
            let mut all = n.to_vec();
            all.extend(args);
            k.ok(&all).await
        }
    };
    assert_eq!(
        run(vec![
            "create",
            "configmap",
            "cfg",
            "--from-literal=mode=blue"
        ])
        .await
        .trim(),
        "configmap/cfg created"
    );
    assert_eq!(
        run(vec![
            "create",
            "secret",
            "generic",
            "pw",
            "--from-literal=password=hunter2"
        ])
        .await
        .trim(),
        "secret/pw created"
    );
    assert_eq!(
        run(vec![
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "echo",
            "hi"
        ])
        .await
        .trim(),
        "job.batch/once created"
    );
    assert_eq!(
        run(vec![
            "create",
            "cronjob",
            "nightly",
            "--image=busybox",
            "--schedule=0 3 * * *"
        ])
        .await
        .trim(),
        "cronjob.batch/nightly created"
    );
    assert_eq!(
        run(vec![
            "create",
            "ingress",
            "web",
            "--rule=web.example.com/*=web:80"
        ])
        .await
        .trim(),
        "ingress.networking.k8s.io/web created"
    );
    assert_eq!(
        run(vec![
            "create",
            "quota",
            "q",
            "--hard=pods=10,requests.cpu=2"
        ])
        .await
        .trim(),
        "resourcequota/q created"
    );
    let get = |args: Vec<&'static str>| run(args);
    assert_eq!(
        get(vec!["get", "cm", "cfg", "-o", "jsonpath={.data.mode}"]).await,
        "blue"
    );
    assert_eq!(
        get(vec![
            "get",
            "secret",
            "pw",
            "-o",
            "jsonpath={.data.password}"
        ])
        .await,
        "aHVudGVyMg=="
    );
    assert_eq!(
        get(vec![
            "get",
            "job",
            "once",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].command}"
        ])
        .await,
        r#"["echo","hi"]"#
    );
    assert_eq!(
        get(vec![
            "get",
            "cronjob",
            "nightly",
            "-o",
            "jsonpath={.spec.schedule}"
        ])
        .await,
        "0 3 * * *"
    );
    assert_eq!(
        get(vec![
            "get",
            "ingress",
            "web",
            "-o",
            "jsonpath={.spec.rules[0].host} {.spec.rules[0].http.paths[0].pathType} {.spec.rules[0].http.paths[0].backend.service.port.number}"
        ])
        .await,
        "web.example.com Prefix 80"
    );
    assert_eq!(
        get(vec![
            "get",
            "quota",
            "q",
            "-o",
            "jsonpath={.spec.hard.pods} {.status.hard.requests\\.cpu}"
        ])
        .await,
        "10 2"
    );
}
