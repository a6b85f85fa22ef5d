//! Multi-host: the relay and three nodes in their own network namespaces,
//! joined by veth links to a hub namespace, where a user-space UDP proxy
//! forwards between them with packet loss and delay (kernel netem is not
//! available). Partitions are made by taking a node's link down and healed
//! by bringing it back; the nodes converge after each heal.
//!
//! The test needs no root: it re-runs itself inside a private user, network
//! and mount namespace (`unshare --user --map-root-user --net --mount`), where
//! it may create namespaces and links that nobody else sees and that vanish
//! with it. Where that is impossible (no `unshare`, user namespaces disabled)
//! it fails, saying what is missing; it never passes without running.

use accordo_tests::{accordo_bin, path, relay_bin, run};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Share of datagrams the proxy drops, per mille.
const LOSS_PER_MILLE: u64 = 100;
/// One-way delay the proxy adds.
const DELAY: Duration = Duration::from_millis(15);
/// Partition/heal rounds.
const ROUNDS: usize = 3;

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Namespaces and links, removed on drop (also after a failure).
struct Net {
    prefix: String,
    namespaces: Vec<String>,
    links: Vec<String>,
}

impl Net {
    fn new() -> Net {
        Net {
            prefix: format!("acc{}", std::process::id() % 100_000),
            namespaces: vec![],
            links: vec![],
        }
    }

    /// A namespace `name` joined to the root namespace by a veth link on
    /// subnet 10.77.`subnet`.0/24: root side .1, namespace side .2.
    fn host(&mut self, name: &str, subnet: u8) -> Result<String> {
        let ns = format!("{}{name}", self.prefix);
        let (outer, inner) = (format!("{ns}o"), format!("{ns}i"));
        sh(&["ip", "netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        sh(&[
            "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ])?;
        self.links.push(outer.clone());
        sh(&["ip", "link", "set", &inner, "netns", &ns])?;
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("10.77.{subnet}.1/24"),
            "dev",
            &outer,
        ])?;
        sh(&["ip", "link", "set", &outer, "up"])?;
        for cmd in [
            vec![
                "ip",
                "addr",
                "add",
                &format!("10.77.{subnet}.2/24"),
                "dev",
                &inner,
            ],
            vec!["ip", "link", "set", &inner, "up"],
            vec!["ip", "link", "set", "lo", "up"],
        ] {
            let mut full = vec!["ip", "netns", "exec", &ns];
            full.extend(cmd.iter().copied());
            sh(&full)?;
        }
        Ok(ns)
    }

    fn link(&self, ns: &str, up: bool) -> Result<()> {
        sh(&[
            "ip",
            "link",
            "set",
            &format!("{ns}o"),
            if up { "up" } else { "down" },
        ])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A lossy, delaying UDP proxy: datagrams from any client to `listen` go to
/// `upstream` from a per-client socket, and back.
struct Proxy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

type Outgoing = (Instant, Arc<UdpSocket>, SocketAddr, Vec<u8>);

impl Proxy {
    fn start(listen: SocketAddr, upstream: SocketAddr, seed: u64) -> Result<Proxy> {
        let stop = Arc::new(AtomicBool::new(false));
        let front = Arc::new(UdpSocket::bind(listen)?);
        front.set_read_timeout(Some(Duration::from_millis(50)))?;
        let (tx, rx) = mpsc::channel::<Outgoing>();
        let mut threads = Vec::new();
        // The delay line: datagrams leave in order once their time comes.
        let stop_d = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            while !stop_d.load(Ordering::Relaxed) {
                let Ok((at, sock, dest, bytes)) = rx.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                let _ = sock.send_to(&bytes, dest);
            }
        }));
        let rng = Arc::new(Mutex::new(seed | 1));
        let lose = move || {
            let mut x = rng.lock().expect("rng");
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            *x % 1000 < LOSS_PER_MILLE
        };
        let stop_f = Arc::clone(&stop);
        let threads_out: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>> = Arc::default();
        let threads_in = Arc::clone(&threads_out);
        threads.push(std::thread::spawn(move || {
            let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            while !stop_f.load(Ordering::Relaxed) {
                let Ok((n, from)) = front.recv_from(&mut buf) else {
                    continue;
                };
                let up = clients.entry(from).or_insert_with(|| {
                    let sock = Arc::new(UdpSocket::bind("0.0.0.0:0").expect("bind upstream"));
                    sock.set_read_timeout(Some(Duration::from_millis(50)))
                        .expect("timeout");
                    let (sock_r, front_w, tx_b, stop_b) = (
                        Arc::clone(&sock),
                        Arc::clone(&front),
                        tx.clone(),
                        Arc::clone(&stop_f),
                    );
                    let lose_b = lose.clone();
                    threads_in
                        .lock()
                        .expect("threads")
                        .push(std::thread::spawn(move || {
                            let mut buf = vec![0u8; 65_536];
                            while !stop_b.load(Ordering::Relaxed) {
                                let Ok((n, _)) = sock_r.recv_from(&mut buf) else {
                                    continue;
                                };
                                if !lose_b() {
                                    let _ = tx_b.send((
                                        Instant::now() + DELAY,
                                        Arc::clone(&front_w),
                                        from,
                                        buf[..n].to_vec(),
                                    ));
                                }
                            }
                        }));
                    sock
                });
                if !lose() {
                    let _ = tx.send((
                        Instant::now() + DELAY,
                        Arc::clone(up),
                        upstream,
                        buf[..n].to_vec(),
                    ));
                }
            }
            for t in threads_out.lock().expect("threads").drain(..) {
                let _ = t.join();
            }
        }));
        Ok(Proxy { stop, threads })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn in_ns(ns: &str, bin: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns])
        .arg(bin)
        .args(args)
        .env("ACCORDO_LOG", "warn");
    c
}

