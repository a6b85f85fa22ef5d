//! End-to-end tests of the web application in a real headless browser
//! (Debian's chromium through chromedriver): a comune's office creates and
//! edits a project, the metro dashboard shows it after the nodes sync;
//! titles are shown as text; the language switch; sign-in when accounts
//! exist; CSRF; the refusal to serve off loopback without accounts.
//! Screenshots of the main pages go to `target/screenshots/`.

use accordo_tests::browser::{Browser, WebNode};
use accordo_tests::{accordo_bin, path, Node, Relay};
use anyhow::{Context, Result};
use std::io::Write;
use std::process::{Command, Stdio};

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";

fn add_user(node: &Node, name: &str, password: &str, role: &str) -> Result<()> {
    let mut child = Command::new(accordo_bin())
        .args([
            "--dir",
            &path(&node.node_dir()),
            "user",
            "add",
            "--name",
            name,
            "--password-stdin",
            "--role",
            role,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{password}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A running relay, Quartu's node admitted to it with its web application,
/// and a browser.
async fn quartu_in_a_browser() -> Result<(Relay, Node, WebNode, Browser)> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    let web = WebNode::start(&quartu)?;
    let b = Browser::start().await?;
    Ok((relay, quartu, web, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comune_adds_and_edits_a_project_in_the_browser_and_the_metro_dashboard_shows_it(
) -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    let quartu_web = WebNode::start(&quartu)?;
    let metro_web = WebNode::start(&metro)?;
    let b = Browser::start().await?;

    // The add form: fields labelled CUP and Titolo, a "Salva" button.
    b.client.goto(&quartu_web.url("/progetti/nuovo")).await?;
    b.text_until("label[for=cup]", |t| t == "CUP").await?;
    b.text_until("label[for=title]", |t| t == "Titolo").await?;
    b.text_until("form[action='/progetti/nuovo'] button[type=submit]", |t| {
        t == "Salva"
    })
    .await?;
    let title = "<script>window.__xss = 1</script> Scuola \"Deledda\" & palestra";
    b.fill("#cup", "H81B22000777001").await?;
    b.fill("#title", title).await?;
    b.fill("#financed_eur", "1.234.567,89").await?;
    b.screenshot("project-new").await?;
    b.click("form[action='/progetti/nuovo'] button[type=submit]")
        .await?;

    // Lands on the project's page; the title is shown as text.
    let h1 = b.text_until("main h1", |t| t != "Nuovo progetto").await?;
    assert_eq!(h1, title, "a <script> title is shown as text");
    let url = b.client.current_url().await?;
    assert!(
        url.path().starts_with(&format!("/progetti/{QUARTU}/")),
        "{url}"
    );
    let ran: serde_json::Value = b
        .client
        .execute("return typeof window.__xss;", vec![])
        .await?;
    assert_eq!(ran, "undefined", "the title's script must not run");
    assert_eq!(b.text("#project-financed").await?, "1.234.567,89 €");

    // Edit: paid and the title, in the edit form.
    b.fill("#paid_eur", "250000").await?;
    b.fill("#title", "Scuola Deledda: palestra").await?;
    b.click(&format!(
        "form[action='{}'] button[type=submit]",
        url.path()
    ))
    .await?;
    b.text_until("main h1", |t| t == "Scuola Deledda: palestra")
        .await?;
    assert_eq!(b.text("#project-paid").await?, "250.000,00 €");
    b.screenshot("project").await?;

    // The CLI sees the same project: one implementation of the edit.
    let listed = quartu.projects(false)?;
    assert!(
        listed.contains(&(
            QUARTU.to_owned(),
            "H81B22000777001".to_owned(),
            "Scuola Deledda: palestra".to_owned()
        )),
        "{listed:?}"
    );

    // The comune's list and its search.
    b.client
        .goto(&quartu_web.url("/progetti?q=deledda"))
        .await?;
    assert_eq!(b.text("#count").await?, "1 progetti");
    b.screenshot("projects").await?;

    // The metro dashboard shows the comune's figures once both daemons
    // have synced through the relay (observed on the page itself).
    let dashboard = b
        .until(&metro_web.url("/"), |s| {
            s.contains("Quartu Sant'Elena") && s.contains("1.234.567,89")
        })
        .await?;
    assert!(dashboard.contains("Per comune"), "metro dashboard");
    // Each comune's last sync as the relay saw it (not only its newest change).
    let row = b
        .text(&format!("#comuni a[href='/progetti?comune={QUARTU}']"))
        .await?;
    assert!(row.contains("Quartu"), "{row}");
    let last_sync: serde_json::Value = b
        .client
        .execute(
            &format!("return document.querySelector(\"#comuni a[href='/progetti?comune={QUARTU}']\").closest('tr').querySelector('.last-sync').textContent;"),
            vec![],
        )
        .await?;
    let last_sync = last_sync.as_str().unwrap_or_default().trim().to_owned();
    assert!(
        last_sync.contains('/') && last_sync.contains(':'),
        "Quartu's last sync is a date and time: {last_sync:?}"
    );
    b.screenshot("dashboard-metro").await?;
    b.client
        .goto(&metro_web.url(&format!("/progetti?comune={QUARTU}")))
        .await?;
    assert!(b
        .text("#projects")
        .await?
        .contains("Scuola Deledda: palestra"));
    // The report page; its JSON download verifies against the metro's log.
    b.client.goto(&metro_web.url("/rapporto")).await?;
    let digest = b.text("#report-digest").await?;
    assert_eq!(digest.len(), 64, "{digest}");
    b.screenshot("report").await?;
    let json: serde_json::Value = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/rapporto/rapporto.json').then(r => r.text()).then(done);",
            vec![],
        )
        .await?;
    let file = metro.dir.path().join("rapporto-web.json");
    std::fs::write(&file, json.as_str().context("report text")?)?;
    let verified = metro.cmd(&["report", "--verify", &path(&file)])?;
    assert_eq!(
        verified.code,
        Some(0),
        "{}{}",
        verified.stdout,
        verified.stderr
    );
    assert!(verified.stdout.contains(&digest), "{}", verified.stdout);
    b.client.goto(&quartu_web.url("/")).await?;
    b.screenshot("dashboard-comune").await?;
    b.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_turns_pages_english_and_is_remembered() -> Result<()> {
    let (_relay, _quartu, web, b) = quartu_in_a_browser().await?;
    b.client.goto(&web.url("/progetti")).await?;
    assert_eq!(b.text("main h1").await?, "Progetti");
    b.click("a.lang-switch").await?;
    b.text_until("main h1", |t| t == "Projects").await?;
    let lang: serde_json::Value = b
        .client
        .execute("return document.documentElement.lang;", vec![])
        .await?;
    assert_eq!(lang, "en");
    assert_eq!(
        b.client.current_url().await?.path(),
        "/progetti",
        "the switch comes back to the same page"
    );
    b.client.goto(&web.url("/")).await?;
    assert_eq!(
        b.text("main h1").await?,
        "Dashboard",
        "the choice is remembered"
    );
    b.click("a.lang-switch").await?;
    b.text_until("main h1", |t| t == "Cruscotto").await?;
    b.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_accounts_every_page_needs_sign_in_and_edits_name_the_person() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    add_user(&quartu, "anna.rossi", "correct horse battery", "editor")?;
    add_user(&quartu, "luca", "viewer password 1", "viewer")?;
    let web = WebNode::start(&quartu)?;
    let b = Browser::start().await?;

    b.client.goto(&web.url("/progetti")).await?;
    b.at_path("/accesso").await?;
    b.fill("#name", "anna.rossi").await?;
    b.fill("#password", "wrong password").await?;
    b.click("form[action='/accesso'] button").await?;
    b.text_until(".alert-danger", |t| t.contains("non validi"))
        .await?;
    b.screenshot("login").await?;
    b.fill("#name", "anna.rossi").await?;
    b.fill("#password", "correct horse battery").await?;
    b.click("form[action='/accesso'] button").await?;
    // Signing in comes back to the page asked for.
    b.at_path("/progetti").await?;
    b.client.goto(&web.url("/progetti/nuovo")).await?;
    b.fill("#cup", "H81B22000888001").await?;
    b.fill("#title", "Biblioteca comunale").await?;
    b.click("form[action='/progetti/nuovo'] button[type=submit]")
        .await?;
    b.text_until("main h1", |t| t == "Biblioteca comunale")
        .await?;

    // The signed change names the person: in `accordo audit` and the page.
    let audit = quartu
        .cmd(&["audit", "H81B22000888001", "--format", "json"])?
        .json()?;
    assert_eq!(audit[0]["person"], "anna.rossi", "{audit}");
    b.click("#audit-link").await?;
    assert!(b.text("#audit").await?.contains("anna.rossi"));

    // Sign out; a viewer reads but cannot change anything.
    b.click("form[action='/esci'] button").await?;
    b.at_path("/accesso").await?;
    b.fill("#name", "luca").await?;
    b.fill("#password", "viewer password 1").await?;
    b.click("form[action='/accesso'] button").await?;
    b.at_path("/").await?;
    b.client.goto(&web.url("/progetti")).await?;
    assert!(b.text("#projects").await?.contains("Biblioteca comunale"));
    let source = b.client.source().await?;
    assert!(
        !source.contains("/progetti/nuovo"),
        "no add button for a viewer"
    );
    b.client.goto(&web.url("/progetti/nuovo")).await?;
    assert!(b.text(".alert-danger").await?.contains("ruolo"));
    b.close().await?;

    // Integrations read the API with a token instead of signing in.
    let (code, _) = web.get("/api/v1/projects")?;
    assert_eq!(code, 401, "the API needs a session or a token");
    let token = quartu
        .cmd(&["token", "add", "--name", "portale-opendata"])?
        .ok()?
        .last_line();
    let auth = format!("Bearer {token}");
    let (code, body) = web.get_with("/api/v1/projects", &[("Authorization", &auth)])?;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let items: serde_json::Value = serde_json::from_slice(&body)?;
    let listed = quartu
        .cmd(&["project", "list", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(items, listed, "the API lists what `project list` lists");
    let wrong = format!("Bearer {}0", &token[..token.len() - 1]);
    let (code, _) = web.get_with("/api/v1/projects", &[("Authorization", &wrong)])?;
    assert_eq!(code, 401, "an altered token is refused");
    let (code, _) = web.get_with("/progetti", &[("Authorization", &auth)])?;
    assert_ne!(
        code, 200,
        "a token opens the API only, not the office pages"
    );
    let tokens = quartu
        .cmd(&["token", "list", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(tokens[0]["name"], "portale-opendata");
    assert!(
        !tokens.to_string().contains(&token),
        "the token itself is never listed"
    );
    quartu
        .cmd(&["token", "remove", "--name", "portale-opendata"])?
        .ok()?;
    let (code, _) = web.get_with("/api/v1/projects", &[("Authorization", &auth)])?;
    assert_eq!(code, 401, "a removed token is refused");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() -> Result<()> {
    let (_relay, quartu, web, b) = quartu_in_a_browser().await?;
    b.client.goto(&web.url("/progetti")).await?;
    let fetch = |body: &'static str| {
        format!(
            "const done = arguments[arguments.length - 1];
             fetch('/progetti/nuovo', {{method: 'POST', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: '{body}'}})
               .then(r => done(r.status)).catch(e => done(String(e)));"
        )
    };
    let no_token = b
        .client
        .execute_async(&fetch("title=Forged"), vec![])
        .await?;
    assert_eq!(no_token, 403);
    let wrong_token = b
        .client
        .execute_async(&fetch("title=Forged&csrf=0123456789abcdef"), vec![])
        .await?;
    assert_eq!(wrong_token, 403);
    assert!(quartu.projects(false)?.is_empty(), "nothing was added");
    b.close().await?;
    Ok(())
}

#[test]
fn off_loopback_the_web_application_refuses_to_start_without_accounts() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    let out = Command::new(accordo_bin())
        .args([
            "--dir",
            &path(&quartu.node_dir()),
            "run",
            "--http",
            "0.0.0.0:0",
        ])
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without accounts"), "{stderr}");
    assert!(stderr.contains("user add"), "says what to do: {stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_show_as_a_conflict_and_a_chosen_value_settles_it() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let lavori = Node::admitted(&relay, CAGLIARI, "comune")?;
    let ragioneria = Node::admitted(&relay, CAGLIARI, "comune")?;
    lavori.add("F21B21000310006", "Mercato San Benedetto")?;
    lavori.sync()?.ok()?;
    ragioneria.sync()?.ok()?;
    // Both offices retitle the project offline, then sync.
    for (node, title) in [
        (&lavori, "Mercato: restauro"),
        (&ragioneria, "Mercato: impianti"),
    ] {
        node.cmd(&["project", "set", "F21B21000310006", "--title", title])?
            .ok()?;
    }
    for node in [&lavori, &ragioneria, &lavori] {
        node.sync()?.ok()?;
    }
    let web = WebNode::start(&lavori)?;
    let b = Browser::start().await?;
    b.client
        .goto(&web.url("/progetti?q=F21B21000310006"))
        .await?;
    b.click("#projects tbody a").await?;
    let conflicts = b.text("#conflicts").await?;
    assert!(
        conflicts.contains("Mercato: restauro") && conflicts.contains("Mercato: impianti"),
        "{conflicts}"
    );
    b.screenshot("project-conflict").await?;
    // Keep the value that did not win.
    let shown = b.text("main h1").await?;
    let other = if shown == "Mercato: restauro" {
        "Mercato: impianti"
    } else {
        "Mercato: restauro"
    };
    b.click(&format!(
        "#conflicts form:has(input[name=value][value='{other}']) button"
    ))
    .await?;
    b.text_until("main h1", |t| t == other).await?;
    let source = b.client.source().await?;
    assert!(
        !source.contains("id=\"conflicts\""),
        "the conflict is settled"
    );
    // The other office sees the same choice after syncing.
    lavori.sync()?.ok()?;
    ragioneria.sync()?.ok()?;
    let shown = ragioneria
        .cmd(&["project", "show", "F21B21000310006", "--format", "json"])?
        .json()?;
    assert_eq!(shown["title"], other);
    assert_eq!(shown["conflicts"], serde_json::json!({}));
    b.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comune_records_an_observation_and_the_metro_sees_the_trend() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    metro
        .cmd(&[
            "indicator",
            "define",
            "--code",
            "10AMB016",
            "--name",
            "Raccolta differenziata",
            "--unit",
            "%",
            "--polarity",
            "1",
        ])?
        .ok()?;
    metro.sync()?.ok()?;
    quartu.sync()?.ok()?;
    for (kind, period, value) in [("baseline", "2020", "35"), ("target", "2026", "65")] {
        quartu
            .cmd(&[
                "indicator",
                kind,
                "10AMB016",
                "--period",
                period,
                "--value",
                value,
            ])?
            .ok()?;
    }
    quartu
        .cmd(&[
            "indicator",
            "observe",
            "10AMB016",
            "--period",
            "2023",
            "--value",
            "41,5",
        ])?
        .ok()?;
    let quartu_web = WebNode::start(&quartu)?;
    let metro_web = WebNode::start(&metro)?;
    let b = Browser::start().await?;
    b.client.goto(&quartu_web.url("/indicatori")).await?;
    b.fill("#o-period", "2024").await?;
    b.fill("#o-value", "52,5").await?;
    b.click("form[action='/indicatori/osserva'] button").await?;
    b.text_until(".alert-success", |t| t.contains("registrata"))
        .await?;
    let section = b.text("section[aria-labelledby=ind-10AMB016]").await?;
    assert!(
        section.contains("52,5") && section.contains("41,5"),
        "{section}\n{}",
        b.client.source().await?
    );
    let circles = b
        .client
        .find_all(fantoccini::Locator::Css("section.indicator svg circle"))
        .await?;
    assert_eq!(circles.len(), 2, "one point per observation");
    b.screenshot("indicators").await?;
    // A bad value is refused with the field named, and nothing is written.
    b.fill("#o-period", "2025").await?;
    b.fill("#o-value", "tanto").await?;
    b.click("form[action='/indicatori/osserva'] button").await?;
    b.text_until("#form-error", |t| t.contains("value")).await?;
    // The metro sees the comune's latest value once synced.
    let page = b
        .until(&metro_web.url("/indicatori"), |s| {
            s.contains("Quartu") && s.contains("52,5")
        })
        .await?;
    assert!(page.contains("2024"), "the latest period is shown");
    b.close().await?;
    Ok(())
}

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../domain/tests/fixtures/import")
        .join(name);
    // chromedriver wants a canonical path for a file input.
    path(&p.canonicalize().expect("fixture exists"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_a_bad_row_shows_the_error_and_imports_nothing_then_a_good_one_imports(
) -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let cagliari = Node::admitted(&relay, CAGLIARI, "comune")?;
    let web = WebNode::start(&cagliari)?;
    let b = Browser::start().await?;
    b.client.goto(&web.url("/importa")).await?;
    b.upload("#file", &fixture("opencoesione_bad_amount_and_date.csv"))
        .await?;
    b.click("form[enctype='multipart/form-data'] button")
        .await?;
    let errors = b.text_until("#import-errors", |t| !t.is_empty()).await?;
    assert!(errors.contains("nulla è stato importato"), "{errors}");
    assert!(
        errors.contains("line 2") || errors.contains("riga 2"),
        "names the row: {errors}"
    );
    b.screenshot("import-errors").await?;
    assert!(cagliari.projects(false)?.is_empty(), "nothing was imported");

    // A good file: checked first (nothing written), then confirmed.
    b.upload("#file", &fixture("opencoesione_progetti_esteso.csv"))
        .await?;
    b.click("form[enctype='multipart/form-data'] button")
        .await?;
    let summary = b.text_until("#import-summary", |t| !t.is_empty()).await?;
    assert!(summary.contains("OpenCoesione"), "{summary}");
    assert!(
        cagliari.projects(false)?.is_empty(),
        "a check writes nothing"
    );
    b.click("form[action='/importa/conferma'] button").await?;
    let done = b.text_until("#import-done", |t| !t.is_empty()).await?;
    assert!(done.contains("aggiunti"), "{done}");
    let listed = cagliari.projects(false)?;
    assert!(
        listed.iter().any(|(_, cup, _)| cup == "F21B21000310006"),
        "{listed:?}"
    );
    b.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_lists_the_registry_and_signs_an_invitation_that_works() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let admin = Node::admin(&relay)?;
    let web = WebNode::start(&admin)?;
    let b = Browser::start().await?;
    b.client.goto(&web.url("/amministrazione")).await?;
    let members = b.text("#members").await?;
    assert!(
        members.contains(&admin.id[..16]),
        "the admin key is listed: {members}"
    );
    b.fill("#i-comune", QUARTU).await?;
    b.fill("#i-days", "500").await?;
    b.click("form[action='/amministrazione/invito'] button")
        .await?;
    b.text_until("#form-error", |t| t.contains("days")).await?;
    b.fill("#i-comune", QUARTU).await?;
    b.fill("#i-days", "3").await?;
    b.click("form[action='/amministrazione/invito'] button")
        .await?;
    b.text_until("#token-h", |t| !t.is_empty()).await?;
    let token: serde_json::Value = b
        .client
        .execute(
            "return document.getElementById('invite-token').value;",
            vec![],
        )
        .await?;
    let token = token.as_str().context("token")?.trim().to_owned();
    b.screenshot("admin").await?;
    // The comune's office redeems it; the registry now lists its key.
    let (run, node) = Node::from_invite(&token)?;
    let node = node.with_context(|| format!("redeem failed: {}{}", run.stdout, run.stderr))?;
    admin.sync()?.ok()?;
    let page = b
        .until(&web.url("/amministrazione"), |s| s.contains(&node.id[..16]))
        .await?;
    assert!(page.contains("Quartu"), "the new key's comune is shown");
    // The invitation is listed as used by that key, its token no longer shown.
    let row = b.text("#invitations tbody tr").await?;
    assert!(
        row.contains("usato da") && row.contains(&node.id),
        "the invitation names the key that redeemed it: {row}"
    );
    let tokens_shown: serde_json::Value = b
        .client
        .execute(
            "return document.querySelectorAll('#invitations input.token').length;",
            vec![],
        )
        .await?;
    assert_eq!(
        tokens_shown, 0,
        "a redeemed invitation's token is not shown"
    );
    // Revoke the key from the page: a confirmation first, then the
    // revocation, which pulls first and pushes at once.
    b.click(&format!(
        "form[action='/amministrazione/revoca'] input[value='{}'] ~ button",
        node.id
    ))
    .await?;
    b.text_until("#revoke-h", |t| !t.is_empty()).await?;
    let before = admin
        .cmd(&["admin", "members", "--format", "json"])?
        .ok()?
        .json()?;
    assert!(
        before.to_string().contains("active"),
        "nothing is revoked before the confirmation"
    );
    b.click("#revoke-confirm-button").await?;
    let done = b.text_until("#admin-done", |t| !t.is_empty()).await?;
    assert!(
        done.contains("1 modifiche accettate restano valide")
            && done.contains("0 modifiche concorrenti"),
        "the page says what stays valid (the redemption) and what is refused: {done}"
    );
    let members = admin
        .cmd(&["admin", "members", "--format", "json"])?
        .ok()?
        .json()?;
    let status = members
        .as_array()
        .and_then(|m| m.iter().find(|r| r["node"] == node.id.as_str()))
        .map(|r| r["status"].clone());
    assert_eq!(status, Some(serde_json::json!("revoked")));
    // Delivered at once: the relay refuses the revoked key.
    let refused = node.sync()?;
    assert_eq!(
        refused.code,
        Some(4),
        "the revoked key is no longer admitted: {}{}",
        refused.stdout,
        refused.stderr
    );
    b.close().await?;
    Ok(())
}

#[test]
fn invitations_are_listed_as_pending_redeemed_or_expired() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let admin = Node::admin(&relay)?;
    let empty = admin
        .cmd(&["admin", "invitations", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(empty, serde_json::json!([]));
    let expired = admin.invite(QUARTU, "comune", "1ms")?;
    let pending = admin.invite(CAGLIARI, "metro", "7d")?;
    let used = admin.invite(QUARTU, "comune", "7d")?;
    let (run, node) = Node::from_invite(&used)?;
    let node = node.with_context(|| format!("redeem failed: {}{}", run.stdout, run.stderr))?;
    admin.sync()?.ok()?;
    let list = admin
        .cmd(&["admin", "invitations", "--format", "json"])?
        .ok()?
        .json()?;
    let list = list.as_array().context("a JSON array")?;
    assert_eq!(list.len(), 3, "{list:?}");
    let find = |token: &str, comune: &str, state: &str| {
        list.iter()
            .find(|i| i["state"] == state && i["comune"] == comune)
            .map(|i| (i["token"].clone(), i["by"].clone()))
            .with_context(|| format!("no {state} invitation for {comune} ({token:.20}…): {list:?}"))
    };
    let (t, _) = find(&pending, CAGLIARI, "pending")?;
    assert_eq!(
        t,
        serde_json::json!(pending),
        "a pending invitation shows its token"
    );
    let (t, by) = find(&used, QUARTU, "redeemed")?;
    assert_eq!(t, serde_json::Value::Null);
    assert_eq!(by, serde_json::json!(node.id));
    let (t, _) = find(&expired, QUARTU, "expired")?;
    assert_eq!(t, serde_json::Value::Null);
    let human = admin.cmd(&["admin", "invitations"])?.ok()?.stdout;
    assert!(
        human.contains("pending")
            && human.contains(&format!("redeemed by {}", node.id))
            && human.contains("expired"),
        "{human}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_field_is_named_in_the_page_language_and_nothing_is_saved() -> Result<()> {
    let (_relay, quartu, web, b) = quartu_in_a_browser().await?;
    b.client.goto(&web.url("/progetti/nuovo")).await?;
    b.fill("#cup", "H81B22000555001").await?;
    b.fill("#title", "Piazza del mercato").await?;
    b.fill("#financed_eur", "mille euro").await?;
    b.click("form[action='/progetti/nuovo'] button[type=submit]")
        .await?;
    let error = b.text_until("#form-error", |t| !t.is_empty()).await?;
    assert!(
        error.contains("il campo «Finanziato (€)» non è valido"),
        "the refusal names the field in Italian: {error}"
    );
    assert!(quartu.projects(false)?.is_empty(), "nothing was saved");
    b.close().await?;
    Ok(())
}
