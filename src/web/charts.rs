//! Charts drawn on the server as inline SVG: no script, printable, and the
//! numbers are in the table beside every chart for screen readers. Colours
//! come from the stylesheet (classes `chart__bar`, `chart__series-N`), so
//! the page's CSP needs no inline style. Written here because a bar and a
//! line chart are a few dozen lines, less than wiring a JS library in.

use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round upper bound for an axis (1, 2 or 5 times a power of ten).
fn nice_max(v: i64) -> i64 {
    let v = v.max(1);
    let mut p = 1i64;
    while p * 10 <= v {
        p *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10 * p)
}

/// Groups digits by thousands, as the tables do.
pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Horizontal bars, one per item; `None` is a suppressed value (no bar,
/// its label says so).
pub fn bars(title: &str, items: &[(String, Option<i64>)], suppressed: &str) -> String {
    let row = 26;
    let label_w = 220;
    let bar_w = 440;
    let h = row * items.len().max(1) as i32 + 10;
    let max = nice_max(items.iter().filter_map(|(_, v)| *v).max().unwrap_or(1));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">"#,
        w = label_w + bar_w + 110,
        t = esc(title)
    );
    for (i, (label, value)) in items.iter().enumerate() {
        let y = 5 + row * i as i32;
        // The label column fits about 16 characters; the table beside the
        // chart has the whole name.
        let short: String = if label.chars().count() > 16 {
            label.chars().take(15).chain(std::iter::once('…')).collect()
        } else {
            label.clone()
        };
        let _ = write!(
            s,
            r#"<text class="chart__label" x="{x}" y="{ty}" text-anchor="end"><title>{full}</title>{l}</text>"#,
            x = label_w - 8,
            ty = y + 17,
            full = esc(label),
            l = esc(&short)
        );
        match value {
            Some(v) => {
                let w = ((*v as f64 / max as f64) * bar_w as f64).round() as i32;
                let _ = write!(
                    s,
                    r#"<rect class="chart__bar" x="{label_w}" y="{y}" width="{w}" height="{bh}"/><text class="chart__value" x="{vx}" y="{ty}">{v}</text>"#,
                    bh = row - 6,
                    vx = label_w + w + 6,
                    ty = y + 17,
                    v = thousands(*v)
                );
            }
            None => {
                let _ = write!(
                    s,
                    r#"<text class="chart__value chart__value--suppressed" x="{vx}" y="{ty}">{t}</text>"#,
                    vx = label_w + 6,
                    ty = y + 17,
                    t = esc(suppressed)
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// Lines over a shared x axis (e.g. every day of a period), one per
/// series, with a legend. A `None` point is a suppressed value: the line
/// breaks there. `x_labels` are shown at the first, middle and last points.
pub fn lines(title: &str, x_labels: &[String], series: &[(String, Vec<Option<i64>>)]) -> String {
    let (w, h, left, bottom, top) = (760, 300, 70, 40, 30);
    let plot_w = w - left - 30;
    let plot_h = h - bottom - top;
    let max = nice_max(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
            .max()
            .unwrap_or(1),
    );
    let n = x_labels.len().max(2);
    let x = |i: usize| left as f64 + plot_w as f64 * i as f64 / (n - 1) as f64;
    let y = |v: i64| top as f64 + plot_h as f64 * (1.0 - v as f64 / max as f64);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">"#,
        t = esc(title)
    );
    // Up to four steps, never a repeated label on a small axis.
    let step = (max / 4).max(1);
    for v in (0..=max).step_by(step as usize) {
        let yy = y(v);
        let _ = write!(
            s,
            r#"<line class="chart__grid" x1="{left}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}"/><text class="chart__label" x="{lx}" y="{ty:.1}" text-anchor="end">{v}</text>"#,
            x2 = left + plot_w,
            lx = left - 6,
            ty = yy + 4.0,
            v = thousands(v)
        );
    }
    if !x_labels.is_empty() {
        let last = x_labels.len() - 1;
        for (i, anchor) in [(0, "start"), (last / 2, "middle"), (last, "end")] {
            let _ = write!(
                s,
                r#"<text class="chart__label" x="{xx:.1}" y="{ty}" text-anchor="{anchor}">{l}</text>"#,
                xx = x(i),
                ty = h - bottom + 18,
                l = esc(&x_labels[i])
            );
        }
    }
    for (k, (name, values)) in series.iter().enumerate() {
        // One polyline per unbroken run of shown points.
        let mut runs: Vec<String> = vec![String::new()];
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    let run = runs.last_mut().expect("one run at least");
                    let _ = write!(run, "{:.1},{:.1} ", x(i), y(*v));
                }
                None => runs.push(String::new()),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let _ = write!(
                s,
                r#"<polyline class="chart__line chart__series-{c}" fill="none" points="{p}"/>"#,
                c = k % 6,
                p = run.trim_end()
            );
        }
        let lx = left + 10 + 110 * k as i32;
        let _ = write!(
            s,
            r#"<rect class="chart__series-{c} chart__key" x="{lx}" y="8" width="14" height="14"/><text class="chart__label" x="{tx}" y="20">{n}</text>"#,
            c = k % 6,
            tx = lx + 20,
            n = esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_and_numbers_group_by_thousands() {
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(1_234), 2_000);
        assert_eq!(nice_max(4_000_001), 5_000_000);
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }

    #[test]
    fn a_suppressed_point_breaks_the_line_and_a_small_axis_repeats_no_label() {
        let days: Vec<String> = (1..=5).map(|d| format!("2021-06-0{d}")).collect();
        let svg = lines(
            "t",
            &days,
            &[("1".into(), vec![Some(0), Some(1), None, Some(1), Some(0)])],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        // max 1: the axis reads 0 and 1, once each.
        assert_eq!(svg.matches(">0</text>").count(), 1);
        assert_eq!(
            svg.matches(">1</text>").count(),
            2,
            "the tick and the legend"
        );
    }

    #[test]
    fn a_suppressed_bar_is_not_drawn_and_labels_are_escaped() {
        let svg = bars(
            "t",
            &[("<a>".into(), Some(5)), ("b".into(), None)],
            "10未満",
        );
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(svg.contains("&lt;a&gt;") && svg.contains("10未満"));
    }
}
