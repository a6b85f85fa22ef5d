//! Node identities: ed25519 public keys printed as copyable ids, roles, and
//! the `RELAY_ID@HOST:PORT` address a node is initialised with.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Length of a printed id: 32 bytes as lowercase hex.
pub const NODE_ID_HEX_LEN: usize = 64;

/// The public half of a node's (or relay's) ed25519 key. Printed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub [u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid id {0:?}: expected 64 hex digits as printed by `id`")]
    Malformed(String),
    #[error("invalid id {0:?}: not a valid ed25519 public key")]
    NotAKey(String),
    #[error("invalid relay address {0:?}: expected RELAY_ID@HOST:PORT")]
    RelayAddr(String),
}

impl NodeId {
    pub fn from_signing_key(key: &SigningKey) -> Self {
        NodeId(key.verifying_key().to_bytes())
    }

    /// The ed25519 key, or `None` if these bytes are not a valid curve point.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }

    /// First 8 hex digits, for log lines and human output.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        let mut bytes = [0u8; 32];
        if s.len() != NODE_ID_HEX_LEN || hex::decode_to_slice(s, &mut bytes).is_err() {
            return Err(IdError::Malformed(s.to_owned()));
        }
        let id = NodeId(bytes);
        id.verifying_key()
            .map(|_| id)
            .ok_or_else(|| IdError::NotAKey(s.to_owned()))
    }
}

/// What a member key may do, besides writing its own comune's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A comune's office: writes its comune's document.
    Comune,
    /// The metropolitan office: also writes the plan and follows every document.
    Metro,
    /// A network administrator: writes registry statements only, follows
    /// every document (its revocation cuts are drawn from what it holds).
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Comune => "comune",
            Role::Metro => "metro",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "comune" => Ok(Role::Comune),
            "metro" => Ok(Role::Metro),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "invalid role {other:?}: expected `comune`, `metro` or `admin`"
            )),
        }
    }
}

/// Where a node finds its relay and which key the relay must present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAddr {
    pub id: NodeId,
    /// `HOST:PORT` as given; resolved by the caller (resolution is I/O).
    pub host_port: String,
}

impl fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.host_port)
    }
}

impl FromStr for RelayAddr {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let (id, host_port) = s
            .split_once('@')
            .ok_or_else(|| IdError::RelayAddr(s.to_owned()))?;
        let id: NodeId = id.parse()?;
        let port_ok = host_port
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(IdError::RelayAddr(s.to_owned()));
        }
        Ok(RelayAddr {
            id,
            host_port: host_port.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn node_id_round_trips_through_its_printed_form() {
        let id = NodeId::from_signing_key(&key(7));
        let printed = id.to_string();
        assert_eq!(printed.len(), NODE_ID_HEX_LEN);
        assert_eq!(printed.parse::<NodeId>().unwrap(), id);
    }

    #[test]
    fn node_id_refuses_garbage() {
        assert!(matches!(
            "abc".parse::<NodeId>(),
            Err(IdError::Malformed(_))
        ));
        assert!(matches!(
            "zz".repeat(32).parse::<NodeId>(),
            Err(IdError::Malformed(_))
        ));
    }

    #[test]
    fn relay_addr_parses_and_prints() {
        let id = NodeId::from_signing_key(&key(1));
        let s = format!("{id}@127.0.0.1:4433");
        let addr: RelayAddr = s.parse().unwrap();
        assert_eq!(addr.id, id);
        assert_eq!(addr.host_port, "127.0.0.1:4433");
        assert_eq!(addr.to_string(), s);
        assert!(format!("{id}@127.0.0.1").parse::<RelayAddr>().is_err());
        assert!(format!("{id}127.0.0.1:1").parse::<RelayAddr>().is_err());
        assert!("x@127.0.0.1:1".parse::<RelayAddr>().is_err());
    }

    #[test]
    fn role_parses_its_names() {
        assert_eq!("metro".parse::<Role>().unwrap(), Role::Metro);
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("Metro".parse::<Role>().unwrap_err().contains("role"));
    }
}
