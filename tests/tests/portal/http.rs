//! The portal and open data by plain HTTP: drafts never public, the
//! catalogue and its SHACL validation, caching, read-only, 404 without
//! `--public`.

use super::*;

#[test]
fn published_projects_are_public_drafts_never_and_the_catalogue_validates() -> Result<()> {
    let n = network()?;
    let base = n.web.base.clone();
    let home = synced_home(&n.web)?;
    assert!(home.contains("<html lang=\"it\""), "Italian by default");
    assert!(
        home.contains("Città sostenibile") && home.contains("Coste accessibili"),
        "the plan"
    );
    assert!(home.contains("Area costiera"), "the zone");
    assert!(home.contains("1.500.000,00"), "financed total: {home}");
    assert!(
        home.contains("id=\"stamp-digest\""),
        "the verification stamp"
    );
    assert!(!home.contains(DRAFT_TITLE));
    // The comune's and the zone's lists, the project page; the draft's is 404.
    for page in [
        format!("/pubblico/comuni/{QUARTU}"),
        "/pubblico/zone/ZO1".to_owned(),
    ] {
        let (status, body) = get_text(&base, &page)?;
        assert_eq!(status, 200, "{page}");
        assert!(body.contains(PUBLISHED_TITLE), "{page}");
        assert!(
            body.contains("Aggiudicazione lavori"),
            "late milestone on {page}"
        );
        assert!(!body.contains(DRAFT_TITLE), "{page}");
    }
    let (status, body) = get_text(
        &base,
        &format!("/pubblico/progetti/{QUARTU}/{}", n.published_id),
    )?;
    assert_eq!(status, 200);
    assert!(body.contains("PNRR") && body.contains(PUBLISHED_TITLE));
    let (status, _) = get_text(
        &base,
        &format!("/pubblico/progetti/{QUARTU}/{}", n.draft_id),
    )?;
    assert_eq!(status, 404, "a draft's page does not exist");
    let (_, indicators) = get_text(&base, "/pubblico/indicatori?lang=en")?;
    assert!(indicators.contains("<html lang=\"en\"") && indicators.contains("<svg"));
    assert!(indicators.contains("Indicatore 10AMB016") && !indicators.contains("99DRAFT1"));

    // The sustainability page: published indicators' deviations (40 → 30,
    // lower is better: an improvement), the objective's projects.
    let (status, body) = get_text(&base, "/pubblico/sostenibilita?da=2024&a=2026")?;
    assert_eq!(status, 200);
    assert!(
        body.contains("Indicatore 10AMB016")
            && body.contains("-10")
            && body.contains("miglioramento"),
        "{body}"
    );
    assert!(!body.contains("99DRAFT1") && !body.contains(DRAFT_TITLE));

    // Open data: only the published project, in every table and format.
    let (status, _, csv_body) = request(&base, "GET", "/opendata/progetti.csv", &[])?;
    assert_eq!(status, 200);
    let mut rows = csv::Reader::from_reader(&csv_body[..]);
    let headers = rows.headers()?.clone();
    let records: Vec<csv::StringRecord> = rows.records().collect::<Result<_, _>>()?;
    assert_eq!(records.len(), 1, "one row per published project");
    let title_col = headers
        .iter()
        .position(|h| h == "titolo")
        .context("titolo")?;
    let name_col = headers
        .iter()
        .position(|h| h == "comune_name")
        .context("comune_name")?;
    assert_eq!(&records[0][title_col], PUBLISHED_TITLE);
    assert_eq!(&records[0][name_col], "Quartu Sant'Elena");
    for file in [
        "progetti.json",
        "finanziamenti.csv",
        "milestone.csv",
        "finanziamenti.json",
    ] {
        let (status, body) = get_text(&base, &format!("/opendata/{file}"))?;
        assert_eq!(status, 200, "{file}");
        assert!(
            !body.contains(DRAFT_TITLE) && !body.contains(&n.draft_id),
            "{file} leaks the draft"
        );
    }
    let (_, json) = get_text(&base, "/opendata/progetti.json")?;
    let json: Value = serde_json::from_str(&json)?;
    assert_eq!(json.as_array().map(Vec::len), Some(1));
    let (_, obs) = get_text(&base, "/opendata/osservazioni.csv")?;
    assert!(
        obs.contains("10AMB016") && !obs.contains("99DRAFT1"),
        "{obs}"
    );

    // The catalogue: JSON-LD, each dataset with licence and publisher,
    // every downloadURL answering 200.
    let (status, catalog) = get_text(&base, "/opendata/catalog.jsonld")?;
    assert_eq!(status, 200);
    assert!(!catalog.contains(DRAFT_TITLE));
    let ld: Value = serde_json::from_str(&catalog)?;
    let nodes = ld["@graph"].as_array().context("@graph")?;
    let typed = |t: &str| -> Vec<&Value> {
        nodes
            .iter()
            .filter(|n| {
                n["@type"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == t))
            })
            .collect()
    };
    let datasets = typed("dcat:Dataset");
    assert_eq!(
        datasets.len(),
        4,
        "progetti, finanziamenti, milestone, osservazioni"
    );
    let agent = typed("foaf:Agent");
    assert_eq!(agent.len(), 1);
    assert_eq!(agent[0]["dct:identifier"], "cmca");
    for d in &datasets {
        assert_eq!(d["dct:publisher"]["@id"], agent[0]["@id"], "{d}");
        assert_eq!(d["dct:rightsHolder"]["@id"], agent[0]["@id"]);
    }
    let distributions = typed("dcat:Distribution");
    assert_eq!(distributions.len(), 12);
    for dist in distributions {
        assert_eq!(
            dist["dct:license"]["@id"],
            "https://w3id.org/italia/controlled-vocabulary/licences/A21_CCBY40"
        );
        let url = dist["dcat:downloadURL"]["@id"]
            .as_str()
            .context("downloadURL")?;
        let target = url
            .strip_prefix(&base)
            .with_context(|| format!("{url} not under {base}"))?;
        let (status, _, body) = request(&base, "GET", target, &[])?;
        assert_eq!(status, 200, "{url}");
        assert!(!body.is_empty(), "{url}");
    }

    // SHACL validation of both serialisations (and that they are one graph).
    let dir = tempfile::tempdir()?;
    let (jsonld, rdf) = (
        dir.path().join("catalog.jsonld"),
        dir.path().join("catalog.rdf"),
    );
    std::fs::write(&jsonld, &catalog)?;
    let (status, _, rdf_body) = request(&base, "GET", "/opendata/catalog.rdf", &[])?;
    assert_eq!(status, 200);
    std::fs::write(&rdf, rdf_body)?;
    let out = validate(&[&jsonld, &rdf])?;
    assert!(
        out.0,
        "the catalogue must conform to DCAT-AP_IT:\n{}",
        out.1
    );
    assert!(out.1.contains("isomorphic=True"), "{}", out.1);
    // The shapes can fail: a catalogue without licences does not conform.
    let mut broken = ld.clone();
    for node in broken["@graph"].as_array_mut().context("graph")? {
        node.as_object_mut().context("node")?.remove("dct:license");
    }
    let bad = dir.path().join("broken.jsonld");
    std::fs::write(&bad, serde_json::to_vec(&broken)?)?;
    let out = validate(&[&bad])?;
    assert!(!out.0 && out.1.contains("license"), "{}", out.1);

    // Figures (printed, not asserted: machines are noisy): page weight and
    // the time of a page served from the held snapshot.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        get_text(&base, &format!("/pubblico/comuni/{QUARTU}"))?;
    }
    eprintln!(
        "portal figures: home {} bytes (no script, one stylesheet of {} bytes); comune page {:.1} ms per GET",
        home.len(),
        get_text(&base, "/pubblico/stile.css")?.1.len(),
        started.elapsed().as_secs_f64() * 1000.0 / 20.0
    );

    // Cacheable and read-only.
    let (status, head, _) = request(&base, "GET", "/pubblico/", &[])?;
    assert_eq!(status, 200);
    assert!(
        header(&head, "cache-control").is_some_and(|c| c.contains("max-age")),
        "{head}"
    );
    assert!(
        header(&head, "set-cookie").is_none(),
        "no session on public pages: {head}"
    );
    let etag = header(&head, "etag").context("etag")?.to_owned();
    let (status, _, body) = request(&base, "GET", "/pubblico/", &[("If-None-Match", &etag)])?;
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, _) = request(&base, "POST", "/pubblico/", &[])?;
    assert_eq!(status, 405, "public pages are read-only");

    // Taken back to a draft, the project leaves the portal after sync.
    ok(&n.quartu, &["project", "unpublish", "J21B22000010006"])?;
    n.quartu.sync()?.ok()?;
    wait_until(PAGE_TIMEOUT, || {
        let (_, csv) = get_text(&base, "/opendata/progetti.csv")?;
        Ok(!csv.contains(PUBLISHED_TITLE))
    })
    .context("an unpublished project stayed in the open data")?;
    drop(n.web);

    // --public needs the publisher's IPA code for the catalogue.
    let refused = n.metro.cmd(&["run", "--http", "127.0.0.1:0", "--public"])?;
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("--public needs --ipa"),
        "{}",
        refused.stderr
    );

    // Without --public the paths do not exist.
    let plain = WebNode::start_dir(&n.metro.node_dir())?;
    for target in [
        "/pubblico/",
        "/opendata/progetti.csv",
        "/opendata/catalog.jsonld",
    ] {
        let (status, _) = get_text(&plain.base, target)?;
        assert_eq!(status, 404, "{target} without --public");
    }
    Ok(())
}

