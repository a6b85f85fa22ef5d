//! Fuzz target: `Request::decode` on any bytes. It never panics; what decodes
//! is within the request bounds (text lengths, push and cursor counts) and
//! round-trips: decode → encode → decode gives the same request, and
//! re-encoding is stable (postcard may accept non-minimal varints, so the
//! input bytes themselves need not come back).
#![no_main]
use accordo_protocol::wire::{Request, MAX_CURSORS, MAX_PUSH_CHANGES, MAX_TEXT_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let Ok(req) = Request::decode(data) else {
        return;
    };
    match &req {
        Request::Hello(h) => {
            assert!(h.network.len() <= MAX_TEXT_BYTES);
            assert!(h.software.len() <= MAX_TEXT_BYTES);
        }
        Request::Redeem(r) => assert!(r.network.len() <= MAX_TEXT_BYTES),
        Request::Sync(s) => {
            assert!(s.push.len() <= MAX_PUSH_CHANGES);
            assert!(s.cursors.len() <= MAX_CURSORS);
        }
        Request::Members | Request::Presence | Request::LogEpoch => {}
    }
    let bytes = req.encode();
    assert!(bytes.len() <= data.len(), "re-encoding grew the message");
    let again = Request::decode(&bytes).expect("a decoded request re-encodes to a valid one");
    assert_eq!(again, req);
    assert_eq!(again.encode(), bytes, "encoding is not stable");
});
