//! Configuration files for `accordo` and `accordo-relay`.
//!
//! A file is TOML whose keys are the long flags, with `-` written `_`:
//! top-level keys set the global flags (`dir`, `log_format`), and a table
//! per subcommand sets that subcommand's flags (`[serve] listen`,
//! `[sync] timeout_s`, nested as `[admin.revoke] timeout_s`). Positional
//! arguments are not keys.
//!
//! The values become the flags' defaults in clap before argv is parsed, so
//! clap's own order applies: a flag on the command line beats an `ACCORDO_*`
//! environment variable, which beats the file, which beats the built-in
//! default. Every value is checked with the flag's own parser before it is
//! used, and an unknown key or a bad value is an error naming the key and the
//! file.
//!
//! Which file: `--config FILE` (or `ACCORDO_CONFIG`), which must exist; else
//! the binary's default path (e.g. `/etc/accordo/node.toml`) if it exists;
//! else none.

use clap::builder::{Arg, ArgAction, Command};
use clap::Parser;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The id and long name of the flag that selects the file.
pub const CONFIG_FLAG: &str = "config";
/// The environment variable that selects the file when `--config` is absent.
pub const CONFIG_ENV: &str = "ACCORDO_CONFIG";
/// Flags clap defines itself or that make no sense inside a file.
const NOT_KEYS: [&str; 3] = ["help", "version", CONFIG_FLAG];

/// A configuration file that cannot be used; nothing runs.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("config file {path}: unknown key `{key}` ({hint})")]
    UnknownKey {
        path: String,
        key: String,
        hint: String,
    },
    #[error("config file {path}: key `{key}`: {message}")]
    BadValue {
        path: String,
        key: String,
        message: String,
    },
}

/// Why parsing failed: the command line itself (clap's error, which also
/// carries `--help` and `--version`), or the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Parses the process's arguments with the file merged in. Command-line
/// errors, `--help` and `--version` exit the process as clap does; a bad
/// file is returned for the caller to report.
pub fn parse<P: Parser>(default_path: &Path) -> Result<P, ConfigError> {
    match try_parse_from(std::env::args_os(), default_path) {
        Ok(parsed) => Ok(parsed),
        Err(ParseError::Clap(e)) => e.exit(),
        Err(ParseError::Config(e)) => Err(e),
    }
}

/// Parses `args` (the first one is the binary's name) with the file merged in.
pub fn try_parse_from<P, I, T>(args: I, default_path: &Path) -> Result<P, ParseError>
where
    P: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = with_config_flag(P::command());
    if let Some(path) = chosen_file(&cmd, &args, default_path) {
        cmd = apply_file(cmd, &path)?;
    }
    let matches = cmd.try_get_matches_from_mut(args)?;
    P::from_arg_matches(&matches).map_err(|e| ParseError::Clap(e.format(&mut cmd)))
}

/// Adds the global `--config FILE` flag to a command.
pub fn with_config_flag(cmd: Command) -> Command {
    cmd.arg(
        Arg::new(CONFIG_FLAG)
            .long(CONFIG_FLAG)
            .env(CONFIG_ENV)
            .global(true)
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("Configuration file (keys named as the long flags; flags and ACCORDO_* variables override it)"),
    )
}

/// The file to read: the one named by `--config`/`ACCORDO_CONFIG`, else the
/// default path if it exists. A first, lenient parse finds `--config`
/// wherever it stands; when it fails outright (`--help`, `--version`) no
/// file is read and the real parse reports it.
fn chosen_file(cmd: &Command, args: &[OsString], default_path: &Path) -> Option<PathBuf> {
    let lenient = cmd.clone().ignore_errors(true);
    let matches = lenient.try_get_matches_from(args).ok()?;
    match matches.get_one::<PathBuf>(CONFIG_FLAG) {
        Some(path) => Some(path.clone()),
        None => default_path.exists().then(|| default_path.to_path_buf()),
    }
}

/// Reads `path` and sets its values as defaults of `cmd`'s flags.
pub fn apply_file(cmd: Command, path: &Path) -> Result<Command, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: shown.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    let globals = global_keys(&cmd);
    let place = Place {
        file: &shown,
        prefix: String::new(),
        globals: &globals,
    };
    apply_table(cmd, table, &place)
}

/// Where in the file a table is, for error messages.
struct Place<'a> {
    file: &'a str,
    /// Dotted path of the table (`admin.revoke`), empty at the top.
    prefix: String,
    /// Keys of the global flags, which belong at the top only.
    globals: &'a BTreeSet<String>,
}

impl Place<'_> {
    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn bad_value(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            path: self.file.to_owned(),
            key: self.key(key),
            message: message.into(),
        }
    }
}

/// A flag's or subcommand's name as a key: `timeout-s` is `timeout_s`.
fn key_of(name: &str) -> String {
    name.replace('-', "_")
}