/// `tests/shacl/validate.py FILES...`: whether it passed, and its output.
fn validate(files: &[&PathBuf]) -> Result<(bool, String)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shacl/validate.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(files.iter().map(|f| path(f)))
        .output()
        .context("python3 (with pyshacl, installed by .ci/run)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        !text.contains("ModuleNotFoundError"),
        "pyshacl is missing (.ci/run installs it): {text}"
    );
    Ok((out.status.success(), text))
}

/// Off loopback with `--public` and no office account yet, the node
/// serves the portal alone: `/` leads to it, every office page and the
/// API answer 403 and nothing can be edited; once an account exists the
/// office pages ask for sign-in.
#[test]
fn off_loopback_without_accounts_only_the_portal_is_served() -> Result<()> {
    let n = network()?;
    synced_home(&n.web)?;
    // One `run` per directory (it holds `run.lock` and the control socket).
    drop(n.web);
    let exposed = WebNode::start_on(
        &n.metro.node_dir(),
        "0.0.0.0:0",
        &["--public", "--ipa", "cmca"],
    )?;
    let base = exposed.base.clone();
    let (status, head, _) = request(&base, "GET", "/", &[])?;
    assert_eq!(status, 303, "{head}");
    assert_eq!(header(&head, "location"), Some("/pubblico/"));
    let (status, home) = get_text(&base, "/pubblico/")?;
    assert_eq!(status, 200);
    assert!(home.contains(PUBLISHED_TITLE) || home.contains("Quartu Sant"));
    let (status, _) = get_text(&base, "/opendata/catalog.jsonld")?;
    assert_eq!(status, 200);
    for page in [
        "/progetti",
        "/rapporto",
        "/amministrazione",
        "/api/v1/projects",
    ] {
        let (status, body) = get_text(&base, page)?;
        assert_eq!(status, 403, "{page}: {body}");
    }
    let (_, office) = get_text(&base, "/progetti")?;
    assert!(
        office.contains("user add"),
        "says how to open them: {office}"
    );
    let before = n.metro.projects(true)?.len();
    let (status, _, _) = request(&base, "POST", "/progetti/nuovo", &[])?;
    assert_eq!(status, 403);
    assert_eq!(n.metro.projects(true)?.len(), before, "nothing added");
    // With an account, the office pages ask for sign-in instead.
    let mut add = Command::new(accordo_tests::accordo_bin())
        .args(["--dir", &path(&n.metro.node_dir())])
        .args(["user", "add", "--name", "analista", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    add.stdin
        .take()
        .context("stdin")?
        .write_all(b"una-password-lunga-2026\n")?;
    assert!(add.wait()?.success());
    let (status, head, _) = request(&base, "GET", "/progetti", &[])?;
    assert_eq!(status, 303, "{head}");
    assert!(header(&head, "location").is_some_and(|l| l.starts_with("/accesso")));
    Ok(())
}
