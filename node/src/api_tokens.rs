//! Read-only tokens for integrations — the metro's open-data portal, a BI
//! tool — that call `/api/v1/` on a node with accounts, where a browser
//! would sign in. A token is 32 random bytes, printed once when created;
//! the node keeps only its BLAKE3 hash (a token has full entropy, so a fast
//! hash is enough: there is nothing to brute-force from the store). A token
//! reads the API and nothing else; it never edits.

use crate::store::NodeStore;
use crate::users::MAX_NAME_CHARS;
use accordo_store::StoreError;
use rusqlite::{params, OptionalExtension};

/// What every token starts with, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "accordo-api-";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid --name {0:?}: 1 to {MAX_NAME_CHARS} characters, no control characters, not only spaces")]
    BadName(String),
    #[error("a token named {0:?} already exists (remove it first to replace it)")]
    Exists(String),
    #[error("no token named {0:?}")]
    NoSuchToken(String),
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for TokenError {
    fn from(e: rusqlite::Error) -> Self {
        TokenError::Store(StoreError::from(e))
    }
}

/// A token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub created_ms: i64,
}

fn digest(token: &str) -> [u8; 32] {
    *blake3::hash(token.trim().as_bytes()).as_bytes()
}

/// Creates a token named `name`; returns the token, shown only now.
pub fn add(store: &mut NodeStore, name: &str, now_ms: i64) -> Result<String, TokenError> {
    let trimmed = name.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(TokenError::BadName(name.to_owned()));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    store.write(|tx| {
        let inserted = tx.sql().execute(
            "INSERT OR IGNORE INTO api_tokens (name, token_hash, created_ms) VALUES (?1, ?2, ?3)",
            params![trimmed, digest(&token).as_slice(), now_ms],
        )?;
        if inserted == 0 {
            return Err(TokenError::Exists(trimmed.to_owned()));
        }
        Ok(())
    })?;
    Ok(token)
}

/// Removes the token named `name`; requests carrying it are refused from now.
pub fn remove(store: &mut NodeStore, name: &str) -> Result<(), TokenError> {
    store.write(|tx| {
        let n = tx.sql().execute(
            "DELETE FROM api_tokens WHERE name = ?1",
            params![name.trim()],
        )?;
        if n == 0 {
            return Err(TokenError::NoSuchToken(name.to_owned()));
        }
        Ok(())
    })
}

/// Every token, by name.
pub fn list(store: &mut NodeStore) -> Result<Vec<TokenInfo>, TokenError> {
    store.read(|tx| {
        let mut stmt = tx
            .sql()
            .prepare_cached("SELECT name, created_ms FROM api_tokens ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(TokenInfo {
                name: r.get(0)?,
                created_ms: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}

/// The name of the token `token`, if it is one of this node's.
pub fn check(store: &mut NodeStore, token: &str) -> Result<Option<String>, TokenError> {
    if !token.trim().starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    store.read(|tx| {
        Ok(tx
            .sql()
            .query_row(
                "SELECT name FROM api_tokens WHERE token_hash = ?1",
                params![digest(token).as_slice()],
                |r| r.get(0),
            )
            .optional()?)
    })
}
