//! The aggregate read cache (SPEC §6, last bullet): kubeplex in-process in front of two
//! simulated clusters, each accepting two tokens; kubeplex forwards the caller's own token
//! (no server-side credential, identity checking off). The simulators count the requests
//! that reach them.

use crate::common::{cluster, http, settings, spawn_app};
use kubeplex::app::RunningApp;
use kubeplex::sim::config::{SimClusterConfig, SimFaults};
use kubeplex::sim::SimServer;
use std::time::Duration;

const A: &str = "token-a";
const B: &str = "token-b";
const LIST: &str = "/api/v1/namespaces/default/services";

async fn sim(name: &str, faults: SimFaults) -> SimServer {
    let mut cfg = SimClusterConfig::new(name, None, [A, B]);
    cfg.faults = faults;
    kubeplex::sim::spawn("127.0.0.1:0", &cfg)
        .await
        .expect("sim starts")
}

/// Two sims (the second with `faults`) behind kubeplex with `cacheTtl: ttl`.
async fn setup(ttl: Duration, faults: SimFaults) -> (RunningApp, [SimServer; 2]) {
    let one = sim("one", SimFaults::default()).await;
    let two = sim("two", faults).await;
    let mut s = settings(vec![
        cluster("one", one.url().as_str()),
        cluster("two", two.url().as_str()),
    ]);
    s.aggregate.cache_ttl = ttl;
    (spawn_app(s).await, [one, two])
}

/// The aggregated list with `token`; its status and body.
async fn list(app: &RunningApp, token: &str) -> (u16, serde_json::Value) {
    list_with(app, token, "application/json").await
}

