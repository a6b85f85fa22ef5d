//! Fuzz target: `Response::decode` on any bytes never panics and round-trips
//! (decode → encode → decode gives the same response; re-encoding is
//! stable). The same bytes, as text, go through `Response::error`, which
//! must cut any message to `MAX_TEXT_BYTES` on a character boundary.
#![no_main]
use accordo_protocol::wire::{ErrorCode, Response, MAX_TEXT_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    if let Ok(resp) = Response::decode(data) {
        let bytes = resp.encode();
        assert!(bytes.len() <= data.len(), "re-encoding grew the message");
        let again = Response::decode(&bytes).expect("a decoded response re-encodes");
        assert_eq!(again, resp);
        assert_eq!(again.encode(), bytes, "encoding is not stable");
    }
    let text = String::from_utf8_lossy(data);
    let Response::Error(e) = Response::error(ErrorCode::BadRequest, text.as_ref()) else {
        panic!("Response::error made something else");
    };
    assert!(e.message.len() <= MAX_TEXT_BYTES);
    assert!(text.starts_with(&e.message));
    let encoded = Response::Error(e.clone()).encode();
    assert_eq!(Response::decode(&encoded), Ok(Response::Error(e)));
});