/// The flags of `cmd` that a file may set, as (key, arg id).
fn settable(cmd: &Command) -> impl Iterator<Item = (String, &Arg)> {
    cmd.get_arguments()
        .filter(|a| !a.is_positional() && !NOT_KEYS.contains(&a.get_id().as_str()))
        .filter_map(|a| a.get_long().map(|long| (key_of(long), a)))
}

fn global_keys(cmd: &Command) -> BTreeSet<String> {
    settable(cmd)
        .filter(|(_, a)| a.is_global_set())
        .map(|(k, _)| k)
        .collect()
}

fn apply_table(mut cmd: Command, table: Table, place: &Place) -> Result<Command, ConfigError> {
    for (key, value) in table {
        let flag = settable(&cmd)
            .find(|(k, _)| *k == key)
            .map(|(_, a)| a.clone());
        let sub = cmd
            .get_subcommands()
            .find(|s| key_of(s.get_name()) == key)
            .cloned();
        cmd = match (flag, sub) {
            (Some(arg), _) => {
                let values = values_for(&arg, value, &key, place)?;
                // A value from the file satisfies "required" and "required
                // unless": clap counts only explicit values for those.
                // (`required_if_eq`/`required_unless_present_all` cannot be
                // cleared; no flag of the binaries uses them.)
                cmd.mut_arg(arg.get_id(), |a| {
                    a.required(false)
                        .required_unless_present(clap::builder::Resettable::Reset)
                        .default_values(values)
                })
            }
            (None, Some(sub)) => {
                let Value::Table(inner) = value else {
                    return Err(place.bad_value(
                        &key,
                        format!(
                            "`{key}` is a subcommand: expected a table [{}]",
                            place.key(&key)
                        ),
                    ));
                };
                let nested = Place {
                    file: place.file,
                    prefix: place.key(&key),
                    globals: place.globals,
                };
                let name = sub.get_name().to_owned();
                let sub = apply_table(sub, inner, &nested)?;
                cmd.mut_subcommand(name, |_| sub)
            }
            (None, None) => return Err(unknown_key(&cmd, &key, place)),
        };
    }
    Ok(cmd)
}

fn unknown_key(cmd: &Command, key: &str, place: &Place) -> ConfigError {
    let flags: Vec<String> = settable(cmd).map(|(k, _)| k).collect();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| format!("[{}]", place.key(&key_of(s.get_name()))))
        .collect();
    let hint = if flags.contains(&key_of(key)) {
        format!("did you mean `{}`? keys write `-` as `_`", key_of(key))
    } else if !place.prefix.is_empty() && place.globals.contains(key) {
        format!("`{key}` is a global flag: set it at the top of the file, before any table")
    } else {
        let known: Vec<String> = flags.into_iter().chain(subs).collect();
        if known.is_empty() {
            "this table takes no keys".to_owned()
        } else {
            format!("known here: {}", known.join(", "))
        }
    };
    ConfigError::UnknownKey {
        path: place.file.to_owned(),
        key: place.key(key),
        hint,
    }
}

/// The value(s) a TOML value gives a flag, checked with the flag's parser.
fn values_for(
    arg: &Arg,
    value: Value,
    key: &str,
    place: &Place,
) -> Result<Vec<String>, ConfigError> {
    let values = match (arg.get_action(), value) {
        (ArgAction::SetTrue | ArgAction::SetFalse, Value::Boolean(b)) => vec![b.to_string()],
        (ArgAction::SetTrue | ArgAction::SetFalse, _) => {
            return Err(place.bad_value(key, "expected true or false"))
        }
        (ArgAction::Append, Value::Array(items)) => items
            .into_iter()
            .map(|v| {
                scalar(v)
                    .ok_or_else(|| place.bad_value(key, "expected a list of strings or numbers"))
            })
            .collect::<Result<_, _>>()?,
        (ArgAction::Set | ArgAction::Append, v) => match scalar(v) {
            Some(s) => vec![s],
            None => return Err(place.bad_value(key, "expected a string, a number or a boolean")),
        },
        _ => return Err(place.bad_value(key, "this flag cannot be set in a file")),
    };
    check_values(arg, &values).map_err(|message| place.bad_value(key, message))?;
    Ok(values)
}

fn scalar(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Datetime(d) => Some(d.to_string()),
        Value::Array(_) | Value::Table(_) => None,
    }
}

/// Runs the values through a copy of the flag (same parser, same possible
/// values) on its own, so a bad value fails here with clap's own message,
/// before it could become a default.
fn check_values(arg: &Arg, values: &[String]) -> Result<(), String> {
    let Some(long) = arg.get_long() else {
        return Ok(());
    };
    if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        return Ok(());
    }
    let mut probe = Arg::new(arg.get_id().clone())
        .long(long.to_owned())
        .action(ArgAction::Append)
        .value_parser(arg.get_value_parser().clone());
    if let Some(names) = arg.get_value_names() {
        probe = probe.value_names(names.to_vec());
    }
    let argv = values.iter().map(|v| format!("--{long}={v}"));
    Command::new("config")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from(argv)
        .map(drop)
        .map_err(|e| clap_message(&e))
}

/// Clap's message without its `error:` prefix and usage footer, on one line.
fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
