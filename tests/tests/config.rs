//! Configuration files through the real binaries: a value comes from the
//! command line, else an `ACCORDO_*` variable, else the file (`--config` or
//! `ACCORDO_CONFIG`), else the built-in default; subcommand tables set
//! subcommand flags; an unknown key or a bad value stops the command before
//! it does anything, with an error naming the key and the file.

use accordo_tests::{accordo_bin, path, relay_bin, Relay, Run};
use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;

/// Runs `bin` with exactly the given `ACCORDO_*` variables (none inherited).
fn run_env(bin: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<Run> {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ACCORDO_") {
            cmd.env_remove(&name);
        }
    }
    let out = cmd
        .env("ACCORDO_LOG", "warn")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    Ok(Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Creates a node in `dir` for `comune`; returns its id.
fn init_node(relay: &Relay, dir: &Path, comune: &str) -> Result<String> {
    let relay_addr = format!("{}@127.0.0.1:4433", relay.id);
    let args = [
        "init",
        "--dir",
        &path(dir),
        "--comune",
        comune,
        "--relay",
        &relay_addr,
    ];
    Ok(run_env(&accordo_bin(), &[], &args)?.ok()?.last_line())
}

#[test]
fn node_flag_beats_environment_beats_file() -> Result<()> {
    let relay = Relay::init()?;
    let tmp = tempfile::tempdir()?;
    let (file_dir, env_dir, flag_dir) = (
        tmp.path().join("f"),
        tmp.path().join("e"),
        tmp.path().join("c"),
    );
    let file_id = init_node(&relay, &file_dir, "092051")?;
    let env_id = init_node(&relay, &env_dir, "092009")?;
    let flag_id = init_node(&relay, &flag_dir, "001272")?;
    let config = tmp.path().join("node.toml");
    std::fs::write(&config, format!("dir = {:?}\n", path(&file_dir)))?;
    let config_s = path(&config);
    let env_dir_s = path(&env_dir);
    let bin = accordo_bin();

    let by_file = run_env(&bin, &[], &["--config", &config_s, "id"])?.ok()?;
    assert_eq!(by_file.last_line(), file_id);
    let by_env = run_env(
        &bin,
        &[("ACCORDO_DIR", &env_dir_s)],
        &["--config", &config_s, "id"],
    )?
    .ok()?;
    assert_eq!(by_env.last_line(), env_id);
    let flag = path(&flag_dir);
    let by_flag = run_env(
        &bin,
        &[("ACCORDO_DIR", &env_dir_s)],
        &["--config", &config_s, "id", "--dir", &flag],
    )?
    .ok()?;
    assert_eq!(by_flag.last_line(), flag_id);
    // ACCORDO_CONFIG names the file when --config is absent.
    let by_config_env = run_env(&bin, &[("ACCORDO_CONFIG", &config_s)], &["id"])?.ok()?;
    assert_eq!(by_config_env.last_line(), file_id);
    Ok(())
}

#[test]
fn node_subcommand_tables_set_subcommand_flags() -> Result<()> {
    let relay = Relay::init()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("n");
    let config = tmp.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "dir = {:?}\n[init]\ncomune = \"001272\"\nrelay = \"{}@127.0.0.1:4433\"\n[status]\nformat = \"json\"\n",
            path(&dir),
            relay.id
        ),
    )?;
    let config_s = path(&config);
    let bin = accordo_bin();
    // `init` needs --comune and --relay: here both come from [init].
    let id = run_env(&bin, &[], &["--config", &config_s, "init"])?
        .ok()?
        .last_line();
    let status = run_env(&bin, &[], &["--config", &config_s, "status"])?
        .ok()?
        .json()?;
    assert_eq!(status["node_id"].as_str(), Some(id.as_str()), "{status}");
    assert_eq!(status["comune"].as_str(), Some("001272"), "{status}");
    // A flag still wins over the table.
    let human = run_env(
        &bin,
        &[],
        &["--config", &config_s, "status", "--format", "human"],
    )?
    .ok()?;
    assert!(human.stdout.contains("Torino (001272)"), "{}", human.stdout);
    Ok(())
}