struct Host {
    ns: String,
    dir: tempfile::TempDir,
}

impl Host {
    fn accordo(&self, args: &[&str]) -> Result<std::process::Output> {
        let mut all = vec!["--dir".to_owned(), path(self.dir.path())];
        all.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        Ok(in_ns(&self.ns, &accordo_bin(), &refs).output()?)
    }

    fn sync(&self, timeout_s: &str) -> Result<std::process::Output> {
        self.accordo(&["sync", "--timeout-s", timeout_s])
    }

    fn titles(&self, all: bool) -> Result<Vec<String>> {
        let mut args = vec!["project", "list", "--format", "json"];
        if all {
            args.push("--all");
        }
        let out = self.accordo(&args)?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("project list")?;
        let mut t: Vec<String> = v
            .as_array()
            .context("array")?
            .iter()
            .filter_map(|p| p["title"].as_str().map(String::from))
            .collect();
        t.sort();
        Ok(t)
    }
}

/// Set in the copy of this test that runs inside the private namespaces.
const INSIDE: &str = "ACCORDO_NETNS_INSIDE";
/// This test's name, for re-running it alone.
const TEST: &str = "nodes_in_separate_namespaces_converge_after_partitions_over_a_lossy_link";
/// What the environment must offer, named in every failure to get it.
const NEEDS: &str = "this test needs `unshare` and `mount` (util-linux), `ip` (iproute2), \
and leave to create a user namespace: run it as root, or allow unprivileged user namespaces \
(user.max_user_namespaces > 0; kernel.unprivileged_userns_clone=1 where that sysctl exists; \
no AppArmor restriction on them)";

