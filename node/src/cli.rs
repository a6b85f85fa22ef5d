//! The `accordo` command line.
//!
//! Commands that only touch the local replica (init, id, project, status)
//! work offline and while `run` holds the same directory; `sync` and `run`
//! talk to the relay. Errors print as one `error: ...` line and exit non-zero.
//! Every flag can also be set in `/etc/accordo/node.toml` or `--config FILE`
//! (see `accordo_config`).

mod accounts;
mod admin_cmd;
mod backup;
use accounts::{token_cmd, user_cmd, TokenCmd, UserCmd};
use admin_cmd::{admin_cmd, AdminCmd};
mod codes;
mod exit_code;
mod files;
mod monitoring;
mod project;
mod project_list;
mod revoke;
mod runtime;
mod served;

use crate::admin;
use crate::client::{self, SyncFailure};
use crate::clock::now_ms;
pub use crate::output_format::Format;
use crate::replica::{default_network, Replica, Settings};
use crate::replica::{DB_FILE, KEY_FILE, NEXT_KEY_FILE};
use accordo_domain::comuni;
use accordo_net::keyfile;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::ChangeHash;
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::registry::{Invite, InviteError, KeyStatus, Statement};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use codes::{comune_in_force, parse_cup};
use exit_code::failure_code;
use runtime::runtime;
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
    /// Make an edit in this process even when `accordo run` serves the
    /// directory (its control socket); by default `run` makes it, with
    /// the documents it keeps loaded.
    #[arg(long, global = true, env = "ACCORDO_DIRECT")]
    direct: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

