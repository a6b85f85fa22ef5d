//! The local control endpoint of `accordo run`: a Unix domain socket in the
//! node's directory (`control.sock`) over which the command line hands its
//! edits to the running process, which keeps the documents loaded
//! (`doc_cache`): at 20,000 projects a command that edits by itself spends
//! 510–570 ms loading the document, the edit 1–6 ms.
//!
//! One request per connection: a frame (4-byte big-endian length, then
//! JSON) holding the control version, the binary's version and the parsed
//! command; one frame back, a [`Reply`]. Sizes are bounded both ways and a
//! request must arrive within [`REQUEST_TIMEOUT`]. A request this process
//! cannot take — malformed, too large, of another version, from a peer
//! that is neither this user nor in the directory's group — is answered
//! [`Reply::NotServed`] with the reason and nothing is done, so the
//! command line may do the edit itself. Only when no answer came after the
//! request was sent is the outcome unknown, and the command line says so.
//!
//! `run` holds `run.lock` (an exclusive `flock`) for its lifetime, so a
//! second `run` on the same directory is refused, and a socket file left by
//! a process that was killed is known to be stale and replaced.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The socket `run` listens on, in the node's directory.
pub const SOCKET_FILE: &str = "control.sock";
/// The file `run` holds locked while it runs.
pub const LOCK_FILE: &str = "run.lock";
/// Version of the request and reply format.
pub const CONTROL_VERSION: u32 = 1;
/// The binary's version: a command line of another version does its edits
/// itself (the parsed command's shape may differ).
const BUILD: &str = env!("CARGO_PKG_VERSION");
/// A request's size limit: a command line's arguments (Linux caps one
/// argument at 128 KiB and all of them at a few MiB; a project's notes are
/// far smaller). A larger request is done by the command line itself.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// A reply's size limit: what an edit command prints is a few lines.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;
/// A request must arrive within this of the connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the command line waits for the answer: an edit waits for the
/// store's write lock (a large pull or import may hold it for a while).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 32;
/// After shutdown, requests being carried out get this long to answer.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The socket's mode: the service's user and group (the office staff who
/// run `accordo` on the shared directory) may connect, nobody else.
pub const SOCKET_MODE: u32 = 0o660;
/// `sun_path` holds 108 bytes on Linux, with the terminating NUL.
const MAX_SOCKET_PATH_BYTES: usize = 107;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    version: u32,
    build: String,
    body: T,
}

/// One line a command printed, on standard output or standard error.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Out(String),
    Err(String),
}

/// The running process's answer.
#[derive(Serialize, Deserialize, Debug)]
pub enum Reply {
    /// The command ran: what it printed and, if it failed, its error (the
    /// command line prints `error: ...` and exits 1, as it does itself).
    Ran {
        output: Vec<Line>,
        error: Option<String>,
    },
    /// Nothing was done, for this reason; the command line does it itself.
    NotServed(String),
}

/// Where a command prints: straight to standard output and error, or
/// kept, to be sent back over the socket and printed there.
pub struct Printer {
    kept: Option<Vec<Line>>,
}

impl Printer {
    pub fn direct() -> Printer {
        Printer { kept: None }
    }

    pub fn capture() -> Printer {
        Printer {
            kept: Some(Vec::new()),
        }
    }

    /// Prints a line on standard output.
    pub fn out(&mut self, line: impl Into<String>) {
        match &mut self.kept {
            Some(k) => k.push(Line::Out(line.into())),
            None => println!("{}", line.into()),
        }
    }

    /// Prints a line on standard error.
    pub fn err(&mut self, line: impl Into<String>) {
        match &mut self.kept {
            Some(k) => k.push(Line::Err(line.into())),
            None => eprintln!("{}", line.into()),
        }
    }

