//! The report as Markdown, and the Italian phrases the HTML page shares.

use super::*;
use crate::comuni;
use crate::money::format_eur;
use std::fmt::Write as _;

/// Italian label of a state's basis, for Markdown and HTML.
pub(super) fn basis_it(basis: &str) -> &'static str {
    match basis {
        "stated" => "dichiarato dalla fonte",
        "override" => "impostato a mano",
        _ => "derivato dalle date",
    }
}

/// `Cagliari (092009)` when the ISTAT list names the code, else the code.
pub(super) fn shown(code: &str) -> String {
    comuni::label(code)
}

fn pct(part: i64, whole: i64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

/// The one-line financial summary, in Italian.
pub(super) fn summary(t: &Money) -> String {
    format!(
        "{} progetti · finanziato {} € · impegnato {} € ({}) · pagato {} € ({})",
        t.projects,
        format_eur(t.financed_cents),
        format_eur(t.committed_cents),
        pct(t.committed_cents, t.financed_cents),
        format_eur(t.paid_cents),
        pct(t.paid_cents, t.financed_cents)
    )
}

/// The report as Markdown (Italian headings).
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Rapporto di monitoraggio al {}\n", r.as_of);
    let _ = writeln!(s, "{}\n", summary(&r.totals));
    s.push_str("## Avanzamento finanziario per comune\n\n| Comune | Progetti | Finanziato € | Impegnato € | Pagato € |\n|---|---:|---:|---:|---:|\n");
    for c in &r.by_comune {
        let m = &c.money;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            shown(&c.comune),
            m.projects,
            format_eur(m.financed_cents),
            format_eur(m.committed_cents),
            format_eur(m.paid_cents)
        );
    }
    s.push_str(
        "\n## Fonti di finanziamento\n\n| Fonte | Importo € | Progetti |\n|---|---:|---:|\n",
    );
    for f in &r.by_source {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            f.source,
            format_eur(f.amount_cents),
            f.projects
        );
    }
    s.push_str(&markdown_states(r));
    let _ = writeln!(
        s,
        "\n## Milestone in ritardo ({})\n",
        r.late_milestones.len()
    );
    for m in &r.late_milestones {
        let _ = writeln!(
            s,
            "- {} · {} {} — {} (scadenza {})",
            shown(&m.comune),
            m.cup.as_deref().unwrap_or("-"),
            m.code,
            m.description,
            m.due
        );
    }
    s.push_str("\n## Indicatori\n\n| Indicatore | Territorio | Baseline | Target | Ultimo valore | Avanzamento |\n|---|---|---:|---:|---:|---:|\n");
    for i in &r.indicators {
        let latest = i
            .latest
            .as_ref()
            .map(|l| format!("{} ({})", l.value, l.period))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "| {} {} | {} | {} | {} | {} | {} |",
            i.code,
            i.name,
            shown(&i.territory),
            opt(i.baseline),
            opt(i.target),
            latest,
            i.progress
                .map(|p| format!("{:.0} %", p * 100.0))
                .unwrap_or_else(|| "-".into())
        );
    }
    s.push_str(&markdown_stamp(&r.computed_from));
    s
}

/// The procedural-state breakdown (stated vs derived) and the per-project
/// list, as Markdown.
fn markdown_states(r: &Report) -> String {
    let mut s = String::from("\n## Stato procedurale\n\n| Stato | Progetti | Dichiarato dalla fonte | Derivato dalle date | Impostato a mano |\n|---|---:|---:|---:|---:|\n");
    for st in &r.by_state {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            st.state, st.projects, st.stated, st.derived, st.set_by_hand
        );
    }
    s.push_str("\n### Stato procedurale per progetto\n\n| Comune | CUP | Progetto | Stato | Origine |\n|---|---|---|---|---|\n");
    for p in &r.project_states {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            p.comune,
            p.cup.as_deref().unwrap_or("-"),
            p.title.replace('|', "\\|"),
            p.state,
            basis_it(&p.basis)
        );
    }
    s
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// The stamp's first line, in Italian: how many documents, and the digest.
pub(super) fn stamp_summary(stamp: &Stamp) -> String {
    format!(
        "Calcolato da {} documenti · impronta blake3 {}",
        stamp.documents.len(),
        stamp.digest
    )
}

/// How a reader verifies a printed report, in Italian.
pub(super) const VERIFY_HOWTO: &str = "Per verificarlo: `accordo report --verify FILE.json` sul rapporto JSON con la stessa impronta ricalcola le cifre a questi heads dal log del nodo.";

/// A document's heads as printed: comma-separated hex, or `(vuoto)`.
pub(super) fn heads_shown(d: &DocHeads) -> String {
    if d.heads.is_empty() {
        "(vuoto)".to_owned()
    } else {
        d.heads.join(", ")
    }
}

/// The stamp as a Markdown footer, so a printed report can be traced.
fn markdown_stamp(stamp: &Stamp) -> String {
    let mut s = format!("\n---\n\n**Verificabilità.** {}\n\n", stamp_summary(stamp));
    for d in &stamp.documents {
        let _ = writeln!(s, "- `{}`: `{}`", d.doc, heads_shown(d));
    }
    let _ = writeln!(s, "\n{VERIFY_HOWTO}");
    s
}
