//! What the benchmarks share (`#[path = "support/mod.rs"] mod support;` in each): settings
//! from the environment, percentiles, the Services seed of a simulated cluster, a timed GET.
//! Each bench uses some of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The number in environment variable `name`, or `default`.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` percentile (0.0-1.0) of `sorted`.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A seed of namespace `bench` and `services` Services labelled `app: app-{i % 20}`,
/// `tier: bench` and `cluster: c{cluster}`; the first also carries a portal entity's label
/// (`backstage.io/kubernetes-id: cart`).
pub fn services_seed(cluster: usize, services: usize) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: bench}}\n",
    );
    for i in 0..services {
        let entity = if i == 0 {
            ", backstage.io/kubernetes-id: cart"
        } else {
            ""
        };
        s.push_str(&format!(
            "- apiVersion: v1\n  kind: Service\n  metadata: {{name: svc-{i:04}, namespace: bench, labels: {{app: app-{a}, tier: bench, cluster: c{cluster}{entity}}}}}\n  \
             spec: {{selector: {{app: app-{a}}}, ports: [{{name: http, port: 80, targetPort: 8080}}, {{name: metrics, port: 9090}}]}}\n",
            a = i % 20
        ));
    }
    s
}

/// A GET of `url` that must succeed: its time and body length.
pub async fn timed_get(client: &reqwest::Client, url: &str) -> (Duration, usize) {
    let t = Instant::now();
    let r = client.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let body = r.bytes().await.unwrap();
    (t.elapsed(), body.len())
}

/// A `kubeplex` child process (`KUBEPLEX_BIN`, else this build's binary) with JSON logs at
/// `warn,kubeplex=info` (an audit line per request), and the address its log reported.
pub struct Kubeplex {
    pub child: std::process::Child,
    /// The address from the first log line with field `field` (`http://` and a trailing
    /// `/` cut off).
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Kubeplex {
    /// Starts `kubeplex <args>` (with `--config` and `config` written to a file, if any) at
    /// `RUST_LOG=warn,kubeplex=info` (no audit lines) and waits for the log line carrying
    /// its address in field `field`. Log lines above INFO are echoed to stderr; the rest are
    /// read and dropped.
    pub fn start(args: &[&str], config: Option<String>, field: &'static str) -> Kubeplex {
        Self::start_logging(args, config, field, Some("warn,kubeplex=info"))
    }

    /// [`Kubeplex::start`] with `RUST_LOG` set to `rust_log`, or unset (the default level:
    /// an audit line per request) for `None`.
    pub fn start_logging(
        args: &[&str],
        config: Option<String>,
        field: &'static str,
        rust_log: Option<&str>,
    ) -> Kubeplex {
        use std::io::{BufRead, BufReader};
        let bin =
            std::env::var("KUBEPLEX_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kubeplex").into());
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(bin);
        if let Some(yaml) = config {
            let cfg = dir.path().join("kubeplex.yaml");
            std::fs::write(&cfg, yaml).unwrap();
            cmd.arg("--config").arg(cfg);
        }
        match rust_log {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        let mut child = cmd
            .args(args)
            .args(["--log-format", "json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start kubeplex");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                match v["fields"][field].as_str() {
                    Some(addr) => {
                        if let Some(tx) = tx.take() {
                            let addr = addr.trim_start_matches("http://").trim_end_matches('/');
                            let _ = tx.send(addr.to_string());
                        }
                    }
                    None if v["level"] != "INFO" => eprintln!("child: {line}"),
                    None => {}
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the child reports its address");
        Kubeplex {
            child,
            addr,
            _dir: dir,
        }
    }

    /// A field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
    pub fn status(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Its CPU time so far (utime + stime), in seconds.
    pub fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state is field 3, utime field 14, stime field 15.
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / clock_ticks()
    }

    /// Resets `VmHWM` to the current RSS.
    pub fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
    }
}

impl Drop for Kubeplex {
    /// Stops the child as a deployment does (SIGTERM: it drains and exits), so that a build
    /// made for profile-guided optimization writes its profile (`bench/pgo.sh`); killed if it
    /// has not exited within ten seconds.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if it cannot say).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Simulated clusters `{prefix}000`, `{prefix}001`, … seeded with `seeds`, in their own
/// thread (one actix system); their URLs without a trailing `/`.
pub fn start_sims(prefix: &'static str, seeds: Vec<String>) -> Vec<String> {
    use kubeplex::sim::config::{SeedSource, SimClusterConfig};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let mut sims = Vec::new();
            for (i, text) in seeds.into_iter().enumerate() {
                let cfg = SimClusterConfig::new(
                    format!("{prefix}{i:03}"),
                    Some(SeedSource::Text {
                        name: format!("{prefix}{i:03} seed"),
                        text,
                    }),
                    Vec::<String>::new(),
                );
                sims.push(kubeplex::sim::spawn("127.0.0.1:0", &cfg).await.unwrap());
            }
            let urls = sims
                .iter()
                .map(|s| s.url().as_str().trim_end_matches('/').to_string())
                .collect();
            tx.send(urls).unwrap();
            std::future::pending::<()>().await;
            drop(sims);
        })
    });
    rx.recv().unwrap()
}

/// A kubeplex configuration (two workers) with `sims` as config clusters
/// `{prefix}000`, … and the aggregate `timeout` and `cacheTtl`.
pub fn aggregate_config(prefix: &str, sims: &[String], timeout: &str, cache_ttl: &str) -> String {
    let mut yaml = format!(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n  aggregate:\n    timeout: {timeout}\n    cacheTtl: {cache_ttl}\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n"
    );
    for (i, url) in sims.iter().enumerate() {
        yaml.push_str(&format!(
            "        - name: {prefix}{i:03}\n          url: {url}\n"
        ));
    }
    yaml
}

/// A merged watch over every member of `aggregate` (an `{base}/aggregate` URL in front of
/// `sims`) from the version of a list: `warm + rounds` times a Service is created in one
/// member after another (round robin, directly at the simulator), and the time until the
/// client reads that event; the last `rounds` times, sorted.
pub async fn merged_watch_latency(
    client: &reqwest::Client,
    sims: &[String],
    aggregate: &str,
    warm: usize,
    rounds: usize,
) -> Vec<Duration> {
    let list_url = format!("{aggregate}/api/v1/namespaces/bench/services");
    let list: serde_json::Value = client
        .get(&list_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let url = reqwest::Url::parse_with_params(
        &list_url,
        &[("watch", "1"), ("resourceVersion", rv.as_str())],
    )
    .unwrap();
    let mut resp = client.get(url).send().await.unwrap();
    assert!(resp.status().is_success());
    let mut buf: Vec<u8> = Vec::new();
    let mut times = Vec::new();
    for r in 0..warm + rounds {
        let name = format!("wprobe-{r}");
        let target = format!("{}/api/v1/namespaces/bench/services", sims[r % sims.len()]);
        let t = Instant::now();
        let created = client
            .post(target)
            .json(
                &serde_json::json!({"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}),
            )
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success());
        'wait: loop {
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let Ok(ev) = serde_json::from_slice::<serde_json::Value>(&line) else {
                    continue;
                };
                if ev["object"]["metadata"]["name"] == name.as_str() {
                    break 'wait;
                }
            }
            let chunk = resp
                .chunk()
                .await
                .unwrap()
                .expect("the merged watch goes on");
            buf.extend_from_slice(&chunk);
        }
        if r >= warm {
            times.push(t.elapsed());
        }
    }
    times.sort();
    times
}