async fn list_with(app: &RunningApp, token: &str, accept: &str) -> (u16, serde_json::Value) {
    let res = http()
        .get(format!("{}/api/kubernetes/aggregate{LIST}", app.url()))
        .bearer_auth(token)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn counts(sims: &[SimServer; 2]) -> [u64; 2] {
    [sims[0].requests(), sims[1].requests()]
}

fn plus(before: [u64; 2], n: u64) -> [u64; 2] {
    [before[0] + n, before[1] + n]
}

#[actix_web::test]
async fn identical_lists_within_the_ttl_reach_each_cluster_once() {
    let (app, sims) = setup(Duration::from_secs(60), SimFaults::default()).await;
    let before = counts(&sims);
    let (status, first) = list(&app, A).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["kind"], "ServiceList", "{first}");
    assert_eq!(counts(&sims), plus(before, 1));
    for _ in 0..3 {
        let (status, again) = list(&app, A).await;
        assert_eq!(status, 200);
        assert_eq!(again, first);
    }
    assert_eq!(counts(&sims), plus(before, 1));
    // The same query in another order is the same read.
    let res = http()
        .get(format!(
            "{}/api/kubernetes/aggregate{LIST}?b=2&a=1",
            app.url()
        ))
        .bearer_auth(A)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http()
        .get(format!(
            "{}/api/kubernetes/aggregate{LIST}?a=1&b=2",
            app.url()
        ))
        .bearer_auth(A)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(counts(&sims), plus(before, 2));
    // Another Accept (a Table) is another read.
    let (status, _) = list_with(
        &app,
        A,
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(counts(&sims), plus(before, 3));
}

#[actix_web::test]
async fn after_the_ttl_a_list_reaches_the_clusters_again() {
    let (app, sims) = setup(Duration::from_millis(200), SimFaults::default()).await;
    let before = counts(&sims);
    assert_eq!(list(&app, A).await.0, 200);
    assert_eq!(counts(&sims), plus(before, 1));
    // Once the entry expires, the next list asks again (polled: no fixed sleep).
    let mut asked_again = false;
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end {
        assert_eq!(list(&app, A).await.0, 200);
        let now = counts(&sims);
        if now[0] > before[0] + 1 && now[1] > before[1] + 1 {
            asked_again = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(asked_again, "the lists never reached the sims again");
}

#[actix_web::test]
async fn two_tokens_never_share_an_entry() {
    let (app, sims) = setup(Duration::from_secs(60), SimFaults::default()).await;
    let before = counts(&sims);
    assert_eq!(list(&app, A).await.0, 200);
    assert_eq!(counts(&sims), plus(before, 1));
    // B right after A: fetched with B's token, not A's answer.
    assert_eq!(list(&app, B).await.0, 200);
    assert_eq!(counts(&sims), plus(before, 2));
    // Each now has its own entry.
    assert_eq!(list(&app, A).await.0, 200);
    assert_eq!(list(&app, B).await.0, 200);
    assert_eq!(counts(&sims), plus(before, 2));
    // A token the clusters refuse gets their 401s, not a kept answer of A or B; and a
    // refusal is not kept either.
    let (status, body) = list(&app, "token-c").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(counts(&sims), plus(before, 3));
    let (status, _) = list(&app, "token-c").await;
    assert_eq!(status, 502);
    assert_eq!(counts(&sims), plus(before, 4));
}

#[actix_web::test]
async fn concurrent_identical_lists_share_one_fetch() {
    // Slow members, so that the 20 lists are in flight together.
    let slow = SimFaults {
        latency: Some(Duration::from_millis(300)),
        ..SimFaults::default()
    };
    let (app, sims) = setup(Duration::from_secs(60), slow).await;
    let before = counts(&sims);
    let lists = (0..20).map(|_| list(&app, A));
    let all = futures_util::future::join_all(lists).await;
    let first = &all[0].1;
    for (status, body) in &all {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body, first);
    }
    assert_eq!(counts(&sims), plus(before, 1));
}

#[actix_web::test]
async fn a_zero_ttl_turns_the_cache_off() {
    let (app, sims) = setup(Duration::ZERO, SimFaults::default()).await;
    let before = counts(&sims);
    for n in 1..=3 {
        let (status, body) = list(&app, A).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(counts(&sims), plus(before, n));
    }
}

#[actix_web::test]
async fn a_failing_member_is_asked_again() {
    // The second cluster fails every request with a 500.
    let failing = SimFaults {
        fail_every: Some(1),
        fail_code: Some(500),
        ..SimFaults::default()
    };
    let (app, sims) = setup(Duration::from_secs(60), failing).await;
    let before = counts(&sims);
    for n in 1..=3 {
        let (status, body) = list(&app, A).await;
        assert_eq!(status, 200, "{body}");
        let errors = body["clusterErrors"].as_array().expect("clusterErrors");
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(errors[0]["cluster"], "config:two", "{body}");
        // The healthy member's answer is kept; the failing one is asked every time.
        assert_eq!(counts(&sims), [before[0] + 1, before[1] + n]);
    }
}

/// The items' cluster annotations of a merged list.
fn clusters_of(body: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i["metadata"]["annotations"]["kubeplex.io/cluster"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    out.dedup();
    out
}

#[actix_web::test]
async fn a_kept_merged_list_is_the_answer_of_the_same_members_only() {
    let (app, sims) = setup(Duration::from_secs(60), SimFaults::default()).await;
    let before = counts(&sims);
    let (status, both) = list(&app, A).await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(clusters_of(&both), ["config:one", "config:two"]);
    // Kept whole: the same read again is the same bytes, and counts a hit per member.
    let metrics = || async {
        let text = http()
            .get(format!("{}/metrics", app.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("kubeplex_aggregate_cache_total{result=\"hit\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hits = metrics().await;
    assert_eq!(list(&app, A).await.1, both);
    assert_eq!(metrics().await, hits + 2);
    // The cluster header names one member: its own list, not the kept merged one.
    for (named, want) in [("one", "config:one"), ("config:two", "config:two")] {
        let res = http()
            .get(format!("{}/api/kubernetes/aggregate{LIST}", app.url()))
            .bearer_auth(A)
            .header("accept", "application/json")
            .header("backstage-kubernetes-cluster", named)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(clusters_of(&body), [want], "{body}");
    }
    // Another query is another read.
    let res = http()
        .get(format!(
            "{}/api/kubernetes/aggregate{LIST}?labelSelector=none%3Dsuch",
            app.url()
        ))
        .bearer_auth(A)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["items"], serde_json::json!([]), "{body}");
    // Every member answer came from the member entries or the clusters: once per read.
    assert_eq!(counts(&sims), plus(before, 2));
}

#[actix_web::test]
async fn a_member_written_to_shows_up_once_its_entry_expires() {
    // The merged answer goes with the member answers it was made of.
    let (app, sims) = setup(Duration::from_millis(300), SimFaults::default()).await;
    let (status, first) = list(&app, A).await;
    assert_eq!(status, 200, "{first}");
    let n = first["items"].as_array().unwrap().len();
    let created = http()
        .post(format!(
            "{}api/v1/namespaces/default/services",
            sims[0].url()
        ))
        .bearer_auth(A)
        .json(&serde_json::json!({"metadata": {"name": "late"}, "spec": {"ports": [{"port": 80}]}}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    // Polled: no fixed sleep.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = list(&app, A).await;
        assert_eq!(status, 200, "{body}");
        if body["items"].as_array().unwrap().len() == n + 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "the new Service never showed"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}
