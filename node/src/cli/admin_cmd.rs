//! `accordo admin ...`: the registry statements an administrator signs
//! (enroll, revoke, add-relay, add-anchor, retire-anchor), invitations (sign, list) and members.

use super::codes::comune_in_force;
use super::project_list::COMUNE_WIDTH;
use super::revoke;
use super::Format;
use crate::admin;
use crate::clock::now_ms;
use crate::invitations;
use crate::replica::{default_network, Replica};
use accordo_domain::comuni;
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::registry::RegistryRole;
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create an admin directory and the network's registry; prints the admin id.
    Init {
        /// The relay, as RELAY_ID@HOST:PORT.
        #[arg(long)]
        relay: String,
        /// Network name (default: derived from the relay id, as the relay does).
        #[arg(long)]
        network: Option<String>,
    },
    /// Create an admin directory for an existing network, trusting its
    /// anchor(s); prints the new key, for an anchor's `admin add-anchor
    /// --key` (or `admin enroll --role admin`).
    Join {
        /// The relay, as RELAY_ID@HOST:PORT.
        #[arg(long)]
        relay: String,
        /// An anchor key of the network to pin (repeat for several).
        #[arg(long, required = true)]
        anchor: Vec<String>,
        /// Network name (default: derived from the relay id, as the relay does).
        #[arg(long)]
        network: Option<String>,
    },
    /// Enroll a node key for a comune and role.
    Enroll {
        #[arg(long)]
        node: String,
        #[arg(long)]
        comune: String,
        #[arg(long, default_value = "comune")]
        role: String,
    },
    /// Revoke a node key. First pulls every document from the relay, so the
    /// key's changes the network accepted stay valid; then pushes the revocation.
    Revoke {
        #[arg(long)]
        node: String,
        /// Revoke on this admin's local knowledge without reaching the relay:
        /// changes of the key it has not pulled become invalid.
        #[arg(long)]
        offline: bool,
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
    /// Make a key an anchor (an admin that adds and retires anchors and
    /// enrolls admins); signed by an anchor. Every node and relay follows it
    /// from the anchors it pinned.
    AddAnchor {
        /// The new anchor's node id (`accordo id` in its directory).
        #[arg(long)]
        key: String,
    },
    /// Retire an anchor key (never the last active one). Like `revoke`, it
    /// first pulls every document, so the key's changes the network accepted
    /// stay valid; its later ones are refused everywhere.
    RetireAnchor {
        #[arg(long)]
        key: String,
        /// Retire on this anchor's local knowledge without reaching the relay.
        #[arg(long)]
        offline: bool,
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
    /// List the keys the registry knows (anchors marked).
    Members {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Announce a relay of the network (a relay key writes nothing).
    AddRelay {
        /// The relay, as RELAY_ID@HOST:PORT.
        #[arg(long)]
        relay: String,
    },
    /// List the invitations this admin signed: pending (with the token),
    /// redeemed (by which key) or expired.
    Invitations {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print a one-time invitation token for a comune and role.
    Invite {
        #[arg(long)]
        comune: String,
        #[arg(long, default_value = "comune")]
        role: Role,
        /// How long the token stays valid, e.g. 7d, 12h, 30m.
        #[arg(long, default_value = "7d")]
        expires_in: String,
    },
}

pub fn admin_cmd(dir: &Path, cmd: AdminCmd) -> Result<ExitCode> {
    if let AdminCmd::Init { relay, network } = cmd {
        let relay: RelayAddr = relay.parse().context("--relay")?;
        let network = network.unwrap_or_else(|| default_network(&relay.id));
        let replica = admin::init(dir, relay, network.clone(), now_ms())?;
        println!(
            "admin created in {} for network {network}; pin it on the relay with `accordo-relay allow --node {} --role admin`",
            dir.display(),
            replica.id
        );
        println!("{}", replica.id);
        return Ok(ExitCode::SUCCESS);
    }
    if let AdminCmd::Join {
        relay,
        anchor,
        network,
    } = cmd
    {
        let relay: RelayAddr = relay.parse().context("--relay")?;
        let anchors = anchor
            .iter()
            .map(|a| a.parse().context("--anchor"))
            .collect::<Result<Vec<NodeId>>>()?;
        let network = network.unwrap_or_else(|| default_network(&relay.id));
        let replica = admin::join(dir, relay, network, anchors)?;
        println!(
            "admin directory created in {}; an anchor adds it with `accordo admin add-anchor --key {}`",
            dir.display(),
            replica.id
        );
        println!("{}", replica.id);
        return Ok(ExitCode::SUCCESS);
    }
    let mut replica = Replica::open(dir)?;
    match cmd {
        AdminCmd::Init { .. } | AdminCmd::Join { .. } => unreachable!("handled above"),
        AdminCmd::Enroll { node, comune, role } => {
            let node: NodeId = node.parse().context("--node")?;
            let comune = comune_in_force(&comune, "--comune")?;
            let role: RegistryRole = role.parse().map_err(anyhow::Error::msg).context("--role")?;
            admin::enroll(&mut replica, node, comune.clone(), role, now_ms())?;
            println!(
                "enrolled {node} for {} as {role} (pushed by the next sync)",
                comuni::label(comune.as_str())
            );
        }
        AdminCmd::Revoke {
            node,
            offline,
            timeout_s,
        } => {
            let args = crate::revocation::Request {
                node: node.parse().context("--node")?,
                offline,
                timeout: Duration::from_secs(timeout_s),
                now_ms: now_ms(),
            };
            return revoke::run(replica, args);
        }
        AdminCmd::AddAnchor { key } => {
            let node: NodeId = key.parse().context("--key")?;
            admin::add_anchor(&mut replica, node, now_ms())?;
            println!("added anchor {node} (pushed by the next sync)");
        }
        AdminCmd::RetireAnchor {
            key,
            offline,
            timeout_s,
        } => {
            let args = crate::revocation::Request {
                node: key.parse().context("--key")?,
                offline,
                timeout: Duration::from_secs(timeout_s),
                now_ms: now_ms(),
            };
            return revoke::run_retirement(
                replica,
                args,
                crate::revocation::Retirement::RetireAnchor,
            );
        }
        AdminCmd::Members { format } => {
            let registry = replica.verdict()?.registry.clone();
            let mut rows = admin::members_json(&registry);
            for r in &mut rows {
                let name = r["comune"].as_str().and_then(comuni::name);
                r["comune_name"] = json!(name);
            }
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    let anchor = if r["anchor"].as_bool() == Some(true) {
                        "  anchor"
                    } else {
                        ""
                    };
                    println!(
                        "{}  {:<COMUNE_WIDTH$}  {:6}  {}{anchor}",
                        r["node"].as_str().unwrap_or(""),
                        r["comune"].as_str().map_or("-".into(), comuni::label),
                        r["role"].as_str().unwrap_or(""),
                        r["status"].as_str().unwrap_or("")
                    );
                }
            }
        }
        AdminCmd::Invitations { format } => print_invitations(&mut replica, format)?,
        AdminCmd::AddRelay { relay } => {
            let relay: RelayAddr = relay.parse().context("--relay")?;
            admin::add_relay(&mut replica, &relay, now_ms())?;
            println!("announced relay {relay} (pushed by the next sync)");
        }
        AdminCmd::Invite {
            comune,
            role,
            expires_in,
        } => {
            let comune = comune_in_force(&comune, "--comune")?;
            let ttl = humantime::parse_duration(&expires_in).with_context(|| {
                format!("--expires-in {expires_in:?}: expected e.g. 7d, 12h, 30m")
            })?;
            let ttl_ms = i64::try_from(ttl.as_millis()).context("--expires-in: too long")?;
            let expires = now_ms().saturating_add(ttl_ms);
            let token = admin::invite(&mut replica, comune, role, expires, "cli")?;
            println!("{token}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_invitations(replica: &mut Replica, format: Format) -> Result<()> {
    let list = invitations::list(replica, now_ms())?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no invitations signed on this node (`accordo admin invite` signs one)");
    }
    for i in &list {
        let state = match &i.state {
            invitations::InvitationState::Redeemed { by } => format!("redeemed by {by}"),
            other => other.name().to_owned(),
        };
        println!(
            "{}  {:<COMUNE_WIDTH$}  {:6}  expires {}  {state}",
            i.id,
            comuni::label(&i.comune),
            i.role,
            crate::clock::iso_ms(i.expires_ms),
        );
    }
    Ok(())
}
