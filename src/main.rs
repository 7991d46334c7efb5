//! The `kubeplex` command: `serve` (default), `check-config`, `clusters`, `sim`.

use clap::{Args, Parser, Subcommand};
use kubeplex::config::{self, Source};
use kubeplex::sim::config as sim_config;
use kubeplex::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc (v3) as the allocator: a proxied request allocates and frees a few dozen
/// small blocks, and glibc's malloc spent a tenth of the request's instructions on them
/// (BENCHMARKS.md, issue 16). It commits its arenas as they are used: `.cargo/config.toml`
/// sets that default for its C build (its options cannot be set from `main`: the runtime
/// has allocated by then).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

/// mimalloc through its plain entry points where they suffice. The `mimalloc` crate's
/// allocator calls the aligned ones for every block, and those take mimalloc's slow path for
/// blocks over 1 KiB (a request's boxed handler futures) and check alignment on the rest:
/// about 600 instructions per proxied request (BENCHMARKS.md, issue 16, fifth pass). Every
/// block of mimalloc's is 8-byte aligned (its sizes are multiples of 8 from aligned pages),
/// so a layout asking no more than that needs nothing else.
struct MiMalloc;

/// The alignment every mimalloc block has.
const PLAIN_ALIGN: usize = 8;

// SAFETY: each method hands the request to mimalloc, whose plain calls return blocks aligned
// to `PLAIN_ALIGN` and whose aligned calls honour `layout.align()`; every block is freed by
// `mi_free`, which takes both kinds.
unsafe impl std::alloc::GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys as mi;
        if layout.align() <= PLAIN_ALIGN {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys as mi;
        if layout.align() <= PLAIN_ALIGN {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        libmimalloc_sys::mi_free(ptr.cast());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        use libmimalloc_sys as mi;
        if layout.align() <= PLAIN_ALIGN {
            mi::mi_realloc(ptr.cast(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

#[derive(Parser)]
#[command(
    name = "kubeplex",
    version,
    about = "Multi-cluster Kubernetes proxy for developer portals"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone)]
struct Common {
    /// Configuration file (repeatable; later files win). Default: the embedded config/default.yaml.
    #[arg(long = "config", short = 'c', global = true)]
    config: Vec<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the proxy (the default).
    Serve,
    /// Validate the configuration and print every problem.
    CheckConfig,
    /// Print the cluster registry with keys, in routing order.
    Clusters,
    /// Run a simulated Kubernetes API server.
    Sim(SimArgs),
}

#[derive(Args)]
struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: String,
    /// YAML seed of Namespace and Service objects.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Accepted bearer token (repeatable); none allows anonymous access.
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// Network (CIDR) the Service proxy subresource may reach (repeatable); default
    /// 127.0.0.0/8 and ::1/128.
    #[arg(long = "backend", value_name = "CIDR", value_parser = sim_config::parse_backend)]
    backends: Vec<ipnet::IpNet>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate generated at start for the listen address
    /// (plus localhost, 127.0.0.1 and ::1 on loopback or unspecified addresses).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: bool,
    /// Write a kubeconfig for this server to FILE (mode 0600): its URL, the served
    /// certificate as CA data, the first --token.
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
}

fn sources(common: &Common) -> Vec<Source> {
    common.config.iter().cloned().map(Source::File).collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = telemetry::init(cli.common.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.common, log),
        Command::CheckConfig => {
            let _log = log;
            check_config(&cli.common)
        }
        Command::Clusters => {
            let _log = log;
            clusters(&cli.common)
        }
        Command::Sim(args) => {
            let _log = log;
            sim(args)
        }
    }
}

fn load_or_exit(common: &Common) -> Result<config::Settings, ExitCode> {
    config::load(&sources(common)).map_err(|errs| {
        for p in &errs.0 {
            eprintln!("{p}");
        }
        ExitCode::FAILURE
    })
}

fn serve(common: &Common, log: Option<telemetry::Guard>) -> ExitCode {
    let log = std::sync::Arc::new(std::sync::Mutex::new(log));
    let settings = match load_or_exit(common) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let reload = kubeplex::control::ReloadFrom {
        sources: sources(common),
        watch: true,
    };
    actix_web::rt::System::new().block_on(async move {
        let mut app = match kubeplex::app::build_reloading(settings, Some(reload)).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %app.addr, "kubeplex listening");
        app.control.reload_on_sighup();
        let server = app.server.take().expect("server built");
        stop_on_signals(app.shutdown(), log.clone());
        match server.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("server error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The log writer's guard: dropping it writes out the lines still queued.
type LogGuard = std::sync::Arc<std::sync::Mutex<Option<telemetry::Guard>>>;

/// SIGTERM or SIGINT: the graceful drain (`shutdownTimeout` at most); a second one while
/// draining: exit at once (the log written out first), with status 1.
fn stop_on_signals(shutdown: kubeplex::app::Shutdown, log: LogGuard) {
    actix_web::rt::spawn(async move {
        let mut signals = Signals::new();
        let first = signals.next().await;
        tracing::info!(
            "{first}: draining (in-flight requests finish, watches end at an event, tunnels close)"
        );
        let drain = shutdown.clone();
        actix_web::rt::spawn(async move { drain.drain().await });
        let second = signals.next().await;
        tracing::warn!("{second}: a second signal while draining; exiting now");
        drop(log.lock().ok().and_then(|mut g| g.take()));
        std::process::exit(1);
    });
}

/// SIGTERM (Unix) and SIGINT, one after the other.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        if let Some(term) = &mut self.term {
            return tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

fn check_config(common: &Common) -> ExitCode {
    match config::load(&sources(common)) {
        Ok(settings) => {
            println!("{}", config::summary(&settings));
            ExitCode::SUCCESS
        }
        Err(errs) => {
            for p in &errs.0 {
                println!("{p}");
            }
            eprintln!(
                "configuration refused: {} problem{}",
                errs.0.len(),
                if errs.0.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

fn clusters(common: &Common) -> ExitCode {
    let settings = match load_or_exit(common) {
        Ok(s) => s,
        Err(code) => return code,
    };
    actix_web::rt::System::new().block_on(async move {
        match kubeplex::locate::locate_all(&settings).await {
            Ok(located) => {
                let reg = kubeplex::cluster::Registry::new(
                    located.iter().map(|l| l.to_list()).collect(),
                    settings.duplicate_names,
                );
                let simulated: Vec<&str> = located
                    .iter()
                    .filter(|l| !l.sims.is_empty())
                    .map(|l| l.locator.as_str())
                    .collect();
                let rows: Vec<[String; 5]> = reg
                    .clusters()
                    .iter()
                    .map(|c| {
                        // A simulated cluster's URL is a throwaway server of this command.
                        let url = if simulated.contains(&c.locator.as_str()) {
                            "(simulated)".to_string()
                        } else {
                            c.spec.display_url()
                        };
                        [
                            c.key.to_string(),
                            c.spec.name.clone(),
                            c.locator.clone(),
                            url,
                            if c.ambiguous { "yes" } else { "no" }.to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(["KEY", "NAME", "LOCATOR", "URL", "AMBIGUOUS"], &rows)
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Left-aligned columns separated by two spaces.
fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = head.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(head.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn sim(args: SimArgs) -> ExitCode {
    let mut cluster = sim_config::SimClusterConfig::new(
        "sim",
        args.seed.map(sim_config::SeedSource::File),
        args.tokens,
    );
    if !args.backends.is_empty() {
        cluster.backends = args.backends;
    }
    cluster.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match sim_config::SimTls::from_files(cert, key) {
            Ok(tls) => tls,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        _ if args.tls_self_signed => sim_config::SimTls::SelfSigned,
        _ => sim_config::SimTls::Off,
    };
    actix_web::rt::System::new().block_on(async move {
        let server = match kubeplex::sim::spawn(&args.listen, &cluster).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("cannot start the simulated cluster on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        if let Some(path) = &args.kubeconfig_out {
            let token = cluster.tokens.first().map(|t| t.token.as_str());
            if let Err(e) = write_private(path, &server.kubeconfig(token)) {
                eprintln!("cannot write the kubeconfig {}: {e}", path.display());
                server.stop().await;
                return ExitCode::FAILURE;
            }
            tracing::info!(kubeconfig = %path.display(), "kubeconfig written");
            if token.is_none() && cluster.tls.enabled() {
                tracing::warn!(
                    "the kubeconfig has no credential: kubectl asks for a username and password \
                     before it talks to an https server without one; give the simulated \
                     cluster a --token"
                );
            }
        }
        tracing::info!(url = %server.url(), "simulated cluster listening");
        let _ = tokio::signal::ctrl_c().await;
        server.stop().await;
        ExitCode::SUCCESS
    })
}

/// Writes `text` to `path`, readable and writable by its owner only (0600 on Unix, an
/// existing file's mode included) before anything is written.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.set_len(0)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    /// Every size up to 4 KiB and a few larger, at every alignment up to a page: each block
    /// comes back aligned as asked, keeps its bytes through a `realloc`, and zeroed blocks
    /// are zero.
    #[test]
    fn the_allocator_honours_every_alignment() {
        let a = super::MiMalloc;
        let sizes = (1..=4096).chain([8191, 65536, 1 << 20, 5 << 20]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; every block is checked, then freed once.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "{size} {align}"
                    );
                    p.write_bytes(0xa5, size);
                    let q = a.realloc(p, layout, size * 2);
                    assert!(
                        !q.is_null() && (q as usize).is_multiple_of(align),
                        "{size} {align}"
                    );
                    assert!((0..size).all(|i| *q.add(i) == 0xa5), "{size} {align}");
                    a.dealloc(q, Layout::from_size_align(size * 2, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert!(
                        !z.is_null() && (z as usize).is_multiple_of(align),
                        "{size} {align}"
                    );
                    assert!((0..size).all(|i| *z.add(i) == 0), "{size} {align}");
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
