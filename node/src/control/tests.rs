//! The control endpoint with a handler that echoes: framing, limits, bad
//! requests answered and survived, the lock and a stale socket.

use super::*;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Echo {
    text: String,
}

fn echo(e: Echo) -> Reply {
    if e.text == "fail" {
        return Reply::Ran {
            output: vec![Line::Err("warning: about to fail".into())],
            error: Some("refused: fail".into()),
        };
    }
    Reply::Ran {
        output: vec![Line::Out(e.text)],
        error: None,
    }
}

/// Sends raw bytes as one frame and reads the reply.
fn raw(dir: &Path, bytes: &[u8]) -> Reply {
    let mut s = std::os::unix::net::UnixStream::connect(dir.join(SOCKET_FILE)).unwrap();
    s.write_all(&(bytes.len() as u32).to_be_bytes()).unwrap();
    s.write_all(bytes).unwrap();
    let reply = read_frame_blocking(&mut s, MAX_REPLY_BYTES).unwrap();
    serde_json::from_slice(&reply).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_refuses_bad_requests_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::claim(dir.path()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(SOCKET_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, SOCKET_MODE);
    // A second claim on the same directory is refused while this one holds it.
    let second = Control::claim(dir.path());
    assert!(matches!(second, Err(ControlError::Running { .. })));
    let stop = CancellationToken::new();
    let d = dir.path().to_owned();
    let client = tokio::task::spawn_blocking(move || {
        let ok = forward(
            &d,
            &Echo {
                text: "hello".into(),
            },
        );
        let failed = forward(
            &d,
            &Echo {
                text: "fail".into(),
            },
        );
        let garbage = raw(&d, b"{not json");
        let wrong_shape = raw(
            &d,
            format!(r#"{{"version":{CONTROL_VERSION},"build":"{BUILD}","body":{{"txt":1}}}}"#)
                .as_bytes(),
        );
        let old = raw(&d, br#"{"version":0,"build":"0.0.0","body":{"text":"x"}}"#);
        // A length over the limit: refused before anything is read.
        let mut s = std::os::unix::net::UnixStream::connect(d.join(SOCKET_FILE)).unwrap();
        s.write_all(&((MAX_REQUEST_BYTES as u32) + 1).to_be_bytes())
            .unwrap();
        let big: Reply =
            serde_json::from_slice(&read_frame_blocking(&mut s, MAX_REPLY_BYTES).unwrap()).unwrap();
        let after = forward(
            &d,
            &Echo {
                text: "again".into(),
            },
        );
        (ok, failed, garbage, wrong_shape, old, big, after)
    });
    let results = {
        let served = control.serve(stop.clone(), echo);
        tokio::pin!(served);
        let results = tokio::select! {
            r = client => r.unwrap(),
            () = &mut served => panic!("the server stopped"),
        };
        stop.cancel();
        served.await;
        results
    };
    let (ok, failed, garbage, wrong_shape, old, big, after) = results;
    assert!(
        matches!(&ok, Forwarded::Ran { output, error: None } if output == &[Line::Out("hello".into())]),
        "{ok:?}"
    );
    assert!(
        matches!(&failed, Forwarded::Ran { output, error: Some(e) } if e == "refused: fail" && output.len() == 1),
        "{failed:?}"
    );
    assert!(
        matches!(&garbage, Reply::NotServed(w) if w.starts_with("malformed request")),
        "{garbage:?}"
    );
    assert!(
        matches!(&wrong_shape, Reply::NotServed(w) if w.starts_with("malformed request")),
        "{wrong_shape:?}"
    );
    assert!(
        matches!(&old, Reply::NotServed(w) if w.contains("control version 0")),
        "{old:?}"
    );
    assert!(
        matches!(&big, Reply::NotServed(w) if w.contains("over the limit")),
        "{big:?}"
    );
    assert!(
        matches!(&after, Forwarded::Ran { output, .. } if output == &[Line::Out("again".into())]),
        "still serving after the bad requests: {after:?}"
    );
    drop(control);
    assert!(
        !dir.path().join(SOCKET_FILE).exists(),
        "the socket is removed on a clean exit"
    );
    // Nobody serves now: the command line does the edit itself.
    assert!(matches!(
        forward(dir.path(), &Echo { text: "x".into() }),
        Forwarded::NoServer
    ));
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on, as a killed process leaves it.
    let stale = std::os::unix::net::UnixListener::bind(dir.path().join(SOCKET_FILE)).unwrap();
    drop(stale);
    assert!(dir.path().join(SOCKET_FILE).exists());
    assert!(matches!(
        forward(dir.path(), &Echo { text: "x".into() }),
        Forwarded::NoServer
    ));
    let control = Control::claim(dir.path()).unwrap();
    assert!(control.socket().is_some());
    assert!(std::os::unix::net::UnixStream::connect(dir.path().join(SOCKET_FILE)).is_ok());
}

#[test]
fn supplementary_groups_are_read_from_proc_status() {
    let status = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 27 998 \nNgid:\t0\n";
    assert_eq!(supplementary_groups(status), vec![4, 27, 998]);
    assert!(supplementary_groups("Name:\tx\n").is_empty());
}
