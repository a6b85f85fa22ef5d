//! A real headless browser for the web application's end-to-end tests:
//! Debian's `chromium` driven through `chromedriver` (WebDriver) by
//! fantoccini, and `accordo run --http 127.0.0.1:0` started on a node's
//! directory, its address read from its "web application on" line.
//!
//! `.ci/run` installs chromium and chromium-driver; without them these
//! tests fail (they never pass as skipped).

use crate::{accordo_bin, path, Node};
use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to show what a test waits for.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// `accordo run --http` on a node's directory: sync daemon and web
/// application; killed when dropped.
pub struct WebNode {
    child: Child,
    pub base: String,
}

impl WebNode {
    /// Starts the node's web application on a loopback port chosen by the
    /// system and waits for its address.
    pub fn start(node: &Node) -> Result<WebNode> {
        WebNode::start_dir(&node.node_dir())
    }

    /// [`WebNode::start`] on a node directory.
    pub fn start_dir(dir: &std::path::Path) -> Result<WebNode> {
        WebNode::start_with(dir, &[])
    }

    /// [`WebNode::start_dir`] with more flags of `run` (`--public ...`).
    pub fn start_with(dir: &std::path::Path, extra: &[&str]) -> Result<WebNode> {
        WebNode::start_on(dir, "127.0.0.1:0", extra)
    }

    /// [`WebNode::start_with`] listening on `listen` (e.g. `0.0.0.0:0`, off
    /// loopback); `base` is then the loopback address of the same port.
    pub fn start_on(dir: &std::path::Path, listen: &str, extra: &[&str]) -> Result<WebNode> {
        let mut child = Command::new(accordo_bin())
            .args(["--dir", &path(dir), "run", "--http", listen])
            .args(extra)
            .env("ACCORDO_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("stderr of accordo run")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Drains stderr for the life of the process (a full pipe would
        // block it); the first "web application on" line gives the address.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("web application on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().trim_end_matches('/').to_owned());
                    }
                }
            }
        });
        let base = rx
            .recv_timeout(PAGE_TIMEOUT)
            .context("accordo run --http did not print its address")?
            .replace("://0.0.0.0:", "://127.0.0.1:");
        Ok(WebNode { child, base })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A plain HTTP/1.1 GET (no browser): status and body.
    pub fn get(&self, path: &str) -> Result<(u16, Vec<u8>)> {
        self.get_with(path, &[])
    }

    /// A plain HTTP/1.1 GET with extra request headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<(u16, Vec<u8>)> {
        use std::io::Read;
        let host = self.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(host)?;
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no end of headers")?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status")?;
        anyhow::ensure!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "chunked responses are not read by this client"
        );
        Ok((status, raw[split + 4..].to_vec()))
    }
}

impl Drop for WebNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chromedriver process and a headless Chromium session on it.
pub struct Browser {
    driver: Child,
    pub client: Client,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Browser {
    pub async fn start() -> Result<Browser> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(bin).exists() {
                bail!("{bin} is missing: install Debian's chromium and chromium-driver (`.ci/run` does)");
            }
        }
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=it-IT"],
                // What an Italian office's browser sends: Accept-Language it.
                "prefs": {"intl.accept_languages": "it-IT,it"},
            }),
        );
        let start = Instant::now();
        // chromedriver takes a moment to listen: retry the connection (the
        // condition is its answer, not a delay).
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if start.elapsed() < PAGE_TIMEOUT => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => bail!("cannot start a chromium session: {e}"),
            }
        };
        Ok(Browser { driver, client })
    }

    /// Text of the first element matching `css`, waiting for it to exist.
    pub async fn text(&self, css: &str) -> Result<String> {
        let el = self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element {css}"))?;
        Ok(el.text().await?)
    }

    /// Waits until the browser is at `path` (a click on a submit button
    /// returns before the next page has loaded).
    pub async fn at_path(&self, path: &str) -> Result<()> {
        let start = Instant::now();
        loop {
            let url = self.client.current_url().await?;
            if url.path() == path {
                return Ok(());
            }
            if start.elapsed() > PAGE_TIMEOUT {
                bail!("the browser is at {url}, not {path}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the first element matching `css` has text satisfying
    /// `check` (the page after a submission has loaded); returns the text.
    pub async fn text_until(&self, css: &str, check: impl Fn(&str) -> bool) -> Result<String> {
        let start = Instant::now();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if check(&t) {
                        return Ok(t);
                    }
                }
            }
            if start.elapsed() > PAGE_TIMEOUT {
                bail!("{css} did not show the expected text within {PAGE_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `value` into the input matching `css` (cleared first).
    pub async fn fill(&self, css: &str, value: &str) -> Result<()> {
        let el = self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no input {css}"))?;
        el.clear().await?;
        el.send_keys(value).await?;
        Ok(())
    }

    /// Chooses the file at `path` (canonical) in the file input `css`.
    pub async fn upload(&self, css: &str, path: &str) -> Result<()> {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no file input {css}"))?
            .send_keys(path)
            .await?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("nothing to click at {css}"))?
            .click()
            .await?;
        Ok(())
    }

    /// Reloads `url` until `check` holds on the page source (bounded by
    /// [`PAGE_TIMEOUT`]); returns the source.
    pub async fn until(&self, url: &str, check: impl Fn(&str) -> bool) -> Result<String> {
        let start = Instant::now();
        loop {
            self.client.goto(url).await?;
            let source = self.client.source().await?;
            if check(&source) {
                return Ok(source);
            }
            if start.elapsed() > PAGE_TIMEOUT {
                bail!("{url} did not show what was expected within {PAGE_TIMEOUT:?}:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a screenshot of the current page as `name`.png in the
    /// screenshots directory (see [`screenshots_dir`]).
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("{name}.png"));
        std::fs::File::create(&file)?.write_all(&png)?;
        Ok(file)
    }

    /// Ends the browser session (chromedriver is stopped on drop).
    pub async fn close(self) -> Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where tests save screenshots: `$ACCORDO_SCREENSHOTS` if set, else
/// `target/screenshots` of the workspace.
pub fn screenshots_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ACCORDO_SCREENSHOTS") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("screenshots")
}
