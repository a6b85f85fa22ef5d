//! The container network (`deploy/container/`), without a container engine:
//! its set-up script and every service's command from `compose.yaml`, run
//! on loopback with the compose file's own arguments (addresses rewritten to
//! 127.0.0.1, the volume to a temporary directory). A comune's edit reaches
//! the metropolitan node through the relay, and a second set-up keeps every
//! key. The image build itself needs an engine (none runs on the test
//! machines); the Containerfile only copies these binaries and this script.

use accordo_tests::{bin_dir, path, wait_until};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn container_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/container")
}

/// Each service's `command:` (written as a flow sequence of quoted strings,
/// which is also JSON) and the set-up's `environment:` entries.
struct Compose {
    commands: BTreeMap<String, Vec<String>>,
    setup_env: Vec<(String, String)>,
}

fn compose() -> Result<Compose> {
    let text = std::fs::read_to_string(container_dir().join("compose.yaml"))?;
    let services = text
        .split_once("\nservices:\n")
        .context("compose.yaml has no services")?
        .1;
    let services = services.split("\nvolumes:").next().unwrap_or(services);
    let mut commands = BTreeMap::new();
    let mut setup_env = Vec::new();
    let mut service = String::new();
    let mut lines = services.lines().peekable();
    while let Some(line) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let line = line.trim();
        if indent == 2 && line.ends_with(':') {
            service = line.trim_end_matches(':').to_owned();
        } else if let Some(rest) = line.strip_prefix("command:") {
            let mut flow = rest.trim().to_owned();
            while !flow.ends_with(']') {
                flow.push_str(lines.next().context("unterminated command")?.trim());
            }
            let argv: Vec<String> = serde_json::from_str(&flow)
                .with_context(|| format!("{service}'s command is not a flow sequence: {flow}"))?;
            commands.insert(service.clone(), argv);
        } else if service == "setup" && indent == 6 {
            if let Some((k, v)) = line.split_once(": ") {
                setup_env.push((k.to_owned(), v.trim_matches('"').to_owned()));
            }
        }
    }
    Ok(Compose {
        commands,
        setup_env,
    })
}

/// Runs the set-up script; returns its output lines.
fn setup(compose: &Compose, data: &Path, relay_addr: &str) -> Result<Vec<String>> {
    let mut cmd = Command::new("sh");
    cmd.arg(container_dir().join("setup"));
    for (k, v) in &compose.setup_env {
        cmd.env(k, v);
    }
    let out = cmd
        .env("ACCORDO_DATA", data)
        .env("ACCORDO_RELAY_ADDR", relay_addr)
        .env("ACCORDO_DIR", "/nonexistent/must-be-ignored")
        .env("ACCORDO_LOG", "warn")
        .env(
            "PATH",
            format!("{}:{}", path(&bin_dir()), std::env::var("PATH")?),
        )
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "setup failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout.lines().map(str::to_owned).collect())
}

struct Services(Vec<Child>);

impl Drop for Services {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free UDP port on loopback for the relay (nodes are told it at set-up).
fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[test]
fn the_compose_network_sets_up_and_a_comune_edit_reaches_the_metro() -> Result<()> {
    let compose = compose()?;
    let names: Vec<&str> = compose.commands.keys().map(String::as_str).collect();
    assert_eq!(names, ["metro", "quartu", "relay", "selargius", "setup"]);
    let data = tempfile::tempdir()?;
    let relay_addr = format!("127.0.0.1:{}", free_udp_port()?);
    let first = setup(&compose, data.path(), &relay_addr)?;
    // A relay line, the metro and two comuni, the closing line.
    assert_eq!(first.len(), 5, "{first:?}");
    assert!(first[1].starts_with("metro metro (092009) "), "{first:?}");
    assert!(first[2].starts_with("comune quartu (092051) "), "{first:?}");
    assert!(
        first[3].starts_with("comune selargius (092068) "),
        "{first:?}"
    );
    // Set-up again (the service restarted): same keys, nothing re-made.
    let again = setup(&compose, data.path(), &relay_addr)?;
    assert_eq!(again, first, "a second set-up changed the network");
    let members = Command::new(bin_dir().join("accordo-relay"))
        .args(["members", "--dir", &path(&data.path().join("relay"))])
        .output()?;
    let members = String::from_utf8(members.stdout)?;
    assert_eq!(members.lines().count(), 3, "{members}");
    assert!(members.contains("092009  metro"), "{members}");

    // Every long-running service, with the compose file's own arguments.
    let mut services = Services(Vec::new());
    for name in ["relay", "metro", "quartu", "selargius"] {
        let argv: Vec<String> = compose.commands[name]
            .iter()
            .map(|a| {
                a.replace("/var/lib/accordo", &path(data.path()))
                    .replace("0.0.0.0:4433", &relay_addr)
                    .replace("0.0.0.0:", "127.0.0.1:")
                    .replace("127.0.0.1:8080", "127.0.0.1:0")
                    .replace("127.0.0.1:9464", "127.0.0.1:0")
            })
            .collect();
        let log = std::fs::File::create(data.path().join(format!("{name}.log")))?;
        let child = Command::new(bin_dir().join(&argv[0]))
            .args(&argv[1..])
            .env("ACCORDO_LOG", "info")
            .env_remove("ACCORDO_DIR")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}: {argv:?}"))?;
        services.0.push(child);
    }
    let quartu = data.path().join("quartu");
    let add = Command::new(bin_dir().join("accordo"))
        .args(["--dir", &path(&quartu), "project", "add"])
        .args(["--cup", "H81B22000120001", "--title", "Pista ciclabile"])
        .env("ACCORDO_LOG", "warn")
        .output()?;
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let metro = data.path().join("metro");
    let waited = wait_until(Duration::from_secs(60), || {
        for (name, child) in ["relay", "metro", "quartu", "selargius"]
            .iter()
            .zip(services.0.iter_mut())
        {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(data.path().join(format!("{name}.log")))?;
                bail!("{name} exited ({status}): {log}");
            }
        }
        let list = Command::new(bin_dir().join("accordo"))
            .args(["--dir", &path(&metro), "project", "list", "--all"])
            .args(["--format", "json"])
            .env("ACCORDO_LOG", "warn")
            .output()?;
        Ok(String::from_utf8_lossy(&list.stdout).contains("H81B22000120001"))
    })?;
    println!("the comune's project reached the metro node in {waited:?}");
    Ok(())
}
