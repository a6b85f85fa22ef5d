//! Charts drawn on the server as SVG (readable without JavaScript and when
//! printed): an indicator's observations over time against its baseline and
//! target. Each chart carries a text description for screen readers; the
//! page shows the same figures in a table.

use std::fmt::Write as _;

/// Size of a chart in CSS pixels (it scales with the page).
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 180.0;
const PAD_LEFT: f64 = 56.0;
const PAD_RIGHT: f64 = 12.0;
const PAD_TOP: f64 = 14.0;
const PAD_BOTTOM: f64 = 30.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A trend chart: `points` are (period, value) in period order.
pub fn trend(
    label: &str,
    points: &[(String, f64)],
    baseline: Option<f64>,
    target: Option<f64>,
    fmt: impl Fn(f64) -> String,
) -> String {
    let values: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .chain(baseline)
        .chain(target)
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let plot_w = WIDTH - PAD_LEFT - PAD_RIGHT;
    let plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM;
    let y = |v: f64| PAD_TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    let n = points.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            PAD_LEFT + plot_w / 2.0
        } else {
            PAD_LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(label)
    );
    let _ = write!(
        svg,
        r##"<line x1="{PAD_LEFT}" y1="{t}" x2="{PAD_LEFT}" y2="{b}" stroke="#5c6f82"/><line x1="{PAD_LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#5c6f82"/>"##,
        t = PAD_TOP,
        b = PAD_TOP + plot_h,
        r = WIDTH - PAD_RIGHT
    );
    for (v, cls) in [(hi, "tick"), (lo, "tick")] {
        let _ = write!(
            svg,
            r##"<text class="{cls}" x="{}" y="{}" text-anchor="end" font-size="11" fill="#17324d">{}</text>"##,
            PAD_LEFT - 4.0,
            y(v) + 4.0,
            esc(&fmt(v))
        );
    }
    for (value, name, color) in [
        (baseline, "baseline", "#a66300"),
        (target, "target", "#008055"),
    ] {
        if let Some(v) = value {
            let _ = write!(
                svg,
                r#"<line class="{name}" x1="{PAD_LEFT}" y1="{yv:.1}" x2="{r}" y2="{yv:.1}" stroke="{color}" stroke-dasharray="6 4" stroke-width="2"/>"#,
                yv = y(v),
                r = WIDTH - PAD_RIGHT
            );
        }
    }
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    if points.len() > 1 {
        let _ = write!(
            svg,
            r##"<polyline class="observed" points="{}" fill="none" stroke="#0066cc" stroke-width="2.5"/>"##,
            path.join(" ")
        );
    }
    for (i, (period, v)) in points.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#0066cc"><title>{}: {}</title></circle>"##,
            x(i),
            y(*v),
            esc(period),
            esc(&fmt(*v))
        );
        if i == 0 || i + 1 == points.len() || points.len() <= 6 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11" fill="#17324d">{}</text>"##,
                x(i),
                HEIGHT - 10.0,
                esc(period)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_has_its_points_lines_and_an_escaped_label() {
        let pts = vec![("2023".to_owned(), 40.0), ("2024".to_owned(), 52.5)];
        let svg = trend(
            "Raccolta <differenziata>",
            &pts,
            Some(35.0),
            Some(65.0),
            |v| format!("{v}"),
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("aria-label=\"Raccolta &lt;differenziata&gt;\""));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("class=\"baseline\"") && svg.contains("class=\"target\""));
        assert!(svg.contains("<polyline"));
        // Values map inside the plot: the target (highest) is at the top.
        let target_y: f64 = svg
            .split("class=\"target\"")
            .nth(1)
            .and_then(|s| s.split("y1=\"").nth(1))
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!((target_y - PAD_TOP).abs() < 0.2, "{target_y}");
    }

    #[test]
    fn one_point_or_none_still_draws() {
        let one = trend("x", &[("2024".into(), 3.0)], None, None, |v| v.to_string());
        assert_eq!(one.matches("<circle").count(), 1);
        assert!(!one.contains("<polyline"));
        let none = trend("x", &[], None, None, |v| v.to_string());
        assert!(none.ends_with("</svg>"));
    }
}
