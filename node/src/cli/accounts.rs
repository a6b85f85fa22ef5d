//! `accordo user ...` (people who sign in to the web application) and
//! `accordo token ...` (read-only API tokens for integrations).

use super::Format;
use crate::api_tokens;
use crate::clock::now_ms;
use crate::replica::Replica;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a person who signs in to the web application; the password is
    /// read from standard input (one line), never from the command line.
    Add {
        #[arg(long)]
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// `viewer` reads; `editor` also changes.
        #[arg(long, value_enum, default_value = "editor")]
        role: crate::users::WebRole,
    },
    /// List the web application's users.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove a user (their sessions end when the web application next checks).
    Remove {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a read-only token for /api/v1/ (an integration such as the
    /// open-data portal); prints it once — only its hash is kept.
    Add {
        #[arg(long)]
        name: String,
    },
    /// List the tokens (names and creation times, never the tokens).
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove a token: requests carrying it are refused from now on.
    Remove {
        #[arg(long)]
        name: String,
    },
}

pub fn user_cmd(dir: &Path, cmd: UserCmd) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    match cmd {
        UserCmd::Add {
            name,
            password_stdin,
            role,
        } => {
            if !password_stdin {
                anyhow::bail!("give the password on standard input with --password-stdin (a password on the command line would be seen by other users of this machine)");
            }
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\n', '\r']);
            let user = crate::users::add(&mut replica.store, &name, password, role, now_ms())?;
            println!("added user {} ({})", user.name, user.role.as_str());
        }
        UserCmd::List { format } => {
            let users = crate::users::list(&mut replica.store)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                for u in &users {
                    println!("{:<32} {}", u.name, u.role.as_str());
                }
                println!("{} user(s)", users.len());
            }
        }
        UserCmd::Remove { name } => {
            crate::users::remove(&mut replica.store, &name)?;
            println!("removed user {name}");
        }
    }
    Ok(())
}

pub fn token_cmd(dir: &Path, cmd: TokenCmd) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    match cmd {
        TokenCmd::Add { name } => {
            let token = api_tokens::add(&mut replica.store, &name, now_ms())?;
            eprintln!("created API token {:?}; send it as `Authorization: Bearer TOKEN` to /api/v1/ (it is shown only now):", name.trim());
            println!("{token}");
        }
        TokenCmd::List { format } => {
            let tokens = api_tokens::list(&mut replica.store)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                for t in &tokens {
                    println!(
                        "{:<32} created {}",
                        t.name,
                        crate::clock::iso_ms(t.created_ms)
                    );
                }
                println!("{} token(s)", tokens.len());
            }
        }
        TokenCmd::Remove { name } => {
            api_tokens::remove(&mut replica.store, &name)?;
            println!("removed API token {name}");
        }
    }
    Ok(())
}
