//! The report as one self-contained HTML page with SVG bar charts.

use super::render_md::{basis_it, heads_shown, shown, stamp_summary, summary, VERIFY_HOWTO};
use super::*;
use crate::money::format_eur;
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart: one row per label, one bar per series.
fn bars(title: &str, labels: &[String], series: &[(&str, &str, Vec<f64>)]) -> String {
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let row_h = 8.0 + 14.0 * series.len() as f64;
    let height = 40.0 + row_h * labels.len() as f64 + 20.0;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    for (i, label) in labels.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>",
            y + 12.0,
            esc(label)
        );
        for (k, (_, color, values)) in series.iter().enumerate() {
            let w = 480.0 * values.get(i).copied().unwrap_or(0.0) / max;
            let by = y + 14.0 * k as f64;
            let _ = write!(
                svg,
                "<rect x=\"200\" y=\"{by}\" width=\"{w:.1}\" height=\"12\" fill=\"{color}\"/>"
            );
        }
    }
    for (k, (name, color, _)) in series.iter().enumerate() {
        let x = 200.0 + 160.0 * k as f64;
        let _ = write!(svg, "<rect x=\"{x}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"14\" font-size=\"12\">{}</text>", x + 16.0, esc(name));
    }
    svg.push_str("</svg></figure>");
    svg
}

/// The report as one self-contained HTML page (Italian, inline SVG, no
/// external resources), readable offline.
pub fn html(r: &Report) -> String {
    let eur = |c: i64| c as f64 / 100.0;
    let labels: Vec<String> = r.by_comune.iter().map(|c| shown(&c.comune)).collect();
    let financial = bars(
        "Avanzamento finanziario per comune (€)",
        &labels,
        &[
            (
                "Finanziato",
                "#2b6cb0",
                r.by_comune
                    .iter()
                    .map(|c| eur(c.money.financed_cents))
                    .collect(),
            ),
            (
                "Impegnato",
                "#dd6b20",
                r.by_comune
                    .iter()
                    .map(|c| eur(c.money.committed_cents))
                    .collect(),
            ),
            (
                "Pagato",
                "#38a169",
                r.by_comune
                    .iter()
                    .map(|c| eur(c.money.paid_cents))
                    .collect(),
            ),
        ],
    );
    let sources = bars(
        "Importi per fonte di finanziamento (€)",
        &r.by_source
            .iter()
            .map(|s| s.source.clone())
            .collect::<Vec<_>>(),
        &[(
            "Importo",
            "#2b6cb0",
            r.by_source.iter().map(|s| eur(s.amount_cents)).collect(),
        )],
    );
    let states = bars(
        "Progetti per stato procedurale",
        &r.by_state
            .iter()
            .map(|s| s.state.clone())
            .collect::<Vec<_>>(),
        &[(
            "Progetti",
            "#805ad5",
            r.by_state.iter().map(|s| s.projects as f64).collect(),
        )],
    );
    let indicators = bars(
        "Avanzamento degli indicatori verso il target (%)",
        &r.indicators
            .iter()
            .map(|i| format!("{} · {}", i.code, shown(&i.territory)))
            .collect::<Vec<_>>(),
        &[(
            "Avanzamento",
            "#38a169",
            r.indicators
                .iter()
                .map(|i| i.progress.unwrap_or(0.0).max(0.0) * 100.0)
                .collect(),
        )],
    );
    let body = markdown_tables_html(r);
    format!(
        "<!doctype html><html lang=\"it\"><head><meta charset=\"utf-8\"><title>Rapporto di monitoraggio al {}</title><style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#1a202c}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #cbd5e0;padding:4px 8px}}td.n{{text-align:right}}figcaption{{font-weight:bold;margin:1em 0 .5em}}</style></head><body><h1>Rapporto di monitoraggio al {}</h1>{}{}{}{}{}{}</body></html>\n",
        r.as_of, r.as_of, body, financial, sources, states, indicators, html_stamp(&r.computed_from)
    )
}

fn markdown_tables_html(r: &Report) -> String {
    let mut s = format!("<p>{}</p>", esc(&summary(&r.totals)));
    s.push_str("<h2>Per comune</h2><table><tr><th>Comune</th><th>Progetti</th><th>Finanziato €</th><th>Impegnato €</th><th>Pagato €</th></tr>");
    for c in &r.by_comune {
        let m = &c.money;
        let _ = write!(s, "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>", esc(&shown(&c.comune)), m.projects, format_eur(m.financed_cents), format_eur(m.committed_cents), format_eur(m.paid_cents));
    }
    s.push_str("</table>");
    s.push_str(&html_states(r));
    let _ = write!(
        s,
        "<h2>Milestone in ritardo ({})</h2><ul>",
        r.late_milestones.len()
    );
    for m in &r.late_milestones {
        let _ = write!(
            s,
            "<li>{} · {} {} — {} (scadenza {})</li>",
            esc(&shown(&m.comune)),
            esc(m.cup.as_deref().unwrap_or("-")),
            esc(&m.code),
            esc(&m.description),
            m.due
        );
    }
    s.push_str("</ul>");
    s
}

/// The procedural-state breakdown and per-project list, as HTML tables.
fn html_states(r: &Report) -> String {
    let mut s = String::from("<h2>Stato procedurale</h2><table><tr><th>Stato</th><th>Progetti</th><th>Dichiarato dalla fonte</th><th>Derivato dalle date</th><th>Impostato a mano</th></tr>");
    for st in &r.by_state {
        let _ = write!(s, "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>", esc(&st.state), st.projects, st.stated, st.derived, st.set_by_hand);
    }
    s.push_str("</table><h3>Stato procedurale per progetto</h3><table><tr><th>Comune</th><th>CUP</th><th>Progetto</th><th>Stato</th><th>Origine</th></tr>");
    for p in &r.project_states {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.comune),
            esc(p.cup.as_deref().unwrap_or("-")),
            esc(&p.title),
            esc(&p.state),
            basis_it(&p.basis)
        );
    }
    s.push_str("</table>");
    s
}

/// The stamp as the page's footer, so a printed report can be traced.
fn html_stamp(stamp: &Stamp) -> String {
    let mut s = format!(
        "<footer><h2>Verificabilità</h2><p>{}</p><ul>",
        esc(&stamp_summary(stamp))
    );
    for d in &stamp.documents {
        let _ = write!(
            s,
            "<li><code>{}</code>: <code>{}</code></li>",
            esc(&d.doc),
            esc(&heads_shown(d))
        );
    }
    let _ = write!(s, "</ul><p>{}</p></footer>", esc(VERIFY_HOWTO));
    s
}
