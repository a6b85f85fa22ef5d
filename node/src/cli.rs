//! The `accordo` command line.
//!
//! Commands that only touch the local replica (init, id, project, status)
//! work offline and while `run` holds the same directory; `sync` and `run`
//! talk to the relay. Errors print as one `error: ...` line and exit non-zero.

use crate::client::{self, SyncFailure};
use crate::money::{format_eur, parse_eur_cents};
use crate::portfolio;
use crate::replica::{default_network, Replica, Settings};
use accordo_protocol::codes::{Cup, Istat};
use accordo_protocol::doc::DocId;
use accordo_protocol::identity::{RelayAddr, Role};
use accordo_store::StoreError;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "accordo",
    version,
    about = "Accordo node: a comune's replica of the metropolitan plan"
)]
pub struct Cli {
    /// Node directory (key and store).
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

#[derive(Clone, Copy, ValueEnum, PartialEq, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node key and store for a comune; prints the node id as the last line.
    Init {
        #[arg(long)]
        comune: String,
        /// The relay to sync with, as RELAY_ID@HOST:PORT.
        #[arg(long)]
        relay: String,
        #[arg(long, default_value = "comune")]
        role: Role,
        /// Network name (default: derived from the relay id, as the relay does).
        #[arg(long)]
        network: Option<String>,
    },
    /// Print this node's id.
    Id,
    /// Projects of the portfolio.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Push local changes and pull new ones once; exit 0 only when fully in sync.
    Sync {
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
        /// Put changes the relay refused back in the queue first.
        #[arg(long)]
        retry_rejected: bool,
    },
    /// Stay connected and sync continuously until SIGINT/SIGTERM.
    Run,
    /// Node id, role, outbox and per-document heads.
    Status {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Start a relay, a metropolitan node and three comuni on loopback, edit
    /// offline, reconnect, and print the converged portfolio.
    Demo {
        /// Keep the demo's directories here instead of a temporary directory.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProjectCmd {
    /// Add a project to this comune's portfolio (works offline).
    Add {
        #[arg(long)]
        cup: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        cost_eur: Option<String>,
    },
    /// Edit fields of the project with this CUP.
    Set {
        cup: String,
        /// Internal id, when several projects share the CUP.
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        cost_eur: Option<String>,
    },
    /// List projects of this comune, or of every comune held with --all.
    List {
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show one project, with concurrent values of its fields if any.
    Show {
        cup: String,
        #[arg(long)]
        comune: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ACCORDO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,accordo_node=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn dir(cli_dir: &Option<PathBuf>) -> Result<&Path> {
    cli_dir
        .as_deref()
        .context("no node directory: pass --dir DIR or set ACCORDO_DIR")
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Demo { keep } = &cli.command {
        return crate::demo::run(keep.clone()).map(|()| ExitCode::SUCCESS);
    }
    let dir = dir(&cli.dir)?;
    match cli.command {
        Command::Init {
            comune,
            relay,
            role,
            network,
        } => {
            let comune: Istat = comune.parse().context("--comune")?;
            let relay: RelayAddr = relay.parse().context("--relay")?;
            let network = network.unwrap_or_else(|| default_network(&relay.id));
            let replica = Replica::init(
                dir,
                Settings {
                    comune,
                    role,
                    relay,
                    network,
                },
            )?;
            println!(
                "node created in {} for comune {} ({})",
                dir.display(),
                replica.settings.comune,
                replica.settings.role
            );
            println!("{}", replica.id);
        }
        Command::Id => println!("{}", Replica::open(dir)?.id),
        Command::Project(cmd) => project(dir, cmd)?,
        Command::Sync {
            timeout_s,
            retry_rejected,
        } => return sync(dir, Duration::from_secs(timeout_s), retry_rejected),
        Command::Run => run_node(dir)?,
        Command::Status { format } => status(dir, format)?,
        Command::Demo { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_cup(s: &str) -> Result<Cup> {
    let cup: Cup = s.parse().context("--cup")?;
    if !cup.has_usual_pattern() {
        eprintln!("warning: CUP {cup} does not match the usual pattern LNNLNNNNNNNNNNN");
    }
    Ok(cup)
}

fn project(dir: &Path, cmd: ProjectCmd) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    let own = replica.own_doc();
    match cmd {
        ProjectCmd::Add {
            cup,
            title,
            cost_eur,
        } => {
            let cup = parse_cup(&cup)?;
            let title = portfolio::validate_title(&title)?;
            let cost = cost_eur
                .map(|c| parse_eur_cents("--cost-eur", &c))
                .transpose()?;
            let id = portfolio::new_project_id()?;
            let now = now_ms();
            replica.edit(&own, now, |doc| {
                portfolio::add_project(doc, &id, &cup, &title, cost, now)
            })?;
            println!(
                "added project {cup} (id {id}) to comune {}",
                replica.settings.comune
            );
        }
        ProjectCmd::Set {
            cup,
            id,
            title,
            cost_eur,
        } => {
            let cup = parse_cup(&cup)?;
            let title = title.map(|t| portfolio::validate_title(&t)).transpose()?;
            let cost = cost_eur
                .map(|c| parse_eur_cents("--cost-eur", &c))
                .transpose()?;
            if title.is_none() && cost.is_none() {
                anyhow::bail!("nothing to change: pass --title and/or --cost-eur");
            }
            let (_, hash) = replica.edit(&own, now_ms(), |doc| {
                let id = match id {
                    Some(id) => id,
                    None => portfolio::find_one(doc, &cup)?,
                };
                if let Some(t) = &title {
                    portfolio::set_title(doc, &id, t)?;
                }
                if let Some(c) = cost {
                    portfolio::set_cost(doc, &id, c)?;
                }
                Ok(())
            })?;
            match hash {
                Some(_) => println!("updated project {cup}"),
                None => println!("project {cup} unchanged"),
            }
        }
        ProjectCmd::List { all, format } => {
            let docs = if all {
                replica.materialise_all()?
            } else {
                vec![(own.clone(), replica.materialise(&own)?)]
            };
            print_projects(&docs, format)?;
        }
        ProjectCmd::Show {
            cup,
            comune,
            format,
        } => {
            let cup = parse_cup(&cup)?;
            let doc_id = match comune {
                Some(c) => DocId::Comune(c.parse::<Istat>().context("--comune")?),
                None => own,
            };
            let doc = replica.materialise(&doc_id)?;
            let id = portfolio::find_one(&doc, &cup)?;
            show_project(&doc, &doc_id, &id, format)?;
        }
    }
    Ok(())
}

fn comune_of(doc: &DocId) -> String {
    match doc {
        DocId::Comune(c) => c.to_string(),
        DocId::Plan => "plan".into(),
        DocId::Registry => "registry".into(),
    }
}

fn print_projects(docs: &[(DocId, automerge::AutoCommit)], format: Format) -> Result<()> {
    let rows: Vec<_> = docs
        .iter()
        .filter(|(d, _)| matches!(d, DocId::Comune(_)))
        .flat_map(|(d, doc)| {
            portfolio::list(doc)
                .into_iter()
                .map(move |p| (comune_of(d), p))
        })
        .collect();
    if format == Format::Json {
        let items: Vec<_> = rows
            .iter()
            .map(|(comune, p)| {
                json!({"id": p.id, "cup": p.cup, "title": p.title, "comune": comune, "cost_cents": p.cost_cents})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    println!("{:<7} {:<16} {:>16}  TITLE", "COMUNE", "CUP", "COST EUR");
    for (comune, p) in &rows {
        let cost = p.cost_cents.map(format_eur).unwrap_or_else(|| "-".into());
        println!(
            "{comune:<7} {:<16} {cost:>16}  {}",
            p.cup.as_deref().unwrap_or("-"),
            p.title
        );
    }
    println!("{} project(s)", rows.len());
    Ok(())
}

fn show_project(
    doc: &automerge::AutoCommit,
    doc_id: &DocId,
    id: &str,
    format: Format,
) -> Result<()> {
    let project = portfolio::list(doc)
        .into_iter()
        .find(|p| p.id == id)
        .context("project vanished")?;
    let mut conflicts = serde_json::Map::new();
    for field in ["title", "cost_cents", "cup"] {
        let values = portfolio::field_conflicts(doc, id, field)?;
        if values.len() > 1 {
            conflicts.insert(
                field.into(),
                json!({"winner": values[0], "others": values[1..]}),
            );
        }
    }
    if format == Format::Json {
        let out = json!({"id": project.id, "cup": project.cup, "title": project.title,
            "cost_cents": project.cost_cents, "comune": comune_of(doc_id), "conflicts": conflicts});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "project {} (id {})",
        project.cup.as_deref().unwrap_or("-"),
        project.id
    );
    println!("  comune: {}", comune_of(doc_id));
    println!("  title:  {}", project.title);
    println!(
        "  cost:   {}",
        project
            .cost_cents
            .map(format_eur)
            .unwrap_or_else(|| "-".into())
    );
    for (field, c) in &conflicts {
        println!(
            "  conflict on {field}: {} won over {}",
            c["winner"], c["others"]
        );
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn sync(dir: &Path, timeout: Duration, retry_rejected: bool) -> Result<ExitCode> {
    let mut replica = Replica::open(dir)?;
    if retry_rejected {
        let n = replica.store.write(|tx| tx.requeue_rejected())?;
        eprintln!("requeued {n} rejected change(s)");
    }
    let replica = Arc::new(Mutex::new(replica));
    match runtime()?.block_on(client::sync_once(replica, timeout)) {
        Ok(report) => {
            println!(
                "in sync: pushed {}, received {}, {} round trip(s), {} bytes on the wire for {} bytes of changes, {} ms",
                report.pushed,
                report.received,
                report.round_trips,
                report.wire_bytes,
                report.change_bytes,
                report.elapsed.as_millis()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(match e {
                SyncFailure::Unreachable { .. } => ExitCode::from(3),
                SyncFailure::NotAdmitted(_) => ExitCode::from(4),
                SyncFailure::Rejected(_) => ExitCode::from(5),
                _ => ExitCode::FAILURE,
            })
        }
    }
}

fn run_node(dir: &Path) -> Result<()> {
    let replica = Arc::new(Mutex::new(Replica::open(dir)?));
    runtime()?.block_on(async move {
        let shutdown = CancellationToken::new();
        let engine = client::run_forever(replica, shutdown.clone());
        tokio::pin!(engine);
        tokio::select! {
            r = &mut engine => r?,
            () = crate::signal::wait_for_signal() => {
                tracing::info!("signal received; stopping");
                shutdown.cancel();
                engine.await?;
            }
        }
        anyhow::Ok(())
    })
}

fn status(dir: &Path, format: Format) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    let (pending, rejected_n, rejected, cursors, docs) = replica.store.read(|tx| {
        let (p, r) = tx.outbox_counts()?;
        Ok::<_, StoreError>((p, r, tx.rejected()?, tx.cursors()?, tx.log().docs()?))
    })?;
    let mut doc_rows = Vec::new();
    for (doc, changes) in docs {
        let mut am = replica.materialise(&doc)?;
        let mut heads: Vec<String> = am.get_heads().iter().map(|h| h.to_string()).collect();
        heads.sort();
        doc_rows.push(json!({"doc": doc.to_string(), "changes": changes, "heads": heads}));
    }
    let cursors: serde_json::Map<_, _> = cursors
        .iter()
        .map(|(scope, seq)| {
            let key = match scope {
                accordo_protocol::wire::Scope::All => "*".to_owned(),
                accordo_protocol::wire::Scope::Doc(d) => d.to_string(),
            };
            (key, json!(seq))
        })
        .collect();
    let s = &replica.settings;
    let out = json!({
        "node_id": replica.id.to_string(),
        "comune": s.comune.as_str(),
        "role": s.role.as_str(),
        "relay": s.relay.to_string(),
        "network": s.network,
        "outbox_pending": pending,
        "outbox_rejected": rejected_n,
        "rejected": rejected.iter().map(|(h, why)| json!({"hash": h.to_string(), "reason": why})).collect::<Vec<_>>(),
        "cursors": cursors,
        "docs": doc_rows,
    });
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("node     {}", replica.id);
        println!("comune   {} ({})", s.comune, s.role);
        println!("relay    {}", s.relay);
        println!("outbox   {pending} pending, {rejected_n} rejected");
        for d in &doc_rows {
            println!(
                "doc      {} ({} changes)",
                d["doc"].as_str().unwrap_or(""),
                d["changes"]
            );
        }
    }
    Ok(())
}