    /// The lines kept (none when printing directly).
    pub fn into_lines(self) -> Vec<Line> {
        self.kept.unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another `accordo run` is already running on {dir} (it holds {lock}); stop it first")]
    Running { dir: String, lock: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ControlError + '_ {
    move |source| ControlError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Who may use the socket: this process's user, root, and members of the
/// directory's group (checked with `SO_PEERCRED`, beside the socket's mode).
#[derive(Clone, Copy)]
struct Allowed {
    uid: u32,
    gid: u32,
}

impl Allowed {
    fn check(&self, stream: &UnixStream) -> Result<(), String> {
        let cred = stream
            .peer_cred()
            .map_err(|e| format!("the peer's credentials are unknown: {e}"))?;
        if cred.uid() == self.uid || cred.uid() == 0 || cred.gid() == self.gid {
            return Ok(());
        }
        let in_group = cred
            .pid()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .is_some_and(|status| supplementary_groups(&status).contains(&self.gid));
        if in_group {
            return Ok(());
        }
        Err(format!(
            "uid {} is neither this process's user ({}) nor in the node directory's group ({})",
            cred.uid(),
            self.uid,
            self.gid
        ))
    }
}

/// The supplementary groups a `/proc/PID/status` text lists.
fn supplementary_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A running process's hold on its node directory: the lock, and the
/// socket when it could be bound (removed when this is dropped).
pub struct Control {
    _lock: std::fs::File,
    socket: Option<(PathBuf, UnixListener, Allowed)>,
}

/// Takes `DIR/run.lock` without waiting; `Ok(false)` when another process
/// holds it.
fn lock(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock takes a file descriptor we own (open for the call) and
    // flags; it touches no memory of ours.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

impl Control {
    /// Locks `dir` for this process (refusing when another `run` holds it)
    /// and binds its control socket, replacing a stale one. A socket that
    /// cannot be bound (a path longer than `sun_path`) is logged, and the
    /// process runs without it: the command line then edits by itself.
    /// Must be called inside a tokio runtime.
    pub fn claim(dir: &Path) -> Result<Control, ControlError> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
        let lock_path = dir.join(LOCK_FILE);
        let created = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(SOCKET_MODE)
            .open(&lock_path);
        let file = match created {
            Ok(f) => f,
            // Made by the service's user and only readable here: a lock
            // is taken on a descriptor open for reading too.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                std::fs::File::open(&lock_path).map_err(io_err(&lock_path))?
            }
            Err(e) => return Err(io_err(&lock_path)(e)),
        };
        if !lock(&file).map_err(io_err(&lock_path))? {
            return Err(ControlError::Running {
                dir: dir.display().to_string(),
                lock: lock_path.display().to_string(),
            });
        }
        let path = dir.join(SOCKET_FILE);
        if path.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
            warn!(path = %path.display(), "the control socket's path is too long for a Unix socket: serving no local edits");
            return Ok(Control {
                _lock: file,
                socket: None,
            });
        }
        // We hold the lock: a socket file there was left by a process that
        // is gone.
        match std::fs::remove_file(&path) {
            Ok(()) => info!(path = %path.display(), "replaced a stale control socket"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let listener = UnixListener::bind(&path).map_err(io_err(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(io_err(&path))?;
        let socket_meta = std::fs::metadata(&path).map_err(io_err(&path))?;
        let dir_meta = std::fs::metadata(dir).map_err(io_err(dir))?;
        let allowed = Allowed {
            uid: socket_meta.uid(),
            gid: dir_meta.gid(),
        };
        Ok(Control {
            _lock: file,
            socket: Some((path, listener, allowed)),
        })
    }

    /// The socket's path, when bound.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_ref().map(|(p, _, _)| p.as_path())
    }

    /// Answers requests until `shutdown`: each connection's request is
    /// decoded as a `T` and given to `handle` on a blocking thread.
    pub async fn serve<T, H>(&self, shutdown: CancellationToken, handle: H)
    where
        T: DeserializeOwned + Send + 'static,
        H: Fn(T) -> Reply + Send + Sync + 'static,
    {
        let Some((path, listener, allowed)) = &self.socket else {
            shutdown.cancelled().await;
            return;
        };
        info!(path = %path.display(), "serving local edits");
        let handle = Arc::new(handle);
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done {
                        warn!(error = %e, "a control connection's task failed");
                    }
                }
                accepted = listener.accept(), if tasks.len() < MAX_CONNECTIONS => match accepted {
                    Ok((stream, _)) => {
                        let (handle, allowed, stop) = (Arc::clone(&handle), *allowed, shutdown.clone());
                        tasks.spawn(connection(stream, allowed, handle, stop));
                    }
                    Err(e) => {
                        warn!(error = %e, "accepting a control connection failed");
                        // Out of descriptors, say: give the others time to end.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.shutdown().await;
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        if let Some((path, _, _)) = &self.socket {
            // Removed while the lock is still held (dropped after this).
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves one connection: one request, one reply.
async fn connection<T, H>(
    mut stream: UnixStream,
    allowed: Allowed,
    handle: Arc<H>,
    shutdown: CancellationToken,
) where
    T: DeserializeOwned + Send + 'static,
    H: Fn(T) -> Reply + Send + Sync + 'static,
{
    let reply = match allowed.check(&stream) {
        Err(why) => Reply::NotServed(why),
        Ok(()) => {
            let read = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                r = tokio::time::timeout(REQUEST_TIMEOUT, read_frame(&mut stream, MAX_REQUEST_BYTES)) => r,
            };
            match read {
                Err(_) => Reply::NotServed(format!(
                    "no request arrived within {} s",
                    REQUEST_TIMEOUT.as_secs()
                )),
                Ok(Err(FrameError::Io(e))) => {
                    debug!(error = %e, "control connection closed before its request");
                    return;
                }
                Ok(Err(FrameError::TooLarge(n))) => Reply::NotServed(format!(
                    "a request of {n} bytes is over the limit of {MAX_REQUEST_BYTES} bytes"
                )),
                Ok(Ok(bytes)) => match decode::<T>(&bytes) {
                    Err(why) => Reply::NotServed(why),
                    Ok(request) => carry_out(handle, request).await,
                },
            }
        }
    };
    if let Reply::NotServed(why) = &reply {
        warn!(reason = %why, "control request not served");
    }
    let bytes = match serde_json::to_vec(&reply) {
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "encoding a control reply failed");
            return;
        }
    };
    if let Err(e) = write_frame(&mut stream, &bytes).await {
        warn!(error = %e, "the command line left before its answer");
    }
}

/// Runs `handle` on a blocking thread (it takes the store's locks).
async fn carry_out<T, H>(handle: Arc<H>, request: T) -> Reply
where
    T: Send + 'static,
    H: Fn(T) -> Reply + Send + Sync + 'static,
{
    match accordo_store::offload(move || handle(request)).await {
        Ok(reply) => {
            info!("served a local edit");
            reply
        }
        // A panic inside the edit: its transaction rolled back; whether a
        // later commit happened is unknown to the caller, so it is an error.
        Err(e) => Reply::Ran {
            output: Vec::new(),
            error: Some(format!(
                "internal error in `accordo run` while editing ({e}); see its log"
            )),
        },
    }
}

/// The request in `bytes`, or why it cannot be taken.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let env: Envelope<serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| format!("malformed request: {e}"))?;
    if env.version != CONTROL_VERSION || env.build != BUILD {
        return Err(format!(
            "a request of control version {} from accordo {}; this process speaks version {CONTROL_VERSION} of accordo {BUILD}",
            env.version, env.build
        ));
    }
    serde_json::from_value(env.body).map_err(|e| format!("malformed request: {e}"))
}

enum FrameError {
    Io(std::io::Error),
    TooLarge(usize),
}

async fn read_frame(stream: &mut UnixStream, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.map_err(FrameError::Io)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.map_err(FrameError::Io)?;
    Ok(buf)
}

async fn write_frame(stream: &mut UnixStream, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// What became of a request handed to the running process.
#[derive(Debug)]
pub enum Forwarded {
    /// No process serves the directory (no socket, or a stale one): the
    /// command line does the edit itself.
    NoServer,
    /// The process did nothing, for this reason: do it yourself.
    NotServed(String),
    /// It ran: what it printed, and its error if it failed.
    Ran {
        output: Vec<Line>,
        error: Option<String>,
    },
    /// The request was sent and no answer came: whether it was carried out
    /// is unknown.
    Lost(String),
}

/// Hands `body` to the `run` serving `dir`, if one does (blocking).
pub fn forward<T: Serialize>(dir: &Path, body: &T) -> Forwarded {
    let path = dir.join(SOCKET_FILE);
    if path.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
        return Forwarded::NoServer;
    }
    // Any failure to connect means nobody answers here: no socket, a
    // stale one left by a killed process (refused), or one this user may
    // not use (then the direct path meets the same permissions).
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&path) else {
        return Forwarded::NoServer;
    };
    let env = Envelope {
        version: CONTROL_VERSION,
        build: BUILD.to_owned(),
        body,
    };
    let bytes = match serde_json::to_vec(&env) {
        Ok(b) if b.len() <= MAX_REQUEST_BYTES => b,
        Ok(b) => return Forwarded::NotServed(format!("a request of {} bytes", b.len())),
        Err(e) => return Forwarded::NotServed(e.to_string()),
    };
    let sent = stream
        .set_write_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.write_all(&(bytes.len() as u32).to_be_bytes()))
        .and_then(|()| stream.write_all(&bytes))
        .and_then(|()| stream.flush());
    if let Err(e) = sent {
        // The process acts only on a whole request, which it did not get.
        return Forwarded::NotServed(format!("sending the request: {e}"));
    }
    let lost = |why: String| {
        Forwarded::Lost(format!(
            "`accordo run` on {} took the request and gave no answer ({why}): the edit may or may not have been made; check with `accordo project show` or `accordo status`",
            dir.display()
        ))
    };
    let answer = stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .and_then(|()| read_frame_blocking(&mut stream, MAX_REPLY_BYTES));
    let bytes = match answer {
        Ok(b) => b,
        Err(e) => return lost(e.to_string()),
    };
    match serde_json::from_slice::<Reply>(&bytes) {
        Ok(Reply::Ran { output, error }) => Forwarded::Ran { output, error },
        Ok(Reply::NotServed(why)) => Forwarded::NotServed(why),
        Err(e) => lost(format!("an answer that does not decode: {e}")),
    }
}

fn read_frame_blocking(
    stream: &mut std::os::unix::net::UnixStream,
    max: usize,
) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::other(format!(
            "an answer of {len} bytes, over the limit of {max}"
        )));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests;
