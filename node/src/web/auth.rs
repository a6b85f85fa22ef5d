//! Who is asking: sessions, sign-in, CSRF tokens and the sign-in rate limit.
//!
//! Every visitor gets a session (a random id in an HttpOnly, SameSite=Strict
//! cookie) holding a CSRF token; every state-changing request must carry
//! that token in its form. With accounts, a session is signed in by name and
//! password (checked by [`crate::users::verify`]); without accounts (only
//! allowed on loopback, the office PC case) every visitor may edit and no
//! person is named in the signed changes.
//!
//! Sessions live in memory: a restart signs everyone out. They are bounded
//! in number and expire when idle.

use crate::users::{User, WebRole};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "accordo_session";
/// Most sessions held at once; past it the least recently used goes,
/// anonymous sessions before signed-in ones (a flood of cookie-less
/// requests cannot grow memory without bound, nor sign people out).
pub const MAX_SESSIONS: usize = 10_000;
/// A session unused this long is gone (a working day).
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// Failed sign-ins allowed per client address within [`LOGIN_WINDOW`].
pub const MAX_LOGIN_FAILURES: u32 = 5;
/// The window of the sign-in rate limit.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);
/// Client addresses whose failures are remembered (bounded like sessions).
pub const MAX_LIMITED_CLIENTS: usize = 10_000;

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // Invariant: the OS gives randomness; without it no session is safe.
    getrandom::fill(&mut b).expect("the operating system gave no randomness for a session id");
    hex::encode(b)
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub user: Option<User>,
    last_used: Instant,
}

impl Session {
    /// A session for one request that is not kept (an API token's): its
    /// CSRF token is random and never sent, so it authorises no form.
    pub fn detached(now: Instant) -> Session {
        Session {
            csrf: random_hex(32),
            user: None,
            last_used: now,
        }
    }
}

