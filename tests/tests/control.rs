//! The command line's edits served by `accordo run` over its control socket
//! (`DIR/control.sock`): the same output and exit codes as the direct path,
//! the change synced as usual, a fallback to the direct path when `run` was
//! killed, and an edit made by another process while `run` holds the
//! document loaded never lost (`doc_cache`'s rule: the views' `doc_state`
//! decides whether the resident copy may be used).

use accordo_tests::{accordo_bin, path, wait_until, Node, Relay, Run};
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TORINO: &str = "001272";
const METRO: &str = "001272";

/// `accordo run` on `node`, logging at info level into a file, so that the
/// test sees when it serves the socket and each edit it serves.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(node: &Node, log: PathBuf) -> Result<Running> {
        let child = Command::new(accordo_bin())
            .args(["--dir", &path(&node.node_dir()), "run"])
            .env("ACCORDO_LOG", "warn,accordo_node::control=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let running = Running { child, log };
        wait_until(Duration::from_secs(20), || {
            Ok(running.log_text().contains("serving local edits"))
        })
        .context("`run` never served its control socket")?;
        Ok(running)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Edits served so far (one log line each).
    fn served(&self) -> usize {
        self.log_text().matches("served a local edit").count()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The command's output with random project ids (16 hex digits) made stable.
fn stable(run: &Run) -> (Option<i32>, String, String) {
    let strip = |s: &str| {
        let mut out = String::new();
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            let id = word.len() == 16 && word.chars().all(|c| c.is_ascii_hexdigit());
            out.push_str(if id { "ID" } else { word.as_str() });
            word.clear();
        };
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    };
    (run.code, strip(&run.stdout), strip(&run.stderr))
}

fn project(node: &Node, cup: &str) -> Result<Value> {
    let list = node
        .cmd(&["project", "list", "--format", "json"])?
        .ok()?
        .json()?;
    list.as_array()
        .context("a list")?
        .iter()
        .find(|p| p["cup"] == cup)
        .cloned()
        .with_context(|| format!("no project {cup} listed"))
}

/// Runs `project ARGS` served (through `run`) and checks it was served.
fn served(node: &Node, running: &Running, args: &[&str]) -> Result<Run> {
    let before = running.served();
    let mut all = vec!["project"];
    all.extend_from_slice(args);
    let out = node.cmd(&all)?;
    anyhow::ensure!(
        running.served() == before + 1,
        "`{}` was not served by `run`",
        args.join(" ")
    );
    Ok(out)
}

/// The same, done by the command line itself (`--direct`).
fn direct(node: &Node, args: &[&str]) -> Result<Run> {
    let mut all = vec!["--direct", "project"];
    all.extend_from_slice(args);
    node.cmd(&all)
}

#[test]
fn served_edits_print_what_direct_edits_print_and_sync() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut relay = Relay::init()?;
    relay.start()?;
    let a = Node::admitted(&relay, TORINO, "comune")?;
    let metro = Node::admitted(&relay, METRO, "metro")?;
    let running = Running::start(&a, scratch.path().join("run.log"))?;

    let cases: [&[&str]; 5] = [
        &["add", "--cup", "J12B00000000001", "--title", "Scuola"],
        &["set", "J12B00000000001", "--paid-eur", "1000"],
        &["set", "J12B00000000001", "--title", "Scuola media"],
        &["set", "J12B00000000001", "--title", "Scuola media"],
        &["add", "--cup", "J12B00000000001", "--title", "Scuola bis"],
    ];
    // Each edit served, then the same edit direct on a second CUP: the
    // same output once the CUP and the random id are set aside.
    for args in cases {
        let via_run = served(&a, &running, args)?;
        assert_eq!(via_run.code, Some(0), "{via_run:?}");
        let other: Vec<String> = args
            .iter()
            .map(|s| s.replace("J12B00000000001", "J12B00000000002"))
            .collect();
        let other: Vec<&str> = other.iter().map(String::as_str).collect();
        let here = direct(&a, &other)?;
        let (c, o, e) = stable(&here);
        assert_eq!(
            stable(&via_run),
            (
                c,
                o.replace("J12B00000000002", "J12B00000000001"),
                e.replace("J12B00000000002", "J12B00000000001")
            ),
            "`{}`",
            args.join(" ")
        );
    }
    // The second add of a CUP warned, on stderr, through the socket too.
    let again = served(
        &a,
        &running,
        &["add", "--cup", "J12B00000000001", "--title", "Ter"],
    )?;
    assert!(
        again
            .stderr
            .contains("warning: CUP J12B00000000001 is already used"),
        "{again:?}"
    );
    served(
        &a,
        &running,
        &["add", "--cup", "J12B00000000005", "--title", "Unico"],
    )?
    .ok()?;

    // Refused edits: the same message and exit code as the direct path.
    let refused: [&[&str]; 4] = [
        &["set", "BADCUP", "--paid-eur", "1"],
        &["set", "J12B00000000099", "--paid-eur", "1"],
        &["set", "J12B00000000005", "--progress", "200"],
        &["add", "--cup", "J12B00000000003", "--title", " "],
    ];
    for args in refused {
        let via_run = served(&a, &running, args)?;
        let here = direct(&a, args)?;
        assert_ne!(via_run.code, Some(0), "{via_run:?}");
        assert!(via_run.stderr.starts_with("error: "), "{via_run:?}");
        assert_eq!(
            (via_run.code, &via_run.stdout, &via_run.stderr),
            (here.code, &here.stdout, &here.stderr)
        );
    }
    // The served edits reach the relay through `run`'s pusher.
    wait_until(Duration::from_secs(20), || {
        metro.sync()?.ok()?;
        let all = metro.projects(true)?;
        Ok(all.iter().filter(|p| p.1 == "J12B00000000001").count() == 3)
    })?;
    let listed = metro
        .cmd(&["project", "list", "--all", "--format", "json"])?
        .ok()?
        .json()?;
    let paid: Vec<&Value> = listed
        .as_array()
        .context("a list")?
        .iter()
        .filter(|p| p["cup"] == "J12B00000000001")
        .map(|p| &p["paid_cents"])
        .collect();
    assert!(paid.contains(&&Value::from(100_000)), "{paid:?}");
    Ok(())
}

