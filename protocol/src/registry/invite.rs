//! Invitations: an admin's signed, single-use promise to enroll whichever
//! key redeems it first, for one comune and role, until it expires.

use crate::codes::Istat;
use crate::identity::{NodeId, RelayAddr, Role};
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};

/// Domain separation for invitation signatures.
const INVITE_SIGNING_DOMAIN: &[u8] = b"accordo/invite/v1";
/// Prefix of an invitation token's text form, so a pasted token is recognisable.
pub const INVITE_TOKEN_PREFIX: &str = "accordo-invite-v1-";

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
        let mut invite = Invite {
            network: network.to_owned(),
            relay: relay.to_string(),
            comune,
            role,
            expires_ms,
            nonce,
            admin: NodeId::from_signing_key(key),
            signature: Signature::from_bytes(&[0; 64]),
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
        let mut out = INVITE_SIGNING_DOMAIN.to_vec();
        // Invariant: postcard encodes these plain fields infallibly.
        out.extend(postcard::to_allocvec(&fields).expect("invite fields encode"));
        out
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
        // Invariant: postcard encodes an invite infallibly.
        let bytes = postcard::to_allocvec(self).expect("invite encodes");
        format!("{INVITE_TOKEN_PREFIX}{}", hex::encode(bytes))
    }

    /// Parses a token and checks its signature.
    pub fn from_token(token: &str) -> Result<Invite, InviteError> {
        let body = token
            .trim()
            .strip_prefix(INVITE_TOKEN_PREFIX)
            .ok_or(InviteError::NotAToken)?;
        let bytes = hex::decode(body).map_err(|e| InviteError::Damaged(e.to_string()))?;
        let invite: Invite =
            postcard::from_bytes(&bytes).map_err(|e| InviteError::Damaged(e.to_string()))?;
        invite.verify_signature()?;
        Ok(invite)
    }
}
