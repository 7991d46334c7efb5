//! The `kubeplex` command: `serve` (default), `check-config`, `clusters`, `sim`.

use clap::{Args, Parser, Subcommand};
use kubeplex::config::{self, Source};
use kubeplex::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

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
}

fn sources(common: &Common) -> Vec<Source> {
    common.config.iter().cloned().map(Source::File).collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.common.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.common),
        Command::CheckConfig => match config::load(&sources(&cli.common)) {
            Ok(_) => {
                println!("configuration OK");
                ExitCode::SUCCESS
            }
            Err(errs) => {
                for p in &errs.0 {
                    eprintln!("{p}");
                }
                ExitCode::FAILURE
            }
        },
        Command::Clusters => clusters(&cli.common),
        Command::Sim(args) => sim(args),
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

fn serve(common: &Common) -> ExitCode {
    let settings = match load_or_exit(common) {
        Ok(s) => s,
        Err(code) => return code,
    };
    actix_web::rt::System::new().block_on(async move {
        let mut app = match kubeplex::app::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("{}", e.message);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %app.addr, "kubeplex listening");
        let server = app.server.take().expect("server built");
        let handle = app.handle.clone();
        actix_web::rt::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            handle.stop(true).await;
        });
        #[cfg(unix)]
        {
            let handle = app.handle.clone();
            actix_web::rt::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                if let Ok(mut term) = signal(SignalKind::terminate()) {
                    term.recv().await;
                    tracing::info!("SIGTERM: draining");
                    handle.stop(true).await;
                }
            });
        }
        match server.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("server error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn clusters(common: &Common) -> ExitCode {
    let settings = match load_or_exit(common) {
        Ok(s) => s,
        Err(code) => return code,
    };
    actix_web::rt::System::new().block_on(async move {
        match kubeplex::locate::locate_all(&settings).await {
            Ok(located) => {
                let reg = kubeplex::registry::Registry::new(&located, settings.duplicate_names);
                println!("{:<32} {:<20} {:<16} AMBIGUOUS", "KEY", "NAME", "LOCATOR");
                for c in reg.clusters() {
                    println!(
                        "{:<32} {:<20} {:<16} {}",
                        c.key, c.spec.name, c.locator, c.ambiguous
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}", e.message);
                ExitCode::FAILURE
            }
        }
    })
}

fn sim(args: SimArgs) -> ExitCode {
    let cluster = config::SimClusterConfig {
        name: "sim".into(),
        seed: args.seed.map(config::SeedSource::File),
        tokens: args
            .tokens
            .into_iter()
            .map(|token| config::SimToken {
                token,
                ..Default::default()
            })
            .collect(),
        faults: Default::default(),
    };
    actix_web::rt::System::new().block_on(async move {
        match kubeplex::sim::spawn(&args.listen, &cluster).await {
            Ok(server) => {
                tracing::info!(url = %server.url(), "simulated cluster listening");
                let _ = tokio::signal::ctrl_c().await;
                server.stop().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot start the simulated cluster on {}: {e}", args.listen);
                ExitCode::FAILURE
            }
        }
    })
}