#[test]
fn an_edit_by_another_process_is_not_lost_by_the_resident_document() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut relay = Relay::init()?;
    relay.start()?;
    let a = Node::init(&relay, TORINO, "comune")?;
    a.add("J12B00000000001", "Ponte")?;
    let running = Running::start(&a, scratch.path().join("run.log"))?;
    // Loads the document into `run` and keeps it there.
    served(&a, &running, &["set", "J12B00000000001", "--paid-eur", "6"])?.ok()?;
    // Another process edits the same project's payments meanwhile.
    direct(&a, &["set", "J12B00000000001", "--paid-eur", "7"])?.ok()?;
    // `run` edits another field: were it to use its copy without the
    // direct edit, the views would show the old payments again.
    served(
        &a,
        &running,
        &["set", "J12B00000000001", "--title", "Ponte nuovo"],
    )?
    .ok()?;
    let p = project(&a, "J12B00000000001")?;
    assert_eq!(
        (p["paid_cents"].clone(), p["title"].clone()),
        (700.into(), "Ponte nuovo".into())
    );
    let shown = a
        .cmd(&["project", "show", "J12B00000000001", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(shown["paid_cents"], 700);
    // And the resident copy is then current: a further served edit keeps both.
    served(
        &a,
        &running,
        &["set", "J12B00000000001", "--committed-eur", "9"],
    )?
    .ok()?;
    let p = project(&a, "J12B00000000001")?;
    assert_eq!(
        (
            p["paid_cents"].clone(),
            p["committed_cents"].clone(),
            p["title"].clone()
        ),
        (700.into(), 900.into(), "Ponte nuovo".into())
    );
    drop(running);
    let rebuilt = a.cmd(&["rebuild-views"])?;
    assert_eq!(rebuilt.code, Some(0), "{rebuilt:?}");
    Ok(())
}

fn socket(node: &Node) -> PathBuf {
    node.node_dir().join("control.sock")
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

#[test]
fn after_kill_9_the_command_line_edits_itself_and_the_next_run_serves() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut relay = Relay::init()?;
    relay.start()?;
    let a = Node::init(&relay, TORINO, "comune")?;
    let mut first = Running::start(&a, scratch.path().join("run1.log"))?;
    // A second `run` on the same directory is refused while one runs.
    let second = a.cmd(&["run"])?;
    assert_ne!(second.code, Some(0));
    assert!(second.stderr.contains("already running"), "{second:?}");
    served(
        &a,
        &first,
        &["add", "--cup", "J12B00000000001", "--title", "Uno"],
    )?
    .ok()?;

    first.kill9();
    assert!(exists(&socket(&a)), "kill -9 leaves the socket file behind");
    let after = a.cmd(&["project", "set", "J12B00000000001", "--paid-eur", "3"])?;
    assert_eq!(after.code, Some(0), "{after:?}");
    assert_eq!(after.stdout.trim(), "updated project J12B00000000001");
    assert_eq!(first.served(), 1, "the killed process served nothing more");
    assert_eq!(project(&a, "J12B00000000001")?["paid_cents"], 300);

    let next = Running::start(&a, scratch.path().join("run2.log"))?;
    assert!(next.log_text().contains("replaced a stale control socket"));
    served(&a, &next, &["set", "J12B00000000001", "--paid-eur", "4"])?.ok()?;
    assert_eq!(project(&a, "J12B00000000001")?["paid_cents"], 400);
    // A clean stop removes the socket.
    let mut next = next;
    let pid = next.child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status()?;
    assert!(term.success());
    let status = next.child.wait()?;
    assert!(status.success(), "{status:?}");
    assert!(!exists(&socket(&a)));
    Ok(())
}
