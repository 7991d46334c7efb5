//! The simulated cluster's pods, driven directly over loopback: list and get, exec and
//! attach over the channel protocols (v5 close signal, v4 Status with exit codes, base64),
//! port-forward over the channel protocol, followed logs, and the refusals.

use crate::support_ws;

use futures_util::{SinkExt, StreamExt};
use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimToken};
use support_ws::*;
use tokio_tungstenite::tungstenite::Message;

async fn sim(tokens: Vec<SimToken>) -> kubeplex::sim::SimServer {
    let cluster = SimClusterConfig {
        name: "t".into(),
        seed: Some(SeedSource::Text {
            name: "seed".into(),
            text: kubeplex::sim::config::DEFAULT_SEED.into(),
        }),
        tokens,
        ..Default::default()
    };
    kubeplex::sim::spawn("127.0.0.1:0", &cluster).await.unwrap()
}

fn ws_url(sim: &kubeplex::sim::SimServer, path: &str) -> String {
    format!("ws://{}{path}", sim.url().authority())
}

/// Opens a WebSocket to `path` on `sim`, offering `protocols`.
async fn open(sim: &kubeplex::sim::SimServer, path: &str, protocols: &[&str]) -> Ws {
    connect(&ws_url(sim, path), protocols, &[]).await.unwrap().0
}

/// GETs `url` and decodes its JSON body.
async fn get_json(url: String) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Opens a WebSocket to `path` on `sim` offering `protocols`, expecting a refusal: its
/// HTTP status and Status body.
async fn refused_at(
    sim: &kubeplex::sim::SimServer,
    path: &str,
    protocols: &[&str],
) -> (u16, serde_json::Value) {
    refused(&ws_url(sim, path), protocols, &[]).await
}

#[actix_web::test]
async fn list_and_get_pods() {
    let sim = sim(vec![]).await;
    let client = reqwest::Client::new();
    let list: serde_json::Value =
        get_json(format!("{}api/v1/namespaces/payments/pods", sim.url())).await;
    assert_eq!(list["kind"], "PodList");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"toolbox"), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("checkout-")),
        "{names:?}"
    );
    let all: serde_json::Value = get_json(format!("{}api/v1/pods", sim.url())).await;
    assert!(all["items"].as_array().unwrap().len() > names.len());
    let pod: serde_json::Value = get_json(format!(
        "{}api/v1/namespaces/default/pods/toolbox",
        sim.url()
    ))
    .await;
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(pod["spec"]["containers"][0]["name"], "shell");
    let res = client
        .get(format!("{}api/v1/namespaces/default/pods/nope", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let st: serde_json::Value = res.json().await.unwrap();
    assert_eq!(st["reason"], "NotFound");
    assert_eq!(st["details"]["name"], "nope");
}

#[actix_web::test]
async fn exec_v5_echo_and_success_status() {
    let sim = sim(vec![]).await;
    let (mut ws, res) = connect(&ws_url(&sim, "/api/v1/namespaces/default/pods/toolbox/exec?command=echo&command=hello&command=world&stdout=true&stderr=true"), &["v5.channel.k8s.io", "v4.channel.k8s.io"], &[])
        .await
        .unwrap();
    assert_eq!(
        res.headers().get("sec-websocket-protocol").unwrap(),
        "v5.channel.k8s.io"
    );
    let (out, err, status) = collect_exec(&mut ws).await;
    assert_eq!(out, "hello world\n");
    assert_eq!(err, "");
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["status"], "Success");
}

