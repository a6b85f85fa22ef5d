//! The sustainability report as a self-contained HTML page in Italian (for
//! citizens: every indicator's baseline, latest value and deviation in
//! words) and as a workbook (one sheet of deviations, one of objectives'
//! projects, the stamp).

use super::{Judgement, Sustainability};
use crate::export::ExportError;
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: f64) -> String {
    let t = format!("{v:.3}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    t.replace('.', ",")
}

fn judgement_it(j: Judgement) -> &'static str {
    match j {
        Judgement::Positive => "miglioramento",
        Judgement::Negative => "peggioramento",
        Judgement::Stable => "invariato",
        Judgement::Neutral => "indicatore di contesto",
        Judgement::Unknown => "dato non disponibile",
    }
}

fn dimension_it(d: &str) -> &str {
    match d {
        "governance" => "Governance",
        "environmental" => "Sostenibilità ambientale",
        "social" => "Sostenibilità sociale",
        "economic" => "Sostenibilità economica",
        _ => "Altri indicatori",
    }
}

/// The report as an HTML page.
pub fn html(r: &Sustainability) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"it\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Bilancio di sostenibilità {f}–{t}</title><style>body{{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem;color:#17324d}}table{{border-collapse:collapse;width:100%}}th,td{{border-bottom:1px solid #d9dadb;padding:.3rem;text-align:left}}.num{{text-align:right}}.positive{{color:#006b47}}.negative{{color:#b3243a}}</style></head><body><main><h1>Bilancio di sostenibilità {f}–{t}</h1>",
        f = r.from,
        t = r.to
    );
    if let Some(intro) = &r.intro {
        let _ = write!(out, "<p>{}</p>", esc(intro));
    }
    for d in &r.dimensions {
        let _ = write!(out, "<section><h2>{}</h2>", esc(dimension_it(&d.dimension)));
        if let Some(text) = &d.text {
            let _ = write!(out, "<p>{}</p>", esc(text));
        }
        out.push_str("<table><thead><tr><th scope=\"col\">Indicatore</th><th scope=\"col\">Territorio</th><th scope=\"col\" class=\"num\">Valore di partenza</th><th scope=\"col\" class=\"num\">Ultimo valore</th><th scope=\"col\" class=\"num\">Scostamento</th><th scope=\"col\">Giudizio</th></tr></thead><tbody>");
        for i in &d.indicators {
            let value = |v: &Option<super::Value>| {
                v.as_ref()
                    .map(|v| format!("{} ({})", num(v.value), esc(&v.period)))
                    .unwrap_or_else(|| "–".into())
            };
            let class = match i.judgement {
                Judgement::Positive => "positive",
                Judgement::Negative => "negative",
                _ => "",
            };
            let _ = write!(
                out,
                "<tr><td>{} ({})</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"{class}\">{}</td></tr>",
                esc(&i.name),
                esc(&i.unit),
                esc(&i.territory),
                value(&i.baseline),
                value(&i.latest),
                i.deviation.map(num).unwrap_or_else(|| "–".into()),
                judgement_it(i.judgement)
            );
        }
        out.push_str("</tbody></table></section>");
    }
    out.push_str("<section><h2>Obiettivi del piano e progetti che vi contribuiscono</h2>");
    for o in &r.objectives {
        let _ = write!(out, "<h3>{} {}</h3>", esc(&o.code), esc(&o.name));
        if let Some(text) = &o.text {
            let _ = write!(out, "<p>{}</p>", esc(text));
        }
        if o.projects.is_empty() {
            out.push_str("<p>–</p>");
        } else {
            out.push_str("<ul>");
            for p in &o.projects {
                let _ = write!(
                    out,
                    "<li>{} {}</li>",
                    esc(p.cup.as_deref().unwrap_or("")),
                    esc(&p.title)
                );
            }
            out.push_str("</ul>");
        }
    }
    let _ = writeln!(
        out,
        "</section><footer><p>Calcolato da {} documenti firmati; impronta blake3 <code>{}</code>.</p></footer></main></body></html>",
        r.computed_from.documents.len(),
        r.computed_from.digest
    );
    out
}

/// The report as a workbook.
pub fn xlsx(r: &Sustainability) -> Result<Vec<u8>, ExportError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("scostamenti")?;
    let header = [
        "dimensione",
        "indicatore",
        "nome",
        "unita",
        "polarita",
        "territorio",
        "periodo_partenza",
        "valore_partenza",
        "periodo_ultimo",
        "ultimo_valore",
        "scostamento",
        "giudizio",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    let mut y = 1;
    for d in &r.dimensions {
        for i in &d.indicators {
            sheet.write_string(y, 0, &d.dimension)?;
            sheet.write_string(y, 1, &i.code)?;
            sheet.write_string(y, 2, &i.name)?;
            sheet.write_string(y, 3, &i.unit)?;
            sheet.write_number(y, 4, f64::from(i.polarity))?;
            sheet.write_string(y, 5, &i.territory)?;
            if let Some(b) = &i.baseline {
                sheet.write_string(y, 6, &b.period)?;
                sheet.write_number(y, 7, b.value)?;
            }
            if let Some(l) = &i.latest {
                sheet.write_string(y, 8, &l.period)?;
                sheet.write_number(y, 9, l.value)?;
            }
            if let Some(dev) = i.deviation {
                sheet.write_number(y, 10, dev)?;
            }
            sheet.write_string(y, 11, judgement_it(i.judgement))?;
            y += 1;
        }
    }
    let sheet = book.add_worksheet();
    sheet.set_name("obiettivi")?;
    for (c, h) in ["obiettivo", "nome", "comune", "cup", "progetto"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *h)?;
    }
    let mut y = 1;
    for o in &r.objectives {
        for p in &o.projects {
            sheet.write_string(y, 0, &o.code)?;
            sheet.write_string(y, 1, &o.name)?;
            sheet.write_string(y, 2, &p.comune)?;
            sheet.write_string(y, 3, p.cup.as_deref().unwrap_or(""))?;
            sheet.write_string(y, 4, &p.title)?;
            y += 1;
        }
    }
    let sheet = book.add_worksheet();
    sheet.set_name("Verifica")?;
    sheet.write_string(0, 0, "impronta_blake3")?;
    sheet.write_string(0, 1, &r.computed_from.digest)?;
    sheet.write_string(1, 0, "documenti")?;
    sheet.write_number(1, 1, r.computed_from.documents.len() as f64)?;
    Ok(book.save_to_buffer()?)
}
