//! Invitations: an admin's signed, single-use promise to enroll whichever
//! key redeems it first, for one comune and role, until it expires.
//!
//! A v1 token names only its signer, whom the invitee pins. A v2 token also
//! carries, under the signature, the anchors the invitee is to pin (the
//! inviter's own pins): an invitation signed by an anchor added later, or by
//! an enrolled admin, makes the invitee trust the same anchors as everyone
//! else. An inviter whose pins are exactly itself signs v1, byte for byte as
//! before.

use crate::codes::Istat;
use crate::identity::{NodeId, RelayAddr, Role};
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};

/// Domain separation for invitation signatures.
const INVITE_SIGNING_DOMAIN: &[u8] = b"accordo/invite/v1";
/// Domain separation for invitation signatures that carry anchors.
const INVITE_V2_SIGNING_DOMAIN: &[u8] = b"accordo/invite/v2";
/// Prefix of an invitation token's text form, so a pasted token is recognisable.
pub const INVITE_TOKEN_PREFIX: &str = "accordo-invite-v1-";
/// Prefix of a token that carries the anchors to pin.
pub const INVITE_TOKEN_V2_PREFIX: &str = "accordo-invite-v2-";

/// An invitation: an admin's signed promise to enroll whichever key redeems
/// it first, for one comune and role, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub network: String,
    pub relay: String,
    pub comune: Istat,
    pub role: Role,
    pub expires_ms: i64,
    #[serde(with = "hex::serde")]
    pub nonce: [u8; 16],
    pub admin: NodeId,
    pub signature: Signature,
    /// The anchors the invitee pins (v2); empty in a v1 invitation, whose
    /// invitee pins `admin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<NodeId>,
}

/// A token's fields in their wire order (a v1 token is exactly this).
#[derive(Serialize, Deserialize)]
struct TokenFields {
    network: String,
    relay: String,
    comune: Istat,
    role: Role,
    expires_ms: i64,
    #[serde(with = "hex::serde")]
    nonce: [u8; 16],
    admin: NodeId,
    signature: Signature,
}

/// Why an invitation token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("not an invitation token (expected text starting with {INVITE_TOKEN_PREFIX})")]
    NotAToken,
    #[error("the invitation token is damaged: {0}")]
    Damaged(String),
    #[error("the invitation's signature does not verify: the token was forged or altered")]
    BadSignature,
    #[error("the invitation expired at {expires_ms} ms (now {now_ms} ms)")]
    Expired { expires_ms: i64, now_ms: i64 },
    #[error("the invitation was already redeemed by {0}")]
    Used(NodeId),
    #[error("the invitation is signed by {0}, which is not an admin of this network")]
    NotAdmin(NodeId),
    #[error("the invitation is for network {got:?}, not {want:?}")]
    WrongNetwork { got: String, want: String },
}

