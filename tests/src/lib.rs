//! Harness for end-to-end tests and benchmarks: runs the real `accordo` and
//! `accordo-relay` binaries, each in its own temporary directory, on loopback
//! port 0. Tests wait on observable state (a "listening on" line, a command's
//! exit, a status query), never on a bare sleep.

pub mod browser;
pub mod fault;
pub mod http;
pub mod openmetrics;
pub mod simnet;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Directory holding the built binaries (the profile directory of this test binary).
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<test-binary> or target/<profile>/<bench>
        let mut dir = exe.parent().expect("exe dir").to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let profile_release = dir.ends_with("release");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        // Cargo sets these for the test process; a build that inherits them
        // sees different build-script inputs and rebuilds ring, quinn and up
        // (about 40 s), then `cargo test` rebuilds them back next time.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_",
                "CARGO_TARGET_TMPDIR",
            ]
            .iter()
            .any(|p| name.starts_with(p))
            {
                cargo.env_remove(name.as_ref());
            }
        }
        let status = cargo
            // `accordo-tests` too, so that dependency features (tokio's
            // `test-util`, used by the simulation) unify as in `cargo test`
            // and this build reuses its artifacts instead of rebuilding.
            .args([
                "build",
                "--quiet",
                "-p",
                "accordo-node",
                "-p",
                "accordo-relay",
                "-p",
                "accordo-tests",
            ])
            .args(if profile_release {
                vec!["--release"]
            } else {
                vec![]
            })
            .status()
            .expect("running cargo build for the binaries");
        assert!(status.success(), "building accordo binaries failed");
        dir
    })
    .clone()
}

pub fn accordo_bin() -> PathBuf {
    bin_dir().join("accordo")
}

pub fn relay_bin() -> PathBuf {
    bin_dir().join("accordo-relay")
}

/// Output of a finished command, with helpers for assertions.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Result<Run> {
        if self.code != Some(0) {
            bail!(
                "command failed ({:?}): {}{}",
                self.code,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }

    pub fn last_line(&self) -> String {
        self.stdout
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.stdout).with_context(|| format!("not JSON: {}", self.stdout))
    }
}

/// Runs a binary to completion.
pub fn run(bin: &Path, args: &[&str]) -> Result<Run> {
    let out = Command::new(bin)
        .args(args)
        .env("ACCORDO_LOG", "warn")
        .env_remove("ACCORDO_DIR")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    Ok(Run::from(out))
}

/// A relay: its directory and, while serving, its process.
pub struct Relay {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub addr: Option<String>,
    child: Option<Child>,
}

impl Relay {
    pub fn init() -> Result<Relay> {
        Relay::init_at(tempfile::tempdir()?)
    }

    /// [`Relay::init`] in a new directory under `parent` (e.g. a
    /// filesystem that can lose power).
    pub fn init_in(parent: &Path) -> Result<Relay> {
        Relay::init_at(tempfile::tempdir_in(parent)?)
    }

    fn init_at(dir: tempfile::TempDir) -> Result<Relay> {
        let id = run(&relay_bin(), &["init", "--dir", &path(dir.path())])?
            .ok()?
            .last_line();
        Ok(Relay {
            dir,
            id,
            addr: None,
            child: None,
        })
    }

    /// A relay directory made some other way (e.g. by `restore`).
    pub fn from_dir(dir: tempfile::TempDir) -> Result<Relay> {
        let id = run(&relay_bin(), &["id", "--dir", &path(dir.path())])?
            .ok()?
            .last_line();
        Ok(Relay {
            dir,
            id,
            addr: None,
            child: None,
        })
    }

    fn dir_s(&self) -> String {
        path(self.dir.path())
    }

    pub fn allow(&self, node: &str, comune: &str, role: &str) -> Result<()> {
        run(
            &relay_bin(),
            &[
                "allow",
                "--dir",
                &self.dir_s(),
                "--node",
                node,
                "--comune",
                comune,
                "--role",
                role,
            ],
        )?
        .ok()?;
        Ok(())
    }

    /// Pins an admin key: the relay is then governed by the signed registry.
    pub fn pin_admin(&self, admin: &str) -> Result<()> {
        run(
            &relay_bin(),
            &[
                "allow",
                "--dir",
                &self.dir_s(),
                "--node",
                admin,
                "--role",
                "admin",
            ],
        )?
        .ok()?;
        Ok(())
    }

