//! The public pages in Chromium: axe-core finds no serious or critical
//! violation; the office's publish buttons (project, indicator) put drafts
//! on the portal; screenshots.

use super::*;

/// Where `.ci/run` installs axe-core (npm), unless `AXE_CORE_JS` names it.
fn axe_js() -> Result<String> {
    let path = std::env::var("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/axe/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "axe-core not found at {} (.ci/run installs it)",
            path.display()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_have_no_serious_accessibility_violations() -> Result<()> {
    let axe = axe_js()?;
    let n = tokio::task::spawn_blocking(network).await??;
    let web_base = n.web.base.clone();
    let home = tokio::task::spawn_blocking({
        let base = web_base.clone();
        move || -> Result<String> {
            let mut body = String::new();
            wait_until(PAGE_TIMEOUT, || {
                body = get_text(&base, "/pubblico/")?.1;
                Ok(body.contains(PUBLISHED_TITLE) || body.contains("Quartu Sant"))
            })?;
            Ok(body)
        }
    })
    .await??;
    assert!(home.contains("Quartu"));
    let b = Browser::start().await?;
    let pages = [
        "/pubblico/".to_owned(),
        format!("/pubblico/comuni/{QUARTU}"),
        format!("/pubblico/progetti/{QUARTU}/{}", n.published_id),
        "/pubblico/zone/ZO1".to_owned(),
        "/pubblico/indicatori".to_owned(),
        "/pubblico/indicatori?lang=en".to_owned(),
        "/pubblico/sostenibilita".to_owned(),
        "/pubblico/verifica".to_owned(),
        "/opendata/".to_owned(),
    ];
    for page in &pages {
        b.client.goto(&format!("{web_base}{page}")).await?;
        b.text_until("main h1", |t| !t.is_empty()).await?;
        b.client.execute(&axe, vec![]).await?;
        let result: Value = b
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] })
                   .then(r => done({ ok: true, violations: r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help })) }))
                   .catch(e => done({ ok: false, error: String(e) }));",
                vec![],
            )
            .await?;
        assert_eq!(result["ok"], true, "axe ran on {page}: {result}");
        let serious: Vec<&Value> = result["violations"]
            .as_array()
            .context("violations")?
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect();
        assert!(serious.is_empty(), "{page}: {serious:?}");
    }
    // The office publishes the draft with the button on its project page
    // (the same operation as `project publish`); the portal shows it after sync.
    let office = WebNode::start(&n.quartu)?;
    b.client
        .goto(&office.url(&format!("/progetti/{QUARTU}/{}", n.draft_id)))
        .await?;
    b.text_until("#project-publication", |t| t.starts_with("Bozza"))
        .await?;
    b.click("#publish-button").await?;
    b.text_until("#project-publication", |t| t.starts_with("Pubblicato"))
        .await?;
    // (Asked by plain HTTP: the browser may reuse its copy for max-age.)
    let base = web_base.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(PAGE_TIMEOUT, || {
            Ok(get_text(&base, &format!("/pubblico/comuni/{QUARTU}"))?
                .1
                .contains(DRAFT_TITLE))
        })
    })
    .await?
    .context("the project published with the button never reached the portal")?;
    // The metro office keeps the comune's project off the portal with the
    // decision form on its own project page; the portal drops it at once.
    b.client
        .goto(&format!("{web_base}/progetti/{QUARTU}/{}", n.draft_id))
        .await?;
    b.text_until("#project-publication", |t| t.contains("scelta del comune"))
        .await?;
    b.client
        .find(fantoccini::Locator::Css("#decision"))
        .await?
        .select_by_value("draft")
        .await?;
    b.click("#decision-button").await?;
    b.text_until("#project-publication", |t| {
        t.starts_with("Bozza") && t.contains("deciso dall'ufficio metropolitano")
    })
    .await?;
    let base = web_base.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(PAGE_TIMEOUT, || {
            Ok(!get_text(&base, &format!("/pubblico/comuni/{QUARTU}"))?
                .1
                .contains(DRAFT_TITLE))
        })
    })
    .await?
    .context("the project the office kept off stayed on the portal")?;
    // The metro office publishes an indicator with the button on its
    // indicators page; the portal shows it at once (same node).
    let before = get_text(&web_base, "/pubblico/indicatori")?.1;
    assert!(
        !before.contains("Indicatore 99DRAFT1"),
        "a draft indicator is not public"
    );
    b.client.goto(&format!("{web_base}/indicatori")).await?;
    b.click("#publish-99DRAFT1").await?;
    b.text_until("#publish-99DRAFT1", |t| t == "Riporta in bozza")
        .await?;
    let base = web_base.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(PAGE_TIMEOUT, || {
            Ok(get_text(&base, "/pubblico/indicatori")?
                .1
                .contains("Indicatore 99DRAFT1"))
        })
    })
    .await?
    .context("the indicator published with the button never reached the portal")?;
    b.client.goto(&format!("{web_base}/pubblico/")).await?;
    b.screenshot("public-home").await?;
    b.client
        .goto(&format!("{web_base}/pubblico/comuni/{QUARTU}"))
        .await?;
    b.screenshot("public-comune").await?;
    b.client
        .goto(&format!("{web_base}/pubblico/indicatori"))
        .await?;
    b.screenshot("public-indicators").await?;
    b.client
        .goto(&format!("{web_base}/pubblico/sostenibilita"))
        .await?;
    b.screenshot("public-sustainability").await?;
    b.close().await?;
    Ok(())
}