// Parsed once per process; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Create a node key and store for a comune (or from an invitation
    /// token); prints the node id as the last line.
    Init {
        #[arg(long, required_unless_present = "invite")]
        comune: Option<String>,
        /// The relay to sync with, as RELAY_ID@HOST:PORT.
        #[arg(long, required_unless_present = "invite")]
        relay: Option<String>,
        /// An invitation token from `accordo admin invite`: it carries the
        /// relay, the network, the comune, the role and the admin key to trust.
        #[arg(long, conflicts_with_all = ["comune", "relay", "admin"])]
        invite: Option<String>,
        /// Admin key(s) this node trusts: the network is then governed by the
        /// signed registry, checked by this node itself.
        #[arg(long)]
        admin: Vec<String>,
        /// Seconds to wait for the relay when redeeming an invitation.
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
        #[arg(long, default_value = "comune")]
        role: Role,
        /// Network name (default: derived from the relay id, as the relay does).
        #[arg(long)]
        network: Option<String>,
    },
    /// Print this node's id.
    Id,
    /// Network administration: the signed member registry.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// This node's key.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Re-verify every stored change (signature, actor binding, authority
    /// under the registry); exit 0 only if all hold.
    Verify {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Derive the query store (and document snapshots) again from the log
    /// alone; prints how many rows differed from the incrementally kept ones
    /// (0 unless something went wrong) and exits 1 if any did.
    RebuildViews,
    /// Who wrote each change of a project, and whether it verifies.
    Audit {
        cup: String,
        #[arg(long)]
        comune: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Projects of the portfolio.
    #[command(subcommand)]
    Project(project::ProjectCmd),
    /// Indicator catalog (metro) and this comune's baseline, target and observations.
    #[command(subcommand)]
    Indicator(monitoring::IndicatorCmd),
    /// The Strategic Metropolitan Plan's structure (metro writes it).
    #[command(subcommand)]
    Plan(monitoring::PlanCmd),
    /// The monitoring report over every document this node holds, stamped
    /// with each document's heads and a digest of its content.
    Report {
        /// Milestones due before this date and not achieved are late (default: today).
        #[arg(long)]
        as_of: Option<String>,
        /// Ignore observations after this period (YYYY, YYYY-Qn, YYYY-MM).
        #[arg(long)]
        period: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: monitoring::ReportFormat,
        #[arg(long)]
        out: Option<PathBuf>,
        /// `monitoraggio` (the monitoring report) or `sostenibilita` (the
        /// triennial sustainability report, with --from and --to).
        #[arg(long, value_enum, default_value = "monitoraggio")]
        kind: monitoring::ReportKind,
        /// First year of a sustainability report.
        #[arg(long, requires = "to")]
        from: Option<u16>,
        /// Last year of a sustainability report.
        #[arg(long, requires = "from")]
        to: Option<u16>,
        /// Recompute the JSON report FILE at the heads it was stamped with,
        /// from this node's log: exit 0 only if it matches, 1 if a figure
        /// differs or a head is not held here, 2 if FILE is not a report.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["as_of", "period", "format", "out"])]
        verify: Option<PathBuf>,
    },
    /// Import projects of this comune from a file (atomic: one bad row, nothing imported).
    Import {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "auto")]
        format: accordo_domain::import::Format,
        /// PNRR_Localizzazione file matching a PNRR_Progetti file.
        #[arg(long)]
        localizzazione: Option<PathBuf>,
        /// Check and count, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export projects as open data (Accordo's format; `import` reads it back).
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: files::ExportFormat,
        /// Every comune held, not only this one.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        out: PathBuf,
    },
    /// Push local changes and pull new ones once; exit 0 only when fully in sync.
    Sync {
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
        /// Put changes the relay refused back in the queue first.
        #[arg(long)]
        retry_rejected: bool,
    },
    /// Stay connected and sync continuously until SIGINT/SIGTERM.
    Run {
        /// Also serve the web application on this address, e.g.
        /// 127.0.0.1:8080 (off loopback only once a user exists).
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        #[command(flatten)]
        portal: crate::web::portal::PortalArgs,
        /// Serve Prometheus metrics at /metrics, and /healthz and /readyz,
        /// on this HTTP address (e.g. 127.0.0.1:9464).
        #[arg(long, value_name = "HOST:PORT")]
        metrics: Option<String>,
    },
    /// Write a consistent snapshot of this node's store (while `run` runs)
    /// to one archive file; the node's secret keys only with --with-keys.
    Backup {
        #[arg(long)]
        out: PathBuf,
        /// Include node.key (the archive is then created readable by its owner only).
        #[arg(long)]
        with_keys: bool,
    },
    /// Restore a backup archive into --dir, which must be new or empty.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
    /// People who sign in to the web application.
    #[command(subcommand)]
    User(UserCmd),
    /// Read-only tokens for integrations calling /api/v1/.
    #[command(subcommand)]
    Token(TokenCmd),
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
enum KeyCmd {
    /// Replace this node's key: the old key signs the rotation (pushed to the
    /// relay now), its history stays valid; prints the new node id.
    Rotate {
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
}

/// Read when it exists and no `--config FILE` (or `ACCORDO_CONFIG`) is given.
pub const DEFAULT_CONFIG: &str = "/etc/accordo/node.toml";
/// Exit code of an unusable configuration file, as clap's for a bad command line.
const CONFIG_ERROR_EXIT: u8 = 2;

pub fn main() -> ExitCode {
    let cli: Cli = match accordo_config::parse(Path::new(DEFAULT_CONFIG)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(CONFIG_ERROR_EXIT);
        }
    };
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
            invite: Some(token),
            timeout_s,
            ..
        } => return init_from_invite(dir, &token, Duration::from_secs(timeout_s)),
        Command::Init {
            comune,
            relay,
            role,
            network,
            admin,
            ..
        } => {
            let comune = comune_in_force(&comune.unwrap_or_default(), "--comune")?;
            let relay: RelayAddr = relay.unwrap_or_default().parse().context("--relay")?;
            let anchors = admin
                .iter()
                .map(|a| a.parse().context("--admin"))
                .collect::<Result<Vec<NodeId>>>()?;
            let network = network.unwrap_or_else(|| default_network(&relay.id));
            let replica = Replica::init(
                dir,
                Settings {
                    comune,
                    role,
                    relay,
                    network,
                    anchors,
                },
            )?;
            println!(
                "node created in {} for comune {}, role {}",
                dir.display(),
                comuni::label(replica.settings.comune.as_str()),
                replica.settings.role
            );
            println!("{}", replica.id);
        }
        Command::Id => println!("{}", Replica::open(dir)?.id),
        Command::Admin(cmd) => return admin_cmd(dir, cmd),
        Command::Indicator(cmd) => return monitoring::indicator_cmd(dir, cmd, cli.direct),
        Command::Plan(cmd) => monitoring::plan(dir, cmd)?,
        Command::Report {
            verify: Some(file), ..
        } => return monitoring::run_report_verify(dir, &file),
        Command::Report {
            kind: monitoring::ReportKind::Sostenibilita,
            from,
            to,
            format,
            out,
            ..
        } => monitoring::run_sustainability(dir, from, to, format, out)?,
        Command::Report {
            as_of,
            period,
            format,
            out,
            verify: None,
            ..
        } => monitoring::run_report(dir, as_of, period, format, out)?,
        Command::Import {
            file,
            format,
            localizzazione,
            dry_run,
        } => return files::run_import(dir, &file, format, localizzazione, dry_run),
        Command::Export { format, all, out } => files::run_export(dir, format, all, &out)?,
        Command::Key(KeyCmd::Rotate { timeout_s }) => {
            return rotate_key(dir, Duration::from_secs(timeout_s))
        }
        Command::Verify { format } => return verify(dir, format),
        Command::RebuildViews => return rebuild_views(dir),
        Command::Audit {
            cup,
            comune,
            format,
        } => crate::audit::audit(dir, &parse_cup(&cup)?, comune.as_deref(), format)?,
        Command::Project(cmd) => return project::run(dir, cmd, cli.direct),
        Command::Sync {
            timeout_s,
            retry_rejected,
        } => return sync(dir, Duration::from_secs(timeout_s), retry_rejected),
        Command::Run {
            http,
            portal,
            metrics,
        } => run_node(dir, http, portal, metrics)?,
        Command::Backup { out, with_keys } => backup::backup(dir, &out, with_keys)?,
        Command::Restore { from } => backup::restore(dir, &from)?,
        Command::User(cmd) => user_cmd(dir, cmd)?,
        Command::Token(cmd) => token_cmd(dir, cmd)?,
        Command::Status { format } => status(dir, format)?,
        Command::Demo { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

fn sync(dir: &Path, timeout: Duration, retry_rejected: bool) -> Result<ExitCode> {
    let mut replica = Replica::open(dir)?;
    if retry_rejected {
        let n = replica.store.write(|tx| tx.requeue_rejected())?;
        eprintln!("requeued {n} rejected change(s)");
    }
    let replica = Arc::new(Mutex::new(replica));
    match runtime()?.block_on(client::sync_once(Arc::clone(&replica), timeout)) {
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
            let mut replica = replica.lock().expect("replica mutex poisoned");
            if replica.governed() {
                let invalid = replica.verdict()?.invalid.len();
                if invalid > 0 {
                    println!("{invalid} change(s) held are invalid under the registry (written by retired keys after their cut, or built on such changes) and are not shown; `accordo verify` lists them");
                }
            }
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

fn run_node(
    dir: &Path,
    http: Option<std::net::SocketAddr>,
    portal: crate::web::portal::PortalArgs,
    metrics: Option<String>,
) -> Result<()> {
    portal.check()?;
    let rt = runtime()?;
    // First: a second `run` on this directory is refused here.
    let control = {
        let _in_runtime = rt.enter();
        crate::control::Control::claim(dir)?
    };
    let replica = Arc::new(Mutex::new(Replica::open(dir)?));
    // The replica local edits go through — the web application's and the
    // command line's over the control socket —, documents kept loaded.
    let edits = {
        let mut r = Replica::open(dir)?;
        r.doc_cache.keep_documents();
        Arc::new(Mutex::new(r))
    };
    if let Some(addr) = http {
        if crate::web::check_exposure(dir, addr, portal.public)? {
            eprintln!(
                "no office account yet: serving only the public portal and open data on {addr}; \
                 the office pages answer 403 until one is added (`accordo user add`)"
            );
        }
    }
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let local = async {
            let handler = served::handler(Arc::clone(&edits));
            control.serve(shutdown.clone(), handler).await;
            anyhow::Ok(())
        };
        let web = async {
            match http {
                Some(addr) => {
                    let listener = crate::web::bind(dir, addr, portal.public).await?;
                    eprintln!(
                        "web application on http://{}/",
                        listener.local_addr().unwrap_or(addr)
                    );
                    if portal.public {
                        eprintln!(
                            "public portal on http://{0}/pubblico/ and open data on http://{0}/opendata/",
                            listener.local_addr().unwrap_or(addr)
                        );
                    }
                    let edits = Arc::clone(&edits);
                    crate::web::serve_shared(edits, listener, shutdown.clone(), Some(&portal)).await?;
                }
                None => shutdown.cancelled().await,
            }
            anyhow::Ok(())
        };
        let engine = async {
            client::run_forever(replica, shutdown.clone()).await?;
            anyhow::Ok(())
        };
        let observed = async {
            match &metrics {
                Some(addr) => crate::metrics::serve(dir, addr, shutdown.clone()).await?,
                None => shutdown.cancelled().await,
            }
            anyhow::Ok(())
        };
        let signal = async {
            crate::signal::wait_for_signal().await;
            tracing::info!("signal received; stopping");
            shutdown.cancel();
        };
        tokio::pin!(web, engine, observed, local, signal);
        // Any part failing stops the others; a signal stops all.
        let mut web_done = false;
        let mut engine_done = false;
        let mut observed_done = false;
        let mut local_done = false;
        while !(web_done && engine_done && observed_done && local_done) {
            tokio::select! {
                r = &mut local, if !local_done => { local_done = true; shutdown.cancel(); r?; }
                r = &mut web, if !web_done => { web_done = true; shutdown.cancel(); r?; }
                r = &mut engine, if !engine_done => { engine_done = true; shutdown.cancel(); r?; }
                r = &mut observed, if !observed_done => { observed_done = true; shutdown.cancel(); r?; }
                () = &mut signal, if !shutdown.is_cancelled() => {}
            }
        }
        anyhow::Ok(())
    })
}

fn status(dir: &Path, format: Format) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    let st = crate::ops::status::read(&mut replica)?;
    let (pending, rejected_n, quarantined) =
        (st.outbox_pending, st.outbox_rejected, st.quarantined);
    let s = &replica.settings;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        println!("node     {}", replica.id);
        println!(
            "comune   {}, role {}",
            comuni::label(s.comune.as_str()),
            s.role
        );
        println!("relay    {}", s.relay);
        println!("outbox   {pending} pending, {rejected_n} rejected");
        if quarantined > 0 {
            println!("held     {quarantined} change(s) of authors this node cannot place (quarantine, not shown)");
        }
        for d in &st.docs {
            let name = d.comune_name.map(|n| format!(" {n}")).unwrap_or_default();
            println!("doc      {}{name} ({} changes)", d.doc, d.changes);
        }
    }
    Ok(())
}

