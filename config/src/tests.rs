//! Tests of the file layer over a small clap command shaped like the
//! binaries' (global flags, a required subcommand flag, a list, a switch,
//! nested subcommands), through the same entry point the binaries use.

use super::*;
use clap::{Subcommand, ValueEnum};
use std::io::Write;

#[derive(Parser, Debug)]
#[command(name = "t")]
struct Cli {
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum, Debug, PartialEq)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug, PartialEq)]
enum Cmd {
    Serve {
        #[arg(long)]
        listen: String,
    },
    Sync {
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
        #[arg(long)]
        retry_rejected: bool,
    },
    Init {
        #[arg(long, required_unless_present = "invite")]
        comune: Option<String>,
        #[arg(long, conflicts_with = "comune")]
        invite: Option<String>,
        #[arg(long)]
        admin: Vec<String>,
        file: Option<PathBuf>,
    },
    #[command(subcommand)]
    Admin(AdminCmd),
}

#[derive(Subcommand, Debug, PartialEq)]
enum AdminCmd {
    Revoke {
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
    AddRelay {
        #[arg(long)]
        relay: String,
    },
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write config");
    f
}

fn nowhere() -> PathBuf {
    PathBuf::from("/nonexistent/accordo-config-test.toml")
}

fn parse_with(text: &str, args: &[&str]) -> Result<Cli, ParseError> {
    let f = file(text);
    let path = f.path().to_str().expect("utf-8 temp path").to_owned();
    let mut argv = vec!["t", "--config", &path];
    argv.extend_from_slice(args);
    try_parse_from(argv, &nowhere())
}

fn config_error(text: &str, args: &[&str]) -> String {
    match parse_with(text, args) {
        Err(ParseError::Config(e)) => e.to_string(),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn a_file_sets_global_and_subcommand_flags_even_required_ones() {
    let cli = parse_with(
        "dir = \"/var/lib/accordo\"\nlog_format = \"json\"\n[serve]\nlisten = \"0.0.0.0:4433\"\n",
        &["serve"],
    )
    .expect("parses");
    assert_eq!(cli.dir, Some(PathBuf::from("/var/lib/accordo")));
    assert_eq!(cli.log_format, LogFormat::Json);
    assert_eq!(
        cli.command,
        Cmd::Serve {
            listen: "0.0.0.0:4433".into()
        }
    );
}

#[test]
fn a_flag_beats_the_file_and_absent_keys_keep_their_defaults() {
    let text = "log_format = \"json\"\n[sync]\nretry_rejected = true\n";
    let cli = parse_with(text, &["sync", "--log-format", "human"]).expect("parses");
    assert_eq!(cli.log_format, LogFormat::Human);
    assert_eq!(
        cli.command,
        Cmd::Sync {
            timeout_s: 30,
            retry_rejected: true
        }
    );
    let cli = parse_with("[sync]\ntimeout_s = 5\n", &["sync", "--timeout-s", "7"]).expect("parses");
    assert_eq!(
        cli.command,
        Cmd::Sync {
            timeout_s: 7,
            retry_rejected: false
        }
    );
}

/// A command whose flag has an environment variable no other test reads,
/// so setting it here cannot change another test running at the same time.
#[derive(Parser, Debug)]
#[command(name = "t")]
struct EnvCli {
    #[arg(long, global = true, env = "ACCORDO_CONFIG_TEST_ONLY_DIR")]
    dir: Option<PathBuf>,
}

#[test]
fn the_environment_beats_the_file_and_a_flag_beats_the_environment() {
    let f = file("dir = \"/from/file\"\n");
    let path = f.path().to_str().expect("utf-8 temp path");
    let parse = |extra: &[&str]| -> EnvCli {
        let mut argv = vec!["t", "--config", path];
        argv.extend_from_slice(extra);
        try_parse_from(argv, &nowhere()).expect("parses")
    };
    std::env::set_var("ACCORDO_CONFIG_TEST_ONLY_DIR", "/from/env");
    let by_env = parse(&[]);
    let by_flag = parse(&["--dir", "/from/flag"]);
    std::env::remove_var("ACCORDO_CONFIG_TEST_ONLY_DIR");
    let by_file = parse(&[]);
    assert_eq!(by_env.dir, Some(PathBuf::from("/from/env")));
    assert_eq!(by_flag.dir, Some(PathBuf::from("/from/flag")));
    assert_eq!(by_file.dir, Some(PathBuf::from("/from/file")));
}

#[test]
fn lists_nested_subcommands_and_dashed_subcommand_names_are_keys() {
    let text = "[init]\ncomune = \"092051\"\nadmin = [\"a\", \"b\"]\n[admin.revoke]\ntimeout_s = 90\n[admin.add_relay]\nrelay = \"R@h:1\"\n";
    let cli = parse_with(text, &["init", "x.csv"]).expect("parses");
    assert_eq!(
        cli.command,
        Cmd::Init {
            comune: Some("092051".into()),
            invite: None,
            admin: vec!["a".into(), "b".into()],
            file: Some("x.csv".into())
        }
    );
    let cli = parse_with(text, &["admin", "revoke"]).expect("parses");
    assert_eq!(cli.command, Cmd::Admin(AdminCmd::Revoke { timeout_s: 90 }));
    let cli = parse_with(text, &["admin", "add-relay"]).expect("parses");
    assert_eq!(
        cli.command,
        Cmd::Admin(AdminCmd::AddRelay {
            relay: "R@h:1".into()
        })
    );
}

#[test]
fn a_file_value_satisfies_required_unless_and_does_not_conflict() {
    let text = "[init]\ncomune = \"092051\"\n";
    let by_file = parse_with(text, &["init"]).expect("comune from the file");
    assert!(matches!(by_file.command, Cmd::Init { comune: Some(ref c), .. } if c == "092051"));
    // Without the file the flag is required, as before.
    let err = try_parse_from::<Cli, _, _>(["t", "init"], &nowhere()).expect_err("required");
    assert!(
        matches!(err, ParseError::Clap(ref e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument)
    );
    // A default from the file does not conflict with a flag given explicitly.
    let by_invite = parse_with(text, &["init", "--invite", "TOKEN"]).expect("no conflict");
    assert!(matches!(
        by_invite.command,
        Cmd::Init {
            invite: Some(_),
            ..
        }
    ));
}

#[test]
fn config_after_the_subcommand_is_read() {
    let f = file("[serve]\nlisten = \"[::]:1\"\n");
    let path = f.path().to_str().expect("utf-8 temp path");
    let cli: Cli = try_parse_from(["t", "serve", "--config", path], &nowhere()).expect("parses");
    assert_eq!(
        cli.command,
        Cmd::Serve {
            listen: "[::]:1".into()
        }
    );
}

#[test]
fn the_default_file_is_read_only_when_it_exists_and_no_config_is_given() {
    let default = file("[sync]\ntimeout_s = 11\n");
    let cli: Cli = try_parse_from(["t", "sync"], default.path()).expect("parses");
    assert_eq!(
        cli.command,
        Cmd::Sync {
            timeout_s: 11,
            retry_rejected: false
        }
    );
    let cli: Cli = try_parse_from(["t", "sync"], &nowhere()).expect("no default file is fine");
    assert_eq!(
        cli.command,
        Cmd::Sync {
            timeout_s: 30,
            retry_rejected: false
        }
    );
    // --config replaces the default file: its keys are not merged.
    let other = file("log_format = \"json\"\n");
    let other_path = other.path().to_str().expect("utf-8 temp path");
    let cli: Cli =
        try_parse_from(["t", "--config", other_path, "sync"], default.path()).expect("parses");
    assert_eq!(cli.log_format, LogFormat::Json);
    assert_eq!(
        cli.command,
        Cmd::Sync {
            timeout_s: 30,
            retry_rejected: false
        }
    );
}

#[test]
fn a_missing_named_file_is_an_error_naming_it() {
    let err =
        try_parse_from::<Cli, _, _>(["t", "--config", "/nonexistent/x.toml", "sync"], &nowhere())
            .expect_err("missing file");
    let text = err.to_string();
    assert!(
        matches!(err, ParseError::Config(ConfigError::Read { .. })),
        "{text}"
    );
    assert!(text.contains("/nonexistent/x.toml"), "{text}");
}

#[test]
fn unknown_keys_are_errors_naming_key_file_and_what_is_known() {
    let f = file("dri = \"/x\"\n");
    let path = f.path().to_str().expect("utf-8 temp path").to_owned();
    let err = try_parse_from::<Cli, _, _>(["t", "--config", &path, "sync"], &nowhere())
        .expect_err("unknown key");
    let text = err.to_string();
    assert!(text.contains(&path), "{text}");
    assert!(text.contains("unknown key `dri`"), "{text}");
    assert!(
        text.contains("known here: dir, log_format, [serve], [sync]"),
        "{text}"
    );

    let text = config_error("[sync]\ntimeout = 3\n", &["sync"]);
    assert!(text.contains("unknown key `sync.timeout`"), "{text}");
    assert!(
        text.contains("known here: timeout_s, retry_rejected"),
        "{text}"
    );
    let text = config_error("[sync]\ntimeout-s = 3\n", &["sync"]);
    assert!(text.contains("did you mean `timeout_s`?"), "{text}");
    let text = config_error("[serve]\ndir = \"/x\"\n", &["sync"]);
    assert!(text.contains("`dir` is a global flag"), "{text}");
    // Positional arguments and --config itself are not keys.
    let text = config_error("[init]\nfile = \"a.csv\"\n", &["sync"]);
    assert!(text.contains("unknown key `init.file`"), "{text}");
    let text = config_error("config = \"/etc/x.toml\"\n", &["sync"]);
    assert!(text.contains("unknown key `config`"), "{text}");
    // Keys of subcommands that are not run are still checked.
    let text = config_error("[admin.nope]\n", &["sync"]);
    assert!(text.contains("unknown key `admin.nope`"), "{text}");
}

#[test]
fn bad_values_are_errors_naming_key_file_and_the_expected_form() {
    let text = config_error("log_format = \"xml\"\n", &["sync"]);
    assert!(text.contains("key `log_format`"), "{text}");
    assert!(text.contains("invalid value 'xml'"), "{text}");
    assert!(text.contains("possible values: human, json"), "{text}");
    let text = config_error("[sync]\ntimeout_s = -1\n", &["sync"]);
    assert!(
        text.contains("key `sync.timeout_s`: invalid value '-1'"),
        "{text}"
    );
    let text = config_error("[sync]\ntimeout_s = \"soon\"\n", &["sync"]);
    assert!(text.contains("invalid value 'soon'"), "{text}");
    let text = config_error("[sync]\nretry_rejected = \"yes\"\n", &["sync"]);
    assert!(
        text.contains("key `sync.retry_rejected`: expected true or false"),
        "{text}"
    );
    let text = config_error("[serve]\nlisten = [\"a\", \"b\"]\n", &["sync"]);
    assert!(
        text.contains("key `serve.listen`: expected a string"),
        "{text}"
    );
    let text = config_error("sync = 3\n", &["sync"]);
    assert!(text.contains("expected a table [sync]"), "{text}");
}

#[test]
fn a_toml_syntax_error_names_the_file_and_the_line() {
    let f = file("dir = \"/x\"\n[sync\n");
    let path = f.path().to_str().expect("utf-8 temp path").to_owned();
    let err = try_parse_from::<Cli, _, _>(["t", "--config", &path, "sync"], &nowhere())
        .expect_err("syntax");
    let text = err.to_string();
    assert!(
        text.contains(&path) && text.contains("not valid TOML"),
        "{text}"
    );
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn help_and_version_do_not_read_the_file() {
    let bad = file("nonsense = 1\n");
    let err = try_parse_from::<Cli, _, _>(["t", "--help"], bad.path()).expect_err("help");
    match err {
        ParseError::Clap(e) => assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp),
        other => panic!("expected help, got {other}"),
    }
    // The same bad file is an error for a real command.
    let err = try_parse_from::<Cli, _, _>(["t", "sync"], bad.path()).expect_err("bad file");
    assert!(matches!(
        err,
        ParseError::Config(ConfigError::UnknownKey { .. })
    ));
}
