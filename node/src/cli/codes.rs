//! Codes typed on the command line: CUPs and comuni, checked against the
//! ISTAT list, with the warnings a person should see.

use accordo_domain::comuni;
use accordo_protocol::codes::{Cup, Istat};
use anyhow::{Context, Result};

/// A CUP given with `--cup`; one off the usual pattern is accepted with a
/// warning.
pub(super) fn parse_cup(s: &str) -> Result<Cup> {
    let cup: Cup = s.parse().context("--cup")?;
    if !cup.has_usual_pattern() {
        eprintln!("warning: CUP {cup} does not match the usual pattern LNNLNNNNNNNNNNN");
    }
    Ok(cup)
}

/// A comune typed by the user that must be in force (a node, an
/// enrolment, an invitation): the code of a comune of the ISTAT list.
pub(super) fn comune_in_force(typed: &str, flag: &str) -> Result<Istat> {
    let comune = comuni::parse_current(typed).with_context(|| flag.to_owned())?;
    Ok(comune.istat())
}

/// A comune typed by the user, in force or of past years (a location, a
/// zone's membership): a suppressed one is accepted with a warning.
pub(super) fn comune_any(typed: &str, flag: &str) -> Result<Istat> {
    let known = comuni::parse(typed).with_context(|| flag.to_owned())?;
    if let Some(gone) = known.suppressed() {
        eprintln!("warning: {flag}: {}", gone.describe());
    }
    Ok(known.istat())
}