/// `init --invite`: checks the token, creates the node, and redeems the
/// invitation at the relay; a refused redemption leaves no directory behind.
fn init_from_invite(dir: &Path, token: &str, timeout: Duration) -> Result<ExitCode> {
    let invite = Invite::from_token(token).context("--invite")?;
    let now = now_ms();
    if invite.expires_ms < now {
        anyhow::bail!(
            "--invite: {}",
            InviteError::Expired {
                expires_ms: invite.expires_ms,
                now_ms: now
            }
        );
    }
    let relay = invite.relay_addr().context("--invite")?;
    let existed = dir.exists();
    let settings = Settings {
        comune: invite.comune.clone(),
        role: invite.role,
        relay,
        network: invite.network.clone(),
        anchors: invite.anchors_to_pin(),
    };
    let mut replica = Replica::init(dir, settings)?;
    let id = replica.id;
    let hash = replica.state(
        &Statement::Redeem {
            invite: invite.clone(),
        },
        now,
    )?;
    let change = replica
        .store
        .read(|tx| tx.log().doc_changes(&DocId::Registry))?
        .into_iter()
        .find(|e| {
            accordo_protocol::registry::ChangeMeta::of_stored(e).is_ok_and(|m| m.hash == hash)
        })
        .context("the redemption just made is not in the log")?;
    let shared = Arc::new(Mutex::new(replica));
    match runtime()?.block_on(client::redeem(shared, change, timeout)) {
        Ok(()) => {
            println!(
                "node created in {} for comune {}, role {}, enrolled by invitation",
                dir.display(),
                comuni::label(invite.comune.as_str()),
                invite.role
            );
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            remove_node_dir(dir, existed);
            eprintln!("error: invitation not redeemed: {e}");
            Ok(failure_code(&e))
        }
    }
}