impl Invite {
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &SigningKey,
        network: &str,
        relay: &RelayAddr,
        comune: Istat,
        role: Role,
        expires_ms: i64,
        nonce: [u8; 16],
    ) -> Invite {
        Invite::sign_pinning(
            key,
            network,
            relay,
            comune,
            role,
            expires_ms,
            nonce,
            Vec::new(),
        )
    }

    /// [`Invite::sign`] naming the anchors the invitee is to pin. Anchors
    /// that are just the signer make a v1 invitation.
    #[allow(clippy::too_many_arguments)]
    pub fn sign_pinning(
        key: &SigningKey,
        network: &str,
        relay: &RelayAddr,
        comune: Istat,
        role: Role,
        expires_ms: i64,
        nonce: [u8; 16],
        anchors: Vec<NodeId>,
    ) -> Invite {
        let admin = NodeId::from_signing_key(key);
        let anchors = if anchors == [admin] {
            Vec::new()
        } else {
            anchors
        };
        let mut invite = Invite {
            network: network.to_owned(),
            relay: relay.to_string(),
            comune,
            role,
            expires_ms,
            nonce,
            admin,
            signature: Signature::from_bytes(&[0; 64]),
            anchors,
        };
        invite.signature = key.sign(&invite.signing_payload());
        invite
    }

    fn signing_payload(&self) -> Vec<u8> {
        let fields = (
            &self.network,
            &self.relay,
            &self.comune,
            self.role,
            self.expires_ms,
            self.nonce,
            self.admin,
        );
        if self.anchors.is_empty() {
            let mut out = INVITE_SIGNING_DOMAIN.to_vec();
            // Invariant: postcard encodes these plain fields infallibly.
            out.extend(postcard::to_allocvec(&fields).expect("invite fields encode"));
            return out;
        }
        let mut out = INVITE_V2_SIGNING_DOMAIN.to_vec();
        // Invariant: postcard encodes these plain fields infallibly.
        out.extend(postcard::to_allocvec(&(fields, &self.anchors)).expect("invite fields encode"));
        out
    }

    /// The anchors a node created from this invitation pins.
    pub fn anchors_to_pin(&self) -> Vec<NodeId> {
        if self.anchors.is_empty() {
            vec![self.admin]
        } else {
            self.anchors.clone()
        }
    }

    fn token_fields(&self) -> TokenFields {
        TokenFields {
            network: self.network.clone(),
            relay: self.relay.clone(),
            comune: self.comune.clone(),
            role: self.role,
            expires_ms: self.expires_ms,
            nonce: self.nonce,
            admin: self.admin,
            signature: self.signature,
        }
    }

    /// Checks the admin's signature (not who the admin is, nor expiry).
    pub fn verify_signature(&self) -> Result<(), InviteError> {
        let key = self
            .admin
            .verifying_key()
            .ok_or(InviteError::BadSignature)?;
        key.verify_strict(&self.signing_payload(), &self.signature)
            .map_err(|_| InviteError::BadSignature)
    }

    /// The relay the token points at.
    pub fn relay_addr(&self) -> Result<RelayAddr, InviteError> {
        self.relay
            .parse()
            .map_err(|e| InviteError::Damaged(format!("relay address: {e}")))
    }

    pub fn to_token(&self) -> String {
        let fields = self.token_fields();
        // Invariant: postcard encodes an invite infallibly.
        if self.anchors.is_empty() {
            let bytes = postcard::to_allocvec(&fields).expect("invite encodes");
            return format!("{INVITE_TOKEN_PREFIX}{}", hex::encode(bytes));
        }
        let bytes = postcard::to_allocvec(&(fields, &self.anchors)).expect("invite encodes");
        format!("{INVITE_TOKEN_V2_PREFIX}{}", hex::encode(bytes))
    }

    /// Parses a token and checks its signature.
    pub fn from_token(token: &str) -> Result<Invite, InviteError> {
        let token = token.trim();
        let damaged = |e: &dyn std::fmt::Display| InviteError::Damaged(e.to_string());
        let (fields, anchors) = if let Some(body) = token.strip_prefix(INVITE_TOKEN_PREFIX) {
            let bytes = hex::decode(body).map_err(|e| damaged(&e))?;
            let fields: TokenFields = postcard::from_bytes(&bytes).map_err(|e| damaged(&e))?;
            (fields, Vec::new())
        } else if let Some(body) = token.strip_prefix(INVITE_TOKEN_V2_PREFIX) {
            let bytes = hex::decode(body).map_err(|e| damaged(&e))?;
            let (fields, anchors): (TokenFields, Vec<NodeId>) =
                postcard::from_bytes(&bytes).map_err(|e| damaged(&e))?;
            if anchors.is_empty() {
                return Err(InviteError::Damaged("a v2 token names no anchor".into()));
            }
            (fields, anchors)
        } else {
            return Err(InviteError::NotAToken);
        };
        let invite = Invite {
            network: fields.network,
            relay: fields.relay,
            comune: fields.comune,
            role: fields.role,
            expires_ms: fields.expires_ms,
            nonce: fields.nonce,
            admin: fields.admin,
            signature: fields.signature,
            anchors,
        };
        invite.verify_signature()?;
        Ok(invite)
    }
}