#[actix_web::test]
async fn exec_v4_nonzero_exit_code_status() {
    let sim = sim(vec![]).await;
    let mut ws = open(&sim, "/api/v1/namespaces/default/pods/toolbox/exec?command=sh&command=-c&command=echo%20oops%201%3E%262%3B%20exit%207&stdout=true&stderr=true", &["v4.channel.k8s.io"]).await;
    let (_, _, status) = collect_exec(&mut ws).await;
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["status"], "Failure");
    assert_eq!(st["reason"], "NonZeroExitCode");
    assert_eq!(st["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(st["details"]["causes"][0]["message"], "7");
}

#[actix_web::test]
async fn exec_cat_reads_stdin_until_close_signal() {
    let sim = sim(vec![]).await;
    let mut ws = open(&sim, "/api/v1/namespaces/storefront/pods/toolbox/exec?command=cat&stdin=true&stdout=true&stderr=true", &["v5.channel.k8s.io"]).await;
    send_channel(&mut ws, 0, b"first ").await;
    assert_eq!(next_channel(&mut ws).await, Some((1, b"first ".to_vec())));
    let big = vec![b'z'; 300_000];
    send_channel(&mut ws, 0, &big).await;
    let mut got = 0;
    while got < big.len() {
        let (ch, data) = next_channel(&mut ws).await.unwrap();
        assert_eq!(ch, 1);
        got += data.len();
    }
    // v5 close signal for stdin: cat ends, status follows.
    ws.send(Message::Binary(vec![255u8, 0].into()))
        .await
        .unwrap();
    let (out, _, status) = collect_exec(&mut ws).await;
    assert_eq!(out, "");
    assert!(status.contains("Success"), "{status}");
}

#[actix_web::test]
async fn exec_base64_protocol() {
    let sim = sim(vec![]).await;
    let mut ws = open(
        &sim,
        "/api/v1/namespaces/default/pods/toolbox/exec?command=hostname&stdout=true",
        &["v4.base64.channel.k8s.io"],
    )
    .await;
    let mut texts = Vec::new();
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Text(t) => texts.push(t.to_string()),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(texts[0], "1dG9vbGJveAo="); // "1" + base64("toolbox\n")
    use base64::Engine;
    let status = texts[1].strip_prefix('3').expect("status on channel 3");
    let status = base64::engine::general_purpose::STANDARD
        .decode(status)
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(st["status"], "Success");
}

#[actix_web::test]
async fn exec_refusals() {
    let sim = sim(vec![]).await;
    let base = "/api/v1/namespaces/default/pods";
    let (code, st) = refused_at(
        &sim,
        &format!("{base}/toolbox/exec?command=true&stdout=true"),
        &["v9.channel.k8s.io"],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(st["kind"], "Status");
    let (code, st) = refused_at(
        &sim,
        &format!("{base}/missing/exec?command=true&stdout=true"),
        &["v5.channel.k8s.io"],
    )
    .await;
    assert_eq!((code, st["reason"].as_str()), (404, Some("NotFound")));
    let (code, st) = refused_at(
        &sim,
        &format!("{base}/toolbox/exec?stdout=true"),
        &["v5.channel.k8s.io"],
    )
    .await;
    assert_eq!(code, 400);
    assert!(st["message"].as_str().unwrap().contains("command"));
    let (code, st) = refused_at(
        &sim,
        &format!("{base}/toolbox/exec?command=true&stdout=true&container=nope"),
        &["v5.channel.k8s.io"],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        st["message"], "container nope is not valid for pod toolbox",
        "{st}"
    );
    // Not an upgrade at all.
    let res = reqwest::Client::new()
        .post(format!(
            "{}{}",
            sim.url(),
            &format!("{base}/toolbox/exec?command=true&stdout=true")[1..]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[actix_web::test]
async fn exec_requires_token_when_configured() {
    let sim = sim(vec![
        SimToken {
            token: "good".into(),
            namespaces: None,
            verbs: None,
        },
        SimToken {
            token: "reader".into(),
            namespaces: None,
            verbs: Some(vec!["get".into(), "list".into()]),
        },
    ])
    .await;
    let url = ws_url(
        &sim,
        "/api/v1/namespaces/default/pods/toolbox/exec?command=true&stdout=true",
    );
    let (code, st) = refused(&url, &["v5.channel.k8s.io"], &[]).await;
    assert_eq!((code, st["reason"].as_str()), (401, Some("Unauthorized")));
    let (code, st) = refused(
        &url,
        &["v5.channel.k8s.io"],
        &[("authorization", "Bearer reader")],
    )
    .await;
    assert_eq!((code, st["reason"].as_str()), (403, Some("Forbidden")));
    let (mut ws, _) = connect(
        &url,
        &["v5.channel.k8s.io"],
        &[("authorization", "Bearer good")],
    )
    .await
    .unwrap();
    let (_, _, status) = collect_exec(&mut ws).await;
    assert!(status.contains("Success"));
}

#[actix_web::test]
async fn attach_with_stdin_is_a_shell() {
    let sim = sim(vec![]).await;
    let mut ws = open(
        &sim,
        "/api/v1/namespaces/default/pods/toolbox/attach?stdin=true&stdout=true&stderr=true",
        &["v5.channel.k8s.io"],
    )
    .await;
    send_channel(&mut ws, 0, b"echo attached && exit 4\n").await;
    let (out, _, status) = collect_exec(&mut ws).await;
    assert_eq!(out, "attached\n");
    assert!(status.contains("\"message\":\"4\""), "{status}");
}

#[actix_web::test]
async fn portforward_channel_protocol_echoes_and_reports_refused_ports() {
    let sim = sim(vec![]).await;
    let mut ws = open(
        &sim,
        "/api/v1/namespaces/default/pods/toolbox/portforward?ports=8080,9999",
        &["v4.channel.k8s.io"],
    )
    .await;
    let mut prefixes = Vec::new();
    for _ in 0..4 {
        prefixes.push(next_channel(&mut ws).await.unwrap());
    }
    assert_eq!(
        prefixes,
        vec![
            (0, 8080u16.to_le_bytes().to_vec()),
            (1, 8080u16.to_le_bytes().to_vec()),
            (2, 9999u16.to_le_bytes().to_vec()),
            (3, 9999u16.to_le_bytes().to_vec()),
        ]
    );
    send_channel(&mut ws, 0, b"ping over 8080").await;
    assert_eq!(
        next_channel(&mut ws).await,
        Some((0, b"ping over 8080".to_vec()))
    );
    send_channel(&mut ws, 2, b"nobody listens").await;
    let (ch, msg) = next_channel(&mut ws).await.unwrap();
    assert_eq!(ch, 3);
    assert!(String::from_utf8_lossy(&msg).contains("connection refused"));
    ws.close(None).await.unwrap();
}

#[actix_web::test]
async fn follow_logs_stream_lines() {
    let sim = sim(vec![]).await;
    let res = reqwest::Client::new()
        .get(format!(
            "{}api/v1/namespaces/default/pods/toolbox/log?follow=true",
            sim.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut text = String::new();
    while !text.contains("handled request 2 ") {
        let chunk = body.next().await.expect("stream still open").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("starting shell"), "{text}");
    let plain = reqwest::get(format!(
        "{}api/v1/namespaces/default/pods/toolbox/log?tailLines=2",
        sim.url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(plain, "readiness probe succeeded\nserving requests\n");
}

#[actix_web::test]
async fn logs_over_websocket_one_message_per_chunk() {
    let sim = sim(vec![]).await;
    let (mut ws, res) = connect(
        &ws_url(
            &sim,
            "/api/v1/namespaces/default/pods/toolbox/log?tailLines=2",
        ),
        &["binary.k8s.io"],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "binary.k8s.io");
    let mut text = Vec::new();
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Binary(b) => text.extend_from_slice(&b),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "readiness probe succeeded\nserving requests\n"
    );
    // base64 form, following.
    let mut ws = open(
        &sim,
        "/api/v1/namespaces/default/pods/toolbox/log?follow=true&tailLines=0",
        &["base64.binary.k8s.io"],
    )
    .await;
    match ws.next().await.unwrap().unwrap() {
        Message::Text(t) => {
            use base64::Engine;
            let line = base64::engine::general_purpose::STANDARD
                .decode(t.as_str())
                .unwrap();
            assert!(String::from_utf8(line)
                .unwrap()
                .contains("handled request 1 "));
        }
        other => panic!("{other:?}"),
    }
    ws.close(None).await.unwrap();
}

#[actix_web::test]
async fn watch_pods_sends_added_then_ends_at_timeout() {
    let sim = sim(vec![]).await;
    let res = reqwest::get(format!(
        "{}api/v1/namespaces/payments/pods?watch=1&timeoutSeconds=1",
        sim.url()
    ))
    .await
    .unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "application/json;stream=watch"
    );
    let body = res.text().await.unwrap();
    let events: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() >= 2, "{body}");
    for e in &events {
        assert_eq!(e["type"], "ADDED");
        assert_eq!(e["object"]["kind"], "Pod");
        assert_eq!(e["object"]["metadata"]["namespace"], "payments");
    }
}

/// A pod created through the API is Running at once, listed, seen by a watch from the
/// list's version (and not by one from a newer version), and can run commands; its name
/// may not be taken twice, and a pod without a container is refused.
#[actix_web::test]
async fn pods_created_through_the_api_are_listed_watched_and_usable() {
    let s = sim(Vec::new()).await;
    let base = s.url().as_str().trim_end_matches('/').to_string();
    let list = get_json(format!("{base}/api/v1/namespaces/payments/pods")).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut watch = reqwest::get(format!(
        "{base}/api/v1/namespaces/payments/pods?watch=1&resourceVersion={rv}"
    ))
    .await
    .unwrap();
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "debug", "labels": {"app": "debug"}},
        "spec": {"containers": [{"name": "sh", "image": "busybox:1.36"}]}});
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        client
            .post(format!("{base}/api/v1/namespaces/payments/pods"))
            .json(&body)
            .send()
    };
    let created = post(pod.clone()).await.unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["status"]["phase"], "Running");
    let mut buf = Vec::new();
    let event = loop {
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            break serde_json::from_slice::<serde_json::Value>(&line).unwrap();
        }
        buf.extend_from_slice(&watch.chunk().await.unwrap().expect("the watch goes on"));
    };
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["metadata"]["name"], "debug");
    assert!(
        event["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > rv.parse::<u64>().unwrap()
    );
    // A watch from the same version opened after the creation still gets it: pods never
    // change once created, so the store is its own history.
    let late = reqwest::get(format!(
        "{base}/api/v1/namespaces/payments/pods?watch=1&resourceVersion={rv}"
    ))
    .await
    .unwrap();
    let mut late = late;
    let mut buf = Vec::new();
    let replayed = loop {
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            break serde_json::from_slice::<serde_json::Value>(&line).unwrap();
        }
        buf.extend_from_slice(&late.chunk().await.unwrap().expect("the watch goes on"));
    };
    assert_eq!(replayed["object"]["metadata"]["name"], "debug");
    let got = get_json(format!("{base}/api/v1/namespaces/payments/pods/debug")).await;
    assert_eq!(got["spec"]["containers"][0]["image"], "busybox:1.36");
    let listed = get_json(format!(
        "{base}/api/v1/namespaces/payments/pods?labelSelector=app%3Ddebug"
    ))
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let again = post(pod).await.unwrap();
    assert_eq!(again.status(), 409);
    let bare = post(serde_json::json!({"metadata": {"name": "bare"}, "spec": {}}))
        .await
        .unwrap();
    assert_eq!(bare.status(), 400);
}