    /// Starts serving on `listen` (port 0 the first time, the same address on restart)
    /// and waits for the "listening on" line.
    pub fn start(&mut self) -> Result<()> {
        self.start_with(&[]).map(drop)
    }

    /// [`Relay::start`] with `--metrics` on a free loopback port; returns
    /// the metrics listener's address.
    pub fn start_with_metrics(&mut self) -> Result<String> {
        let lines = self.start_with(&["--metrics", "127.0.0.1:0"])?;
        lines
            .iter()
            .find_map(|l| l.strip_prefix("metrics on http://"))
            .and_then(|l| l.strip_suffix("/metrics"))
            .map(str::to_owned)
            .context("no `metrics on` line before `listening on`")
    }

    /// [`Relay::start`] with more `serve` flags; returns the lines printed
    /// before the "listening on" line.
    pub fn start_with(&mut self, extra: &[&str]) -> Result<Vec<String>> {
        let listen = self.addr.clone().unwrap_or_else(|| "127.0.0.1:0".into());
        let mut child = Command::new(relay_bin())
            .args(["serve", "--dir", &self.dir_s(), "--listen", &listen])
            .args(extra)
            .env("ACCORDO_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut before = Vec::new();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        break a.to_owned();
                    }
                    before.push(line);
                }
                _ => {
                    let _ = child.kill();
                    bail!("relay exited before listening");
                }
            }
        };
        self.addr = Some(addr);
        self.child = Some(child);
        Ok(before)
    }

    /// `RELAY_ID@HOST:PORT` for `accordo init`.
    pub fn address(&self) -> String {
        format!(
            "{}@{}",
            self.id,
            self.addr.as_deref().expect("relay started once")
        )
    }

    /// SIGKILL: no shutdown path runs.
    /// The running relay's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> Result<bool> {
        let Some(mut c) = self.child.take() else {
            return Ok(true);
        };
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()?;
        Ok(c.wait()?.success())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A node directory.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub id: String,
}

pub fn path(p: &Path) -> String {
    p.display().to_string()
}

impl Node {
    pub fn init(relay: &Relay, comune: &str, role: &str) -> Result<Node> {
        Node::init_at(tempfile::tempdir()?, relay, comune, role)
    }

    fn init_at(dir: tempfile::TempDir, relay: &Relay, comune: &str, role: &str) -> Result<Node> {
        let id = run(
            &accordo_bin(),
            &[
                "init",
                "--dir",
                &path(dir.path()),
                "--comune",
                comune,
                "--relay",
                &relay.address(),
                "--role",
                role,
            ],
        )?
        .ok()?
        .last_line();
        Ok(Node { dir, id })
    }

    /// A network admin for `relay` (`accordo admin init`), pinned on the
    /// relay and with its genesis statement pushed.
    pub fn admin(relay: &Relay) -> Result<Node> {
        Node::admin_at(tempfile::tempdir()?, relay)
    }

    /// [`Node::admin`] in a new directory under `parent`.
    pub fn admin_in(relay: &Relay, parent: &Path) -> Result<Node> {
        Node::admin_at(tempfile::tempdir_in(parent)?, relay)
    }

    fn admin_at(dir: tempfile::TempDir, relay: &Relay) -> Result<Node> {
        let id = run(
            &accordo_bin(),
            &[
                "admin",
                "init",
                "--dir",
                &path(dir.path()),
                "--relay",
                &relay.address(),
            ],
        )?
        .ok()?
        .last_line();
        relay.pin_admin(&id)?;
        let admin = Node { dir, id };
        admin.sync()?.ok()?;
        Ok(admin)
    }

    /// `accordo init --invite TOKEN` in a new directory: the run, and the
    /// node if it succeeded.
    pub fn from_invite(token: &str) -> Result<(Run, Option<Node>)> {
        Node::from_invite_at(tempfile::tempdir()?, token)
    }

    /// [`Node::from_invite`] in a new directory under `parent`.
    pub fn from_invite_in(token: &str, parent: &Path) -> Result<(Run, Option<Node>)> {
        Node::from_invite_at(tempfile::tempdir_in(parent)?, token)
    }

