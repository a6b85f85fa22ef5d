//! Validated public-administration codes: ISTAT comune codes and CUP codes.
//!
//! Both are stored as strings (leading zeros matter) and are only constructed
//! through parsing, so a value of these types is always well formed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a code was refused. The message names the field and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("invalid ISTAT code {0:?}: expected exactly 6 digits, e.g. 092009")]
    Istat(String),
    #[error("invalid CUP {0:?}: expected 15 characters A-Z/0-9, e.g. J51B21000120006")]
    Cup(String),
}

/// ISTAT comune code: 6 ASCII digits (historical province code + progressive).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Istat(String);

impl Istat {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Istat {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Istat(s.to_owned()))
        } else {
            Err(CodeError::Istat(s.to_owned()))
        }
    }
}

impl TryFrom<String> for Istat {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, CodeError> {
        s.parse()
    }
}

impl From<Istat> for String {
    fn from(i: Istat) -> String {
        i.0
    }
}

impl fmt::Display for Istat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// CUP (Codice Unico di Progetto): 15 characters from A-Z and 0-9.
///
/// No check digit is published, so only length and charset are enforced;
/// [`Cup::has_usual_pattern`] tells whether it looks like a real CUP.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cup(String);

/// Length of every CUP.
pub const CUP_LEN: usize = 15;

impl Cup {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Real CUPs match `^[A-Z][0-9]{2}[A-Z][0-9]{11}$`.
    pub fn has_usual_pattern(&self) -> bool {
        let b = self.0.as_bytes();
        b[0].is_ascii_uppercase()
            && b[1..3].iter().all(u8::is_ascii_digit)
            && b[3].is_ascii_uppercase()
            && b[4..].iter().all(u8::is_ascii_digit)
    }
}

impl FromStr for Cup {
    type Err = CodeError;
    /// Accepts lower case and surrounding blanks (as typed by people), stores upper case.
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let norm = s.trim().to_ascii_uppercase();
        if norm.len() == CUP_LEN
            && norm
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            Ok(Cup(norm))
        } else {
            Err(CodeError::Cup(s.to_owned()))
        }
    }
}

impl TryFrom<String> for Cup {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, CodeError> {
        s.parse()
    }
}

impl From<Cup> for String {
    fn from(c: Cup) -> String {
        c.0
    }
}

impl fmt::Display for Cup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istat_accepts_six_digits_only() {
        assert_eq!("092009".parse::<Istat>().unwrap().as_str(), "092009");
        for bad in ["92009", "0920091", "09200a", "", " 092009"] {
            let err = bad.parse::<Istat>().unwrap_err();
            assert!(err.to_string().contains("ISTAT"), "{err}");
        }
    }

    #[test]
    fn cup_normalises_case_and_checks_charset() {
        let cup: Cup = " j51b21000120006 ".parse().unwrap();
        assert_eq!(cup.as_str(), "J51B21000120006");
        assert!(cup.has_usual_pattern());
        assert!(!"ABCDEFGHIJKLMNO"
            .parse::<Cup>()
            .unwrap()
            .has_usual_pattern());
        for bad in ["J51B2100012000", "J51B21000120006X", "J51B2100012000-", ""] {
            let err = bad.parse::<Cup>().unwrap_err();
            assert!(err.to_string().contains("CUP"), "{err}");
        }
    }

    #[test]
    fn serde_refuses_malformed_codes() {
        assert!(serde_json_like("\"12345\"").is_err());
    }

    fn serde_json_like(s: &str) -> Result<Istat, postcard::Error> {
        // postcard encoding of a String is length + bytes.
        let inner = s.trim_matches('"');
        let bytes = postcard::to_stdvec(&inner.to_string()).unwrap();
        postcard::from_bytes::<Istat>(&bytes)
    }
}
