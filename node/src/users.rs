//! Accounts of the node's web application: people who sign in, each with a
//! role (`viewer` reads, `editor` also changes) and a password kept only as
//! an argon2id hash (a slow KDF: a stolen store does not give passwords
//! away cheaply). Accounts are local to the node; they are not synced.

use crate::store::NodeStore;
use accordo_store::StoreError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{params, OptionalExtension};

/// Longest user name accepted: a person's name or login, not a document.
pub const MAX_NAME_CHARS: usize = 64;
/// Shortest password accepted (AgID's guidelines ask for at least 8).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted: bounds the KDF's input.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebRole {
    Viewer,
    Editor,
}

impl WebRole {
    pub fn as_str(self) -> &'static str {
        match self {
            WebRole::Viewer => "viewer",
            WebRole::Editor => "editor",
        }
    }

    fn parse(s: &str) -> Option<WebRole> {
        match s {
            "viewer" => Some(WebRole::Viewer),
            "editor" => Some(WebRole::Editor),
            _ => None,
        }
    }

    pub fn can_edit(self) -> bool {
        self == WebRole::Editor
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub name: String,
    pub role: WebRole,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("invalid --name {0:?}: 1 to {MAX_NAME_CHARS} characters, no control characters, not only spaces")]
    BadName(String),
    #[error("invalid password: at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes")]
    BadPassword,
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("stored user {0:?} is damaged: {1}")]
    Corrupt(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for UserError {
    fn from(e: rusqlite::Error) -> Self {
        UserError::Store(StoreError::from(e))
    }
}

fn check_name(name: &str) -> Result<String, UserError> {
    let trimmed = name.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(UserError::BadName(name.to_owned()));
    }
    Ok(trimmed.to_owned())
}

fn hash_password(password: &str) -> Result<String, UserError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(UserError::BadPassword);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| UserError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Adds a user; refuses a name already taken.
pub fn add(
    store: &mut NodeStore,
    name: &str,
    password: &str,
    role: WebRole,
    now_ms: i64,
) -> Result<User, UserError> {
    let name = check_name(name)?;
    let hash = hash_password(password)?;
    store.write(|tx| {
        let inserted = tx.sql().execute(
            "INSERT OR IGNORE INTO web_users (name, role, password_hash, created_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), hash, now_ms],
        )?;
        if inserted == 0 {
            return Err(UserError::Exists(name.clone()));
        }
        Ok(())
    })?;
    Ok(User { name, role })
}

/// Removes a user.
pub fn remove(store: &mut NodeStore, name: &str) -> Result<(), UserError> {
    store.write(|tx| {
        let n = tx.sql().execute(
            "DELETE FROM web_users WHERE name = ?1",
            params![name.trim()],
        )?;
        if n == 0 {
            return Err(UserError::NoSuchUser(name.to_owned()));
        }
        Ok(())
    })
}

/// Every user, by name.
pub fn list(store: &mut NodeStore) -> Result<Vec<User>, UserError> {
    store.read(|tx| {
        let mut stmt = tx
            .sql()
            .prepare_cached("SELECT name, role FROM web_users ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (name, role) = row?;
            let role = WebRole::parse(&role)
                .ok_or_else(|| UserError::Corrupt(name.clone(), format!("role {role:?}")))?;
            Ok(User { name, role })
        })
        .collect()
    })
}

/// The user if `password` is theirs. A wrong name costs the same KDF work
/// as a wrong password, so timing does not tell which names exist.
pub fn verify(
    store: &mut NodeStore,
    name: &str,
    password: &str,
) -> Result<Option<User>, UserError> {
    let row = store.read(|tx| {
        tx.sql()
            .query_row(
                "SELECT role, password_hash FROM web_users WHERE name = ?1",
                params![name.trim()],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(UserError::from)
    })?;
    let Some((role, stored)) = row else {
        let _ = hash_password("not-a-user-password-for-timing");
        return Ok(None);
    };
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(None);
    }
    let parsed = PasswordHash::new(&stored)
        .map_err(|e| UserError::Corrupt(name.to_owned(), e.to_string()))?;
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Ok(None);
    }
    let role = WebRole::parse(&role)
        .ok_or_else(|| UserError::Corrupt(name.to_owned(), format!("role {role:?}")))?;
    Ok(Some(User {
        name: name.trim().to_owned(),
        role,
    }))
}

/// The number of users and the current role of `name` (`None`: no such
/// user any more), in one read: a signed-in session follows a removal or a
/// role change at its next request.
pub fn count_and_role(
    store: &mut NodeStore,
    name: Option<&str>,
) -> Result<(u64, Option<WebRole>), UserError> {
    store.read(|tx| {
        let n = tx
            .sql()
            .query_row("SELECT COUNT(*) FROM web_users", [], |r| r.get::<_, i64>(0))?
            as u64;
        let role = match name {
            Some(name) => tx
                .sql()
                .query_row(
                    "SELECT role FROM web_users WHERE name = ?1",
                    params![name],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .and_then(|r| WebRole::parse(&r)),
            None => None,
        };
        Ok((n, role))
    })
}