/// Removes what `init` created, so a failed init can simply be retried.
fn remove_node_dir(dir: &Path, existed: bool) {
    if existed {
        for f in [KEY_FILE, DB_FILE, "node.db-wal", "node.db-shm"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `key rotate`: the next key is written first (its file marks a rotation in
/// progress and blocks edits by the old key), the old key signs the rotation,
/// a sync delivers it, and only then does the new key take the old one's place.
fn rotate_key(dir: &Path, timeout: Duration) -> Result<ExitCode> {
    let mut replica = Replica::open(dir)?;
    if !replica.governed() {
        anyhow::bail!("key rotation needs a network governed by a registry (a node created with --invite or --admin)");
    }
    let next_path = dir.join(NEXT_KEY_FILE);
    if !next_path.exists() {
        keyfile::create(&next_path, &keyfile::generate()?)?;
    }
    let new_id = NodeId::from_signing_key(&keyfile::load(&next_path)?);
    let old_id = replica.id;
    let already_signed =
        {
            let verdict = replica.verdict()?;
            verdict.registry.members.get(&old_id).is_some_and(
                |m| matches!(&m.status, KeyStatus::Rotated { to, .. } if *to == new_id),
            )
        };
    if !already_signed && rotation_signed(&mut replica, new_id)?.is_none() {
        admin::rotation(&mut replica, new_id, now_ms())?;
    }
    let shared = Arc::new(Mutex::new(replica));
    if let Err(e) = runtime()?.block_on(client::sync_once(shared.clone(), timeout)) {
        // `accordo run`, syncing the same store, may have delivered the
        // rotation first: the relay then refuses the old key this sync
        // used, and the rotation is acknowledged all the same.
        let mut replica = shared
            .lock()
            .map_err(|_| anyhow::anyhow!("the replica's lock was poisoned"))?;
        if !rotation_acknowledged(&mut replica, new_id)? {
            eprintln!("error: rotation to {new_id} is signed but not delivered: {e}; run `accordo key rotate` again to finish it");
            return Ok(failure_code(&e));
        }
    }
    let retired = dir.join(format!("{KEY_FILE}.retired-{}", &old_id.to_string()[..16]));
    keyfile::replace(&next_path, &dir.join(KEY_FILE), &retired)
        .context("installing the new key")?;
    println!(
        "key rotated: {old_id} retired (kept as {}); history stays valid",
        retired.display()
    );
    println!("{new_id}");
    Ok(ExitCode::SUCCESS)
}

/// The change in which this node signed a rotation to `new`, if it did
/// (delivered or not).
fn rotation_signed(replica: &mut Replica, new: NodeId) -> Result<Option<ChangeHash>> {
    let me = replica.id;
    let changes = replica
        .store
        .read(|tx| tx.log().doc_changes(&DocId::Registry))?;
    Ok(changes.iter().find_map(|e| {
        if e.author != me {
            return None;
        }
        let m = accordo_protocol::registry::ChangeMeta::of_stored(e).ok()?;
        matches!(
            m.message.as_deref().map(Statement::from_message),
            Some(Ok(Statement::Rotate { new: n, .. })) if n == new
        )
        .then_some(m.hash)
    }))
}

/// Whether the relay acknowledged this node's rotation to `new` (signed,
/// and out of the outbox: a sync by this command or by `accordo run`).
fn rotation_acknowledged(replica: &mut Replica, new: NodeId) -> Result<bool> {
    let Some(hash) = rotation_signed(replica, new)? else {
        return Ok(false);
    };
    let pending: bool = replica.store.read(|tx| {
        tx.sql()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE hash = ?1)",
                [&hash.0[..]],
                |r| r.get(0),
            )
            .map_err(accordo_store::StoreError::from)
    })?;
    Ok(!pending)
}

fn rebuild_views(dir: &Path) -> Result<ExitCode> {
    let mut replica = Replica::open(dir)?;
    let anchors = replica.settings.anchors.clone();
    let started = std::time::Instant::now();
    let r = replica
        .store
        .write(|tx| crate::views::rebuild(tx, &anchors))?;
    println!(
        "rebuilt the views of {} document(s) from the log in {} ms: {} row(s), {} differed from the incremental views",
        r.documents,
        started.elapsed().as_millis(),
        r.rows,
        r.differing
    );
    Ok(if r.differing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn verify(dir: &Path, format: Format) -> Result<ExitCode> {
    let mut replica = Replica::open(dir)?;
    let governed = replica.governed();
    let (checked, findings) = admin::verify(&mut replica)?;
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "checked": checked,
                "governed": governed,
                "ok": findings.is_empty(),
                "findings": findings,
            }))?
        );
    } else {
        for f in &findings {
            println!(
                "INVALID {} {} by {}: {}",
                f.doc, f.hash, f.author, f.problem
            );
        }
        let scope = if governed {
            "signatures, actor bindings and authority under the registry"
        } else {
            "signatures and actor bindings (no registry: authority is the relay's allowlist)"
        };
        println!(
            "checked {checked} change(s): {scope}; {} problem(s)",
            findings.len()
        );
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
