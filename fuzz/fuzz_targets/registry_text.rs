//! Fuzz target: the registry's text forms. A statement carried as an
//! automerge message (`accordo-statement-v1 {json}`) and an invitation token
//! (`accordo-invite-v1-<hex postcard>`, signature checked) parse without
//! panicking, and what parses prints back to text that parses to the same
//! value; an invitation's relay address parses or is refused cleanly.
#![no_main]
use accordo_protocol::registry::{Invite, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(st) = Statement::from_message(s) {
        let message = st.to_message();
        let again = Statement::from_message(&message).expect("a printed statement parses");
        assert_eq!(again, st);
        assert_eq!(again.to_message(), message);
    }
    if let Ok(inv) = Invite::from_token(s) {
        let token = inv.to_token();
        let again = Invite::from_token(&token).expect("a printed token parses");
        assert_eq!(again, inv);
        assert_eq!(again.to_token(), token);
        let _ = inv.relay_addr();
    }
});
