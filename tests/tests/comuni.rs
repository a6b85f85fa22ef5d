//! Comuni by name as well as by ISTAT code, through the real `accordo`
//! binary (offline: no relay is started): human output shows
//! "Torino (001272)", JSON and exports add `comune_name`, every place a
//! person types a comune code refuses one that no comune has (suggesting the
//! code when a name is typed), and suppressed comuni of past years stay
//! importable with a warning.

use accordo_tests::{accordo_bin, path, run, Node, Relay, Run};
use anyhow::Result;

const TORINO: &str = "001272";
const GENOVA: &str = "010025";
/// Quero Vas, merged with Alano di Piave into Setteville (025075) in 2024.
const QUERO_VAS: &str = "025070";

fn refused(out: &Run, needles: &[&str]) {
    assert_ne!(out.code, Some(0), "accepted: {}", out.stdout);
    for n in needles {
        assert!(out.stderr.contains(n), "{n:?} not in: {}", out.stderr);
    }
}

fn init(relay: &Relay, comune: &str) -> Result<Run> {
    let dir = tempfile::tempdir()?;
    run(
        &accordo_bin(),
        &[
            "init",
            "--dir",
            &path(&dir.path().join("n")),
            "--comune",
            comune,
            "--relay",
            &relay.address(),
        ],
    )
}

#[test]
fn init_refuses_codes_no_comune_has_and_suggests_the_code_of_a_name() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    refused(
        &init(&relay, "Torino")?,
        &["--comune", "did you mean 001272 (Torino)?"],
    );
    refused(
        &init(&relay, "quartu sant elena")?,
        &["did you mean 092051 (Quartu Sant'Elena)?"],
    );
    refused(
        &init(&relay, "999999")?,
        &["--comune", "unknown ISTAT code 999999"],
    );
    // A node is for a comune in force: a merged one names its successor.
    refused(
        &init(&relay, QUERO_VAS)?,
        &["suppressed", "now Setteville (025075)"],
    );
    let ok = init(&relay, TORINO)?.ok()?;
    assert!(
        ok.stdout.contains("for comune Torino (001272)"),
        "{}",
        ok.stdout
    );
    Ok(())
}

