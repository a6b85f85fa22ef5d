//! How a command prints what it lists or shows: for people, or as JSON for
//! scripts. Shared by the command line and by `audit`.

use clap::ValueEnum;

/// Output format of listing commands (`--format`).
#[derive(
    Clone, Copy, ValueEnum, PartialEq, Default, Debug, serde::Serialize, serde::Deserialize,
)]
pub enum Format {
    #[default]
    Human,
    Json,
}
