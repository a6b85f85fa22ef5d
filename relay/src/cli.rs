//! The `accordo-relay` command line: init, id, allow, remove, members,
//! serve, backup, restore.
//!
//! A relay directory holds `relay.key` (the relay's secret key) and
//! `relay.db` (members and the change log). `--dir` may also come from
//! `ACCORDO_DIR`. Every flag can also be set in `/etc/accordo/relay.toml` or
//! `--config FILE` (see `accordo_config`).

use crate::metrics::RelayProbe;
use crate::server::{serve_with, Relay, ServeLimits, MAX_CONNECTIONS_PER_ADDR};
use crate::store::{self, RelayStore};
use accordo_net::{keyfile, TransportLimits};
use accordo_protocol::authority::Member;
use accordo_protocol::codes::Istat;
use accordo_protocol::identity::{NodeId, Role};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(crate) const KEY_FILE: &str = "relay.key";
pub(crate) const DB_FILE: &str = "relay.db";

#[derive(Parser)]
#[command(name = "accordo-relay", version, about = "Accordo metropolitan relay")]
struct Cli {
    /// Relay directory (key and store).
    #[arg(long, global = true, env = "ACCORDO_DIR")]
    dir: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a relay key and store; prints the relay id as the last line.
    Init {
        /// Network name carried in the ALPN and hello (default: derived from the relay id).
        #[arg(long)]
        network: Option<String>,
    },
    /// Print the relay id.
    Id,
    /// Admit a node key for a comune, or (`--role admin`) pin an admin key:
    /// a relay with an admin is governed by the signed registry alone.
    Allow {
        #[arg(long)]
        node: NodeId,
        /// The comune the key speaks for (not for `--role admin`).
        #[arg(long, required_unless_present_any = ["role"])]
        comune: Option<Istat>,
        #[arg(long, default_value = "comune")]
        role: Role,
    },
    /// Remove a key from the allowlist (a network without an admin): it may
    /// no longer connect or write; what it wrote before stays valid.
    Remove {
        #[arg(long)]
        node: NodeId,
    },
    /// List admitted members.
    Members {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Serve on HOST:PORT until SIGINT/SIGTERM.
    Serve {
        #[arg(long)]
        listen: String,
        /// Connections held at once from one source address (raise it if many
        /// offices reach the relay through one NAT address).
        #[arg(long, default_value_t = MAX_CONNECTIONS_PER_ADDR)]
        max_connections_per_addr: usize,
        /// Serve Prometheus metrics at /metrics, and /healthz and /readyz,
        /// on this HTTP address (e.g. 127.0.0.1:9465).
        #[arg(long, value_name = "HOST:PORT")]
        metrics: Option<String>,
    },
    /// Write a consistent snapshot of the store (while `serve` runs) to one
    /// archive file; the relay's secret key only with --with-keys.
    Backup {
        #[arg(long)]
        out: PathBuf,
        /// Include relay.key (the archive is then created readable by its owner only).
        #[arg(long)]
        with_keys: bool,
    },
    /// Restore a backup archive into --dir, which must be new or empty.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
}

/// Read when it exists and no `--config FILE` (or `ACCORDO_CONFIG`) is given.
pub const DEFAULT_CONFIG: &str = "/etc/accordo/relay.toml";

pub fn main() -> ExitCode {
    let cli: Cli = match accordo_config::parse(Path::new(DEFAULT_CONFIG)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e}");
            // As clap exits for a bad command line.
            return ExitCode::from(2);
        }
    };
    init_tracing(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ACCORDO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn dir(cli_dir: &Option<PathBuf>) -> Result<&Path> {
    cli_dir
        .as_deref()
        .context("no relay directory: pass --dir DIR or set ACCORDO_DIR")
}

/// Network name used when none is given: the first 8 bytes of the relay id.
pub fn default_network(id: &NodeId) -> String {
    format!("relay-{}", &id.to_string()[..16])
}

fn open_existing(dir: &Path) -> Result<(ed25519_dalek::SigningKey, RelayStore)> {
    let key_path = dir.join(KEY_FILE);
    if !key_path.exists() {
        bail!(
            "{} is not a relay directory (no {KEY_FILE}); run `accordo-relay init --dir {}` first",
            dir.display(),
            dir.display()
        );
    }
    let key = keyfile::load(&key_path)?;
    let store = store::open(&dir.join(DB_FILE))?;
    Ok((key, store))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn run(cli: Cli) -> Result<()> {
    let dir = dir(&cli.dir)?;
    match cli.command {
        Command::Init { network } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let key = keyfile::generate()?;
            keyfile::create(&dir.join(KEY_FILE), &key)?;
            let id = NodeId::from_signing_key(&key);
            let store = store::open(&dir.join(DB_FILE))?;
            let network = network.unwrap_or_else(|| default_network(&id));
            store.set_meta("network", &network)?;
            store.ensure_log_epoch()?;
            println!("relay created in {} for network {network}", dir.display());
            println!("{id}");
        }
        Command::Id => {
            let (key, _) = open_existing(dir)?;
            println!("{}", NodeId::from_signing_key(&key));
        }
        Command::Allow { node, comune, role } => {
            let (_, mut store) = open_existing(dir)?;
            if role == Role::Admin {
                if comune.is_some() {
                    bail!("--comune: an admin key speaks for no comune; omit it");
                }
                store.allow_admin(&node, now_ms())?;
                println!("pinned admin {node}: this relay now follows the signed registry");
                return Ok(());
            }
            let Some(comune) = comune else {
                bail!("--comune is required for role {role}");
            };
            let member = Member { node, comune, role };
            store.allow(&member, now_ms())?;
            println!("admitted {node} for comune {} as {role}", member.comune);
        }
        Command::Remove { node } => {
            let (_, store) = open_existing(dir)?;
            if store.trust().governed() {
                bail!("this relay follows a signed registry: revoke the key with `accordo admin revoke --node {node}` from an admin's node");
            }
            match store.remove(&node, now_ms())? {
                Some(m) => println!(
                    "removed {node} (comune {}, {}): it can no longer connect or write; the changes of it already stored stay valid",
                    m.comune, m.role
                ),
                None => bail!("--node {node}: not an active member of this relay"),
            }
        }
        Command::Members { format } => {
            let (_, store) = open_existing(dir)?;
            let members = active_members(&store)?;
            if format == Format::Json {
                let rows: Vec<_> = members
                    .iter()
                    .map(|m| serde_json::json!({"node": m.node.to_string(), "comune": m.comune.as_str(), "role": m.role.as_str()}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for m in members {
                    println!("{}  {}  {}", m.node, m.comune, m.role);
                }
            }
        }
        Command::Serve {
            listen,
            max_connections_per_addr,
            metrics,
        } => {
            let limits = ServeLimits {
                max_connections_per_addr,
                ..ServeLimits::default()
            };
            serve_until_signal(dir, &listen, limits, metrics.as_deref())?
        }
        Command::Backup { out, with_keys } => crate::backup::backup(dir, &out, with_keys)?,
        Command::Restore { from } => crate::backup::restore(dir, &from)?,
    }
    Ok(())
}

/// The members the relay admits: the registry's, or the allowlist's.
fn active_members(store: &RelayStore) -> Result<Vec<Member>> {
    let trust = store.trust();
    Ok(if trust.governed() {
        trust
            .registry
            .members
            .keys()
            .filter(|n| trust.registry.admits(n))
            .filter_map(|n| trust.registry.member(n))
            .collect()
    } else {
        store.members()?
    })
}

fn serve_until_signal(
    dir: &Path,
    listen: &str,
    limits: ServeLimits,
    metrics: Option<&str>,
) -> Result<()> {
    let (key, store) = open_existing(dir)?;
    let id = NodeId::from_signing_key(&key);
    // A store made before log epochs gets one at its first serve.
    store.ensure_log_epoch()?;
    let network = store
        .meta("network")?
        .unwrap_or_else(|| default_network(&id));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(listen)
        .with_context(|| format!("invalid --listen {listen:?}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("--listen {listen:?} resolves to no address"))?;
    let socket = std::net::UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?;
    let local = socket.local_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let endpoint = accordo_net::server_endpoint(
            socket,
            &key,
            accordo_net::Alpns::versions(accordo_protocol::SUPPORTED_VERSIONS, &network),
            &TransportLimits::default(),
        )?;
        let members = active_members(&store)?;
        let presence: std::collections::HashMap<NodeId, i64> =
            store.presence()?.into_iter().collect();
        let relay = Relay::new(id, network.clone(), store)?;
        // Each member's last sync as the store's presence recorded it, or
        // the relay's start for a key never seen, so a comune that never
        // syncs again still shows as silent after a restart.
        let started_s = now_ms() / 1000;
        for m in &members {
            let s = presence.get(&m.node).map_or(started_s, |ms| ms / 1000);
            relay.metrics().seen_at_least(m, s);
        }
        let shutdown = CancellationToken::new();
        let observer = match metrics {
            Some(addr) => Some(accordo_observe::bind(addr).await?),
            None => None,
        };
        tracing::info!(%local, relay = %id, %network, "listening");
        if let Some(l) = &observer {
            // The line tests wait for; it carries the real port.
            println!("metrics on http://{}/metrics", l.local_addr()?);
        }
        // The line tests and the demo wait for; the address carries the real port.
        println!("listening on {local}");
        std::io::stdout().flush()?;
        let probe = Arc::new(RelayProbe {
            relay: Arc::clone(&relay),
            db_path: dir.join(DB_FILE),
        });
        let observed = async {
            match observer {
                Some(listener) => accordo_observe::serve(listener, probe, shutdown.clone()).await,
                None => Ok(()),
            }
        };
        let server = serve_with(endpoint, relay, shutdown.clone(), limits);
        tokio::pin!(server);
        let serving = async {
            tokio::select! {
                served = &mut server => served,
                () = wait_for_signal() => {
                    tracing::info!("signal received");
                    shutdown.cancel();
                    server.await
                }
            }
        };
        let (served, observed) = tokio::join!(
            async {
                let served = serving.await;
                // The relay stopped (a signal or a fatal error): so does the listener.
                shutdown.cancel();
                served
            },
            observed
        );
        if let Err(e) = observed {
            tracing::error!(error = %e, "metrics listener failed");
        }
        // A fatal error (a poisoned store) ends the process non-zero, so the
        // service manager restarts it instead of it answering errors forever.
        served?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