#[test]
fn nodes_in_separate_namespaces_converge_after_partitions_over_a_lossy_link() -> Result<()> {
    if std::env::var_os(INSIDE).is_some() {
        return converge_in_namespaces();
    }
    // Re-run this test alone as root of a fresh user namespace that owns a
    // fresh network and mount namespace: there it may make namespaces and
    // links, whoever runs `cargo test`.
    // Build the binaries out here, where cargo has the network and the
    // caller's rights; the copy inside finds them up to date.
    accordo_bin();
    let exe = std::env::current_exe()?;
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--mount", "--"])
        .arg(&exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .output()
        .with_context(|| format!("running `unshare`: {NEEDS}"))?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    print!("{stdout}");
    eprint!("{stderr}");
    if stderr.starts_with("unshare:") {
        bail!(
            "private namespaces are unavailable ({}): {NEEDS}",
            stderr.trim()
        );
    }
    if !out.status.success() {
        bail!("the test failed inside its namespaces ({})", out.status);
    }
    // A filter that matched nothing would also exit 0: the copy must have run
    // this test, and it must have got to the end.
    if !stdout.contains("test result: ok. 1 passed") || !stdout.contains("netns: ") {
        bail!("the copy inside the namespaces did not run the test:\n{stdout}");
    }
    Ok(())
}

/// The relay process, killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the relay in `ns` on 10.77.2.2:4433; returns once it listens.
fn start_relay(ns: &str, dir: &std::path::Path) -> Result<Running> {
    let mut relay = Running(
        in_ns(
            ns,
            &relay_bin(),
            &["serve", "--dir", &path(dir), "--listen", "10.77.2.2:4433"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?,
    );
    let mut lines = BufReader::new(relay.0.stdout.take().context("stdout")?).lines();
    if !lines
        .next()
        .and_then(Result::ok)
        .is_some_and(|l| l.starts_with("listening on"))
    {
        bail!("relay did not start in its namespace");
    }
    Ok(relay)
}

/// Initialises a node in `ns` that reaches the relay through the proxy on
/// its link's root side, and admits it at the relay.
fn admitted_host(
    ns: String,
    subnet: u8,
    comune: &str,
    role: &str,
    relay_id: &str,
    relay_dir: &std::path::Path,
) -> Result<Host> {
    let host = Host {
        ns,
        dir: tempfile::tempdir()?,
    };
    let relay_addr = format!("{relay_id}@10.77.{subnet}.1:4433");
    let out = in_ns(
        &host.ns,
        &accordo_bin(),
        &[
            "init",
            "--dir",
            &path(host.dir.path()),
            "--comune",
            comune,
            "--relay",
            &relay_addr,
            "--role",
            role,
        ],
    )
    .output()?;
    if !out.status.success() {
        bail!("accordo init: {}", String::from_utf8_lossy(&out.stderr));
    }
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    run(
        &relay_bin(),
        &[
            "allow",
            "--dir",
            &path(relay_dir),
            "--node",
            &id,
            "--comune",
            comune,
            "--role",
            role,
        ],
    )?
    .ok()?;
    Ok(host)
}

/// The test proper, as root of its own user namespace.
fn converge_in_namespaces() -> Result<()> {
    // `ip netns` keeps its namespaces under /run/netns: a tmpfs private to
    // this mount namespace keeps them from everyone else's.
    sh(&["mount", "-t", "tmpfs", "accordo-netns", "/run"]).context(NEEDS)?;
    sh(&["ip", "link", "set", "lo", "up"]).context(NEEDS)?;
    let mut net = Net::new();
    let relay_ns = net.host("r", 2).context(NEEDS)?;
    let names = [
        ("a", 11u8, "092009", "comune"),
        ("b", 12, "092051", "comune"),
        ("m", 13, "092009", "metro"),
    ];
    let relay_dir = tempfile::tempdir()?;
    let relay_id = run(&relay_bin(), &["init", "--dir", &path(relay_dir.path())])?
        .ok()?
        .last_line();
    let _relay = start_relay(&relay_ns, relay_dir.path())?;
    let _proxy = Proxy::start("0.0.0.0:4433".parse()?, "10.77.2.2:4433".parse()?, 7)?;
    let mut nodes = Vec::new();
    for (name, subnet, comune, role) in names {
        let ns = net.host(name, subnet)?;
        nodes.push(admitted_host(
            ns,
            subnet,
            comune,
            role,
            &relay_id,
            relay_dir.path(),
        )?);
    }
    let started = Instant::now();
    partition_and_heal(&net, &nodes)?;
    println!(
        "netns: {ROUNDS} partition/heal rounds over a link with {} % loss and {} ms delay each way converged in {:.1} s",
        LOSS_PER_MILLE / 10,
        DELAY.as_millis(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Each round: A is cut off, A and B edit, A's sync reports the relay
/// unreachable, B syncs; then A's link heals and the metro office must hold
/// every project made so far.
fn partition_and_heal(net: &Net, nodes: &[Host]) -> Result<()> {
    let (a, b, metro) = (&nodes[0], &nodes[1], &nodes[2]);
    let mut expected = Vec::new();
    for round in 0..ROUNDS {
        net.link(&a.ns, false)?;
        for (node, tag, cup) in [(a, "A", "F21B"), (b, "B", "H81B")] {
            let title = format!("Round {round} {tag}");
            let out = node.accordo(&[
                "project",
                "add",
                "--cup",
                &format!("{cup}{round:011}"),
                "--title",
                &title,
            ])?;
            assert!(out.status.success(), "project add: {out:?}");
            expected.push(title);
        }
        let cut_off = a.sync("2")?;
        assert_eq!(
            cut_off.status.code(),
            Some(3),
            "a partitioned node reports the relay unreachable"
        );
        assert!(b.sync("60")?.status.success());
        net.link(&a.ns, true)?;
        for n in [a, b, metro] {
            let out = n.sync("60")?;
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        expected.sort();
        assert_eq!(
            metro.titles(true)?,
            expected,
            "round {round}: the metro office holds every project"
        );
    }
    Ok(())
}
