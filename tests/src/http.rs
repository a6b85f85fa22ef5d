//! Plain HTTP/1.1 GETs against the metrics listeners of the binaries under
//! test (loopback only), and `accordo run --metrics` as a child process.

use crate::openmetrics::{self, Family};
use crate::{accordo_bin, path, wait_until, Node};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// An answer: status code, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// `GET path` on `addr` (HOST:PORT), with a bounded wait.
pub fn get(addr: &str, path: &str) -> Result<Answer> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").context("no end of headers")?;
    let mut lines = head.lines();
    let status_line = lines.next().context("no status line")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Scrapes `/metrics` and parses it strictly (see [`openmetrics`]).
pub fn scrape(addr: &str) -> Result<BTreeMap<String, Family>> {
    let answer = get(addr, "/metrics")?;
    if answer.status != 200 {
        bail!("/metrics answered {}: {}", answer.status, answer.body);
    }
    let kind = answer
        .headers
        .get("content-type")
        .cloned()
        .unwrap_or_default();
    if !kind.starts_with("application/openmetrics-text") {
        bail!("/metrics content type {kind:?}");
    }
    openmetrics::parse(&answer.body)
}

/// `accordo run --metrics 127.0.0.1:0` on `node`; returns the child and the
/// metrics address, read from its "metrics on" line (its stderr goes to
/// `run.log` beside the node directory's files, polled, never a pipe that
/// could fill).
pub fn spawn_run_with_metrics(node: &Node) -> Result<(Child, String)> {
    spawn_run_with(node, &["--metrics", "127.0.0.1:0"])
}

/// [`spawn_run_with_metrics`] with other arguments after `run` (which must
/// make it serve metrics, e.g. `--config FILE` setting `[run] metrics`).
pub fn spawn_run_with(node: &Node, args: &[&str]) -> Result<(Child, String)> {
    let log_path = node.dir.path().join("run.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(accordo_bin())
        .args(["--dir", &path(&node.node_dir()), "run"])
        .args(args)
        .env("ACCORDO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let mut addr = None;
    let waited = wait_until(Duration::from_secs(30), || {
        if let Some(status) = child.try_wait()? {
            bail!("accordo run exited ({status}) before serving metrics");
        }
        let text = std::fs::read_to_string(&log_path)?;
        addr = text
            .lines()
            .find_map(|l| l.strip_prefix("metrics on http://"))
            .map(|a| a.trim_end_matches("/metrics").to_owned());
        Ok(addr.is_some())
    });
    if let Err(e) = waited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok((child, addr.context("metrics address")?))
}