#[test]
fn lists_status_show_and_exports_name_the_comune() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::init(&relay, TORINO, "comune")?;
    let status = node.cmd(&["status"])?.ok()?;
    assert!(
        status.stdout.contains("comune   Torino (001272)"),
        "{}",
        status.stdout
    );
    assert_eq!(node.status()?["comune_name"], "Torino");

    refused(
        &node.cmd(&["project", "add", "--title", "X", "--location", "999999:100"])?,
        &["location", "unknown ISTAT code 999999"],
    );
    refused(
        &node.cmd(&["project", "add", "--title", "X", "--location", "Genova:100"])?,
        &["did you mean 010025 (Genova)?"],
    );
    let add = node
        .cmd(&[
            "project",
            "add",
            "--cup",
            "J51B21000120006",
            "--title",
            "Ciclovia",
            "--location",
            "001272:50",
            "--location",
            &format!("{QUERO_VAS}:50"),
        ])?
        .ok()?;
    assert!(
        add.stderr.contains("warning") && add.stderr.contains("Quero Vas"),
        "{}",
        add.stderr
    );
    assert!(
        add.stdout.contains("to comune Torino (001272)"),
        "{}",
        add.stdout
    );

    let list = node.cmd(&["project", "list"])?.ok()?;
    assert!(list.stdout.contains("Torino (001272)"), "{}", list.stdout);
    let json = node
        .cmd(&["project", "list", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(json[0]["comune"], TORINO);
    assert_eq!(json[0]["comune_name"], "Torino");
    let show = node.cmd(&["project", "show", "J51B21000120006"])?.ok()?;
    assert!(
        show.stdout.contains("comune:     Torino (001272)"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("Quero Vas (025070) 50 %"),
        "{}",
        show.stdout
    );
    let shown = node
        .cmd(&["project", "show", "J51B21000120006", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(shown["comune_name"], "Torino");

    let md = node
        .cmd(&["report", "--format", "md", "--as-of", "2025-01-01"])?
        .ok()?;
    assert!(md.stdout.contains("| Torino (001272) |"), "{}", md.stdout);
    let report = node
        .cmd(&["report", "--as-of", "2025-01-01"])?
        .ok()?
        .json()?;
    assert_eq!(report["by_comune"][0]["comune_name"], "Torino");
    exports_append_the_name_and_read_back(&node)
}

/// The export keeps every existing column in place and appends
/// `comune_name`; `import` reads the file back unchanged, warning
/// about the suppressed comune it locates a project in.
fn exports_append_the_name_and_read_back(node: &Node) -> Result<()> {
    let out = node.node_dir().join("export.csv");
    node.cmd(&["export", "--out", &path(&out)])?.ok()?;
    let text = std::fs::read_to_string(&out)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
    // The columns of the first release, in their order, then the new ones.
    let first_release = [
        "id_progetto",
        "comune",
        "cup",
        "codice_locale",
        "chiave_import",
        "titolo",
        "sintesi",
        "soggetto_attuatore",
        "localizzazioni",
        "collegamenti_psm",
        "zona",
        "sdg",
        "dimensioni",
        "misura_pnrr",
        "costo_eur",
        "finanziato_eur",
        "impegnato_eur",
        "pagato_eur",
        "fonti_finanziamento",
        "fasi",
        "milestone",
        "stato_procedurale",
        "stato_forzato",
        "avanzamento_fisico_pct",
        "responsabile",
        "note",
        "archiviato",
        "creato_ms",
    ];
    assert_eq!(header[..first_release.len()], first_release);
    assert_eq!(header[first_release.len()], "comune_name");
    let row: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
    assert_eq!(row.get(first_release.len()), Some(&"Torino"), "{text}");
    let json_out = node.node_dir().join("export.json");
    node.cmd(&["export", "--format", "json", "--out", &path(&json_out)])?
        .ok()?;
    let items: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_out)?)?;
    assert_eq!(items[0]["comune_name"], "Torino");

    let back = node.cmd(&["import", &path(&out)])?.ok()?;
    assert!(back.stdout.contains("1 unchanged"), "{}", back.stdout);
    assert!(
        back.stderr
            .contains("warning: line 2, column localizzazioni")
            && back.stderr.contains("now Setteville (025075)"),
        "{}",
        back.stderr
    );
    // A code no comune ever had: nothing imported, the row named.
    let bad = node.node_dir().join("bad.csv");
    std::fs::write(&bad, text.replace("025070:50.00", "999999:50.00"))?;
    refused(
        &node.cmd(&["import", &path(&bad)])?,
        &["line 2, column localizzazioni", "unknown ISTAT code 999999"],
    );
    Ok(())
}

#[test]
fn admin_and_plan_refuse_unknown_comuni_and_name_known_ones() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let dir = tempfile::tempdir()?;
    let admin = path(dir.path());
    let metro = Node::init(&relay, GENOVA, "metro")?;
    run(
        &accordo_bin(),
        &[
            "admin",
            "init",
            "--dir",
            &admin,
            "--relay",
            &relay.address(),
        ],
    )?
    .ok()?;
    let admin_cmd = |args: &[&str]| {
        let mut all = vec!["--dir", admin.as_str(), "admin"];
        all.extend_from_slice(args);
        run(&accordo_bin(), &all)
    };
    refused(
        &admin_cmd(&["enroll", "--node", &metro.id, "--comune", "torino"])?,
        &["--comune", "did you mean 001272 (Torino)?"],
    );
    refused(
        &admin_cmd(&["invite", "--comune", "999999"])?,
        &["unknown ISTAT code 999999"],
    );
    let enrolled = admin_cmd(&[
        "enroll", "--node", &metro.id, "--comune", GENOVA, "--role", "metro",
    ])?
    .ok()?;
    assert!(
        enrolled.stdout.contains("for Genova (010025)"),
        "{}",
        enrolled.stdout
    );
    let members = admin_cmd(&["members", "--format", "json"])?.ok()?.json()?;
    let genova = members
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["comune"] == GENOVA);
    assert_eq!(
        genova.map(|m| m["comune_name"].clone()),
        Some("Genova".into())
    );

    let zone = |comuni: &str| {
        metro.cmd(&[
            "plan", "zone", "add", "--code", "Z1", "--name", "Levante", "--comuni", comuni,
        ])
    };
    refused(
        &zone("010025,999999")?,
        &["--comuni", "unknown ISTAT code 999999"],
    );
    zone("010025,010001")?.ok()?;
    let list = metro.cmd(&["plan", "zone", "list"])?.ok()?;
    assert!(list.stdout.contains("Genova (010025)"), "{}", list.stdout);
    let json = metro
        .cmd(&["plan", "zone", "list", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(json[0]["comune_names"][GENOVA], "Genova");
    Ok(())
}