#[test]
fn bad_node_config_is_refused_naming_key_and_file_and_does_nothing() -> Result<()> {
    let relay = Relay::init()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("n");
    let relay_addr = format!("{}@127.0.0.1:4433", relay.id);
    let init = |text: &str| -> Result<Run> {
        let config = tmp.path().join("bad.toml");
        std::fs::write(&config, text)?;
        run_env(
            &accordo_bin(),
            &[],
            &[
                "--config",
                &path(&config),
                "init",
                "--dir",
                &path(&dir),
                "--comune",
                "092051",
                "--relay",
                &relay_addr,
            ],
        )
    };
    let config_s = path(&tmp.path().join("bad.toml"));
    let cases = [
        ("[init]\nrole = \"mayor\"\n", "key `init.role`"),
        (
            "[sync]\ntimeout_s = \"soon\"\n",
            "key `sync.timeout_s`: invalid value 'soon'",
        ),
        ("log_format = \"xml\"\n", "[possible values: human, json]"),
        (
            "[init]\ncommune = \"092051\"\n",
            "unknown key `init.commune`",
        ),
        ("dir = \n", "not valid TOML"),
    ];
    for (text, needle) in cases {
        let out = init(text)?;
        assert_eq!(
            out.code,
            Some(2),
            "{text:?} accepted: {}{}",
            out.stdout,
            out.stderr
        );
        assert!(out.stderr.contains(&config_s), "{text:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(needle),
            "{text:?}: {needle:?} not in {}",
            out.stderr
        );
        assert!(!dir.exists(), "{text:?}: init ran despite a bad config");
    }
    // A named file that does not exist is an error too, not silently no file.
    let out = run_env(
        &accordo_bin(),
        &[],
        &["--config", "/nonexistent/node.toml", "id"],
    )?;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("/nonexistent/node.toml"),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn relay_reads_its_config_file_with_the_same_precedence() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (file_dir, env_dir) = (tmp.path().join("f"), tmp.path().join("e"));
    let config = tmp.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "dir = {:?}\n[members]\nformat = \"json\"\n",
            path(&file_dir)
        ),
    )?;
    let config_s = path(&config);
    let env_dir_s = path(&env_dir);
    let bin = relay_bin();
    let file_id = run_env(&bin, &[], &["--config", &config_s, "init"])?
        .ok()?
        .last_line();
    assert!(file_dir.join("relay.key").exists());
    let env_id = run_env(
        &bin,
        &[("ACCORDO_DIR", &env_dir_s)],
        &["--config", &config_s, "init"],
    )?
    .ok()?
    .last_line();
    assert!(env_dir.join("relay.key").exists());
    assert_ne!(file_id, env_id);
    assert_eq!(
        run_env(&bin, &[], &["--config", &config_s, "id"])?
            .ok()?
            .last_line(),
        file_id
    );
    // [members] format = "json" applies; `--format human` overrides it.
    let members = run_env(&bin, &[], &["--config", &config_s, "members"])?.ok()?;
    members.json()?;
    let human = run_env(
        &bin,
        &[],
        &["--config", &config_s, "members", "--format", "human"],
    )?
    .ok()?;
    assert!(
        human.json().is_err(),
        "human output parsed as JSON: {}",
        human.stdout
    );

    std::fs::write(
        &config,
        "[serve]\nlisten = \"127.0.0.1:0\"\nmax_conns = 3\n",
    )?;
    let out = run_env(
        &bin,
        &[],
        &["--config", &config_s, "id", "--dir", &env_dir_s],
    )?;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(&format!(
            "config file {config_s}: unknown key `serve.max_conns`"
        )),
        "{}",
        out.stderr
    );
    Ok(())
}