#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    /// The session of `id` if it exists and is not expired (touched), else
    /// a new one; returns its id and a copy.
    pub fn get_or_create(&mut self, id: Option<&str>, now: Instant) -> (String, Session) {
        if let Some(id) = id {
            if let Some(s) = self.by_id.get_mut(id) {
                if now.duration_since(s.last_used) < SESSION_IDLE {
                    s.last_used = now;
                    return (id.to_owned(), s.clone());
                }
                self.by_id.remove(id);
            }
        }
        self.insert(None, now)
    }

    fn insert(&mut self, user: Option<User>, now: Instant) -> (String, Session) {
        if self.by_id.len() >= MAX_SESSIONS {
            self.by_id
                .retain(|_, s| now.duration_since(s.last_used) < SESSION_IDLE);
        }
        if self.by_id.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .by_id
                .iter()
                .min_by_key(|(_, s)| (s.user.is_some(), s.last_used))
                .map(|(k, _)| k.clone())
            {
                self.by_id.remove(&oldest);
            }
        }
        let id = random_hex(32);
        let s = Session {
            csrf: random_hex(32),
            user,
            last_used: now,
        };
        self.by_id.insert(id.clone(), s.clone());
        (id, s)
    }

    /// Signs a person in: a new session id (the old one is dropped, so a
    /// session id planted before sign-in is worthless after it).
    pub fn sign_in(&mut self, old: Option<&str>, user: User, now: Instant) -> (String, Session) {
        if let Some(old) = old {
            self.by_id.remove(old);
        }
        self.insert(Some(user), now)
    }

    pub fn sign_out(&mut self, id: &str) {
        self.by_id.remove(id);
    }

    /// Drops every session of a user (removed, or role changed).
    pub fn drop_user(&mut self, name: &str) {
        self.by_id
            .retain(|_, s| s.user.as_ref().is_none_or(|u| u.name != name));
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Failed sign-ins per client address in a sliding window.
#[derive(Default)]
pub struct LoginLimiter {
    failures: HashMap<IpAddr, (u32, Instant)>,
}

impl LoginLimiter {
    /// Whether `client` may try now.
    pub fn allowed(&mut self, client: IpAddr, now: Instant) -> bool {
        match self.failures.get(&client) {
            Some((n, since)) if now.duration_since(*since) < LOGIN_WINDOW => {
                *n < MAX_LOGIN_FAILURES
            }
            Some(_) => {
                self.failures.remove(&client);
                true
            }
            None => true,
        }
    }

    pub fn failed(&mut self, client: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_LIMITED_CLIENTS {
            self.failures
                .retain(|_, (_, since)| now.duration_since(*since) < LOGIN_WINDOW);
        }
        if self.failures.len() >= MAX_LIMITED_CLIENTS && !self.failures.contains_key(&client) {
            // Still full of live entries: an attacker spreading over many
            // addresses. Refusing to track more would let them through, so
            // the oldest entry makes room.
            if let Some(oldest) = self
                .failures
                .iter()
                .min_by_key(|(_, (_, since))| *since)
                .map(|(k, _)| *k)
            {
                self.failures.remove(&oldest);
            }
        }
        let entry = self.failures.entry(client).or_insert((0, now));
        if now.duration_since(entry.1) >= LOGIN_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn succeeded(&mut self, client: IpAddr) {
        self.failures.remove(&client);
    }
}

/// Compares a submitted CSRF token with the session's in constant time.
pub fn csrf_matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the person asking may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No accounts on this node (loopback only): anyone may edit.
    Open,
    SignedIn(User),
    /// Accounts exist and this session has not signed in.
    Anonymous,
    /// An integration's API token (named): reads `/api/v1/` only.
    Token(String),
}

impl Access {
    pub fn can_read(&self) -> bool {
        !matches!(self, Access::Anonymous)
    }

    pub fn can_edit(&self) -> bool {
        match self {
            Access::Open => true,
            Access::SignedIn(u) => u.role == WebRole::Editor,
            Access::Anonymous | Access::Token(_) => false,
        }
    }

    /// The person to name in signed changes.
    pub fn person(&self) -> Option<&str> {
        match self {
            Access::SignedIn(u) => Some(&u.name),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            role: WebRole::Editor,
        }
    }

    #[test]
    fn sessions_are_kept_expire_when_idle_and_signing_in_changes_the_id() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let (id, first) = s.get_or_create(None, t0);
        let (same, again) = s.get_or_create(Some(&id), t0 + Duration::from_secs(60));
        assert_eq!(same, id);
        assert_eq!(again.csrf, first.csrf);
        let (signed, sess) = s.sign_in(Some(&id), user("anna"), t0);
        assert_ne!(
            signed, id,
            "a session id planted before sign-in must not survive it"
        );
        assert_eq!(sess.user.as_ref().map(|u| u.name.as_str()), Some("anna"));
        let (fresh, _) = s.get_or_create(Some(&id), t0);
        assert_ne!(fresh, id, "the old id is gone");
        let (expired, e) =
            s.get_or_create(Some(&signed), t0 + SESSION_IDLE + Duration::from_secs(1));
        assert_ne!(expired, signed);
        assert!(e.user.is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        for i in 0..(MAX_SESSIONS + 50) {
            s.get_or_create(None, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }

    #[test]
    fn a_flood_of_anonymous_sessions_does_not_sign_people_out() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let (anna, _) = s.sign_in(None, user("anna"), t0);
        for i in 1..=(MAX_SESSIONS + 100) {
            s.get_or_create(None, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        let (still, sess) = s.get_or_create(Some(&anna), t0 + Duration::from_secs(60));
        assert_eq!(still, anna, "the signed-in session survived the flood");
        assert_eq!(sess.user.map(|u| u.name), Some("anna".to_owned()));
    }

    #[test]
    fn sign_in_is_limited_per_client_and_the_window_passes() {
        let mut l = LoginLimiter::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..MAX_LOGIN_FAILURES {
            assert!(l.allowed(ip, t0));
            l.failed(ip, t0);
        }
        assert!(!l.allowed(ip, t0 + Duration::from_secs(10)));
        assert!(l.allowed(other, t0));
        assert!(l.allowed(ip, t0 + LOGIN_WINDOW + Duration::from_secs(1)));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_matches("abcd", Some("abcd")));
        assert!(!csrf_matches("abcd", Some("abce")));
        assert!(!csrf_matches("abcd", Some("abc")));
        assert!(!csrf_matches("abcd", None));
        assert!(!csrf_matches("", Some("")));
    }
}