    fn from_invite_at(dir: tempfile::TempDir, token: &str) -> Result<(Run, Option<Node>)> {
        let node_dir = dir.path().join("node");
        let out = run(
            &accordo_bin(),
            &[
                "init",
                "--dir",
                &path(&node_dir),
                "--invite",
                token,
                "--timeout-s",
                "20",
            ],
        )?;
        if out.code != Some(0) {
            return Ok((out, None));
        }
        let id = out.last_line();
        // The node lives in a subdirectory of `dir`, which the Node keeps alive.
        let node = Node { dir, id };
        Ok((out, Some(node)))
    }

    /// An invitation token printed by `accordo admin invite` on this (admin) node.
    pub fn invite(&self, comune: &str, role: &str, expires_in: &str) -> Result<String> {
        Ok(self
            .cmd(&[
                "admin",
                "invite",
                "--comune",
                comune,
                "--role",
                role,
                "--expires-in",
                expires_in,
            ])?
            .ok()?
            .last_line())
    }

    /// An admitted node.
    pub fn admitted(relay: &Relay, comune: &str, role: &str) -> Result<Node> {
        let node = Node::init(relay, comune, role)?;
        relay.allow(&node.id, comune, role)?;
        Ok(node)
    }

    /// [`Node::admitted`] in a new directory under `parent`.
    pub fn admitted_in(relay: &Relay, comune: &str, role: &str, parent: &Path) -> Result<Node> {
        let node = Node::init_at(tempfile::tempdir_in(parent)?, relay, comune, role)?;
        relay.allow(&node.id, comune, role)?;
        Ok(node)
    }

    /// Runs `accordo --dir DIR args...`.
    pub fn cmd(&self, args: &[&str]) -> Result<Run> {
        let mut all = vec!["--dir".to_owned(), path(&self.node_dir())];
        all.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run(&accordo_bin(), &refs)
    }

    pub fn add(&self, cup: &str, title: &str) -> Result<()> {
        self.cmd(&["project", "add", "--cup", cup, "--title", title])?
            .ok()?;
        Ok(())
    }

    pub fn sync(&self) -> Result<Run> {
        self.cmd(&["sync", "--timeout-s", "20"])
    }

    /// `project list [--all] --format json`, as (comune, cup, title) sorted.
    pub fn projects(&self, all: bool) -> Result<Vec<(String, String, String)>> {
        let mut args = vec!["project", "list", "--format", "json"];
        if all {
            args.push("--all");
        }
        let v = self.cmd(&args)?.ok()?.json()?;
        let mut out: Vec<_> = v
            .as_array()
            .context("list is not an array")?
            .iter()
            .map(|p| {
                (
                    p["comune"].as_str().unwrap_or_default().to_owned(),
                    p["cup"].as_str().unwrap_or_default().to_owned(),
                    p["title"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.sort();
        Ok(out)
    }

    pub fn status(&self) -> Result<Value> {
        self.cmd(&["status", "--format", "json"])?.ok()?.json()
    }

    /// Heads of one document as `status` reports them.
    pub fn heads(&self, doc: &str) -> Result<Vec<String>> {
        let s = self.status()?;
        let docs = s["docs"].as_array().context("docs")?;
        Ok(docs
            .iter()
            .find(|d| d["doc"] == doc)
            .map(|d| {
                d["heads"]
                    .as_array()
                    .map(|h| {
                        h.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default())
    }

    /// The node directory: the temporary directory itself, or its `node`
    /// subdirectory for nodes made from an invitation.
    pub fn node_dir(&self) -> std::path::PathBuf {
        let sub = self.dir.path().join("node");
        if sub.is_dir() {
            sub
        } else {
            self.dir.path().to_owned()
        }
    }

    /// Starts `accordo run` on this directory.
    pub fn spawn_run(&self) -> Result<Child> {
        Ok(Command::new(accordo_bin())
            .args(["--dir", &path(&self.node_dir()), "run"])
            .env("ACCORDO_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?)
    }
}

/// Polls `check` until it returns true or `timeout` passes. The poll interval
/// is not synchronisation: the condition itself is observed state.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("condition not met within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Resident set size of a process, from `/proc` (None elsewhere).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
