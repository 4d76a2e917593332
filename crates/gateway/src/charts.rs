//! Pictures for the console, drawn on the server as SVG: no script, no library, and the
//! same numbers in a table beside each for screen readers. Each picture is an `img` with
//! a title that says what it shows, in words.

use std::fmt::Write as _;

/// Drawing area of every chart (the SVG scales to the page's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 150.0;
/// Room for the axis labels.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;
/// Colours with at least 4.5:1 contrast on the page's white.
const INK: &str = "#24292f";
const BAR: &str = "#0b6bcb";
const GRID: &str = "#d0d7de";

/// Text for SVG and HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number as an axis shows it: whole, or with one decimal below ten.
fn short(value: f64) -> String {
    if value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The frame: the SVG element, its title, the y axis's top and zero, and the x axis's
/// first and last labels.
fn frame(id: &str, title: &str, top: f64, first: &str, last: &str, body: &str) -> String {
    let (bottom, right) = (HEIGHT - BOTTOM, WIDTH);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{title}</title>"#,
        title = escape(title),
    );
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{right}" y2="{TOP}" stroke="{GRID}"/><line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{INK}"/>"#
    );
    let _ = write!(
        svg,
        r#"<text x="{x}" y="{y}" text-anchor="end" font-size="11" fill="{INK}">{top}</text><text x="{x}" y="{bottom}" text-anchor="end" font-size="11" fill="{INK}">0</text>"#,
        x = LEFT - 4.0,
        y = TOP + 8.0,
        top = short(top),
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{HEIGHT}" font-size="11" fill="{INK}">{first}</text><text x="{right}" y="{HEIGHT}" text-anchor="end" font-size="11" fill="{INK}">{last}</text>"#,
        first = escape(first),
        last = escape(last),
    );
    svg.push_str(body);
    svg.push_str("</svg>");
    svg
}

/// The scale's top: the largest value, at least 1.
fn top_of(values: &[f64]) -> f64 {
    values.iter().copied().fold(1.0_f64, f64::max)
}

/// Bars, one per point (label, value), left to right.
pub(crate) fn bars(id: &str, title: &str, points: &[(String, f64)]) -> String {
    let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
    let top = top_of(&values);
    let span = (WIDTH - LEFT) / points.len().max(1) as f64;
    let height = HEIGHT - BOTTOM - TOP;
    let mut body = String::new();
    for (i, value) in values.iter().enumerate() {
        let h = height * value / top;
        let _ = write!(
            body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{BAR}"/>"#,
            x = LEFT + span * i as f64 + span * 0.1,
            y = HEIGHT - BOTTOM - h,
            w = (span * 0.8).max(0.5),
        );
    }
    let first = points.first().map_or("", |(l, _)| l.as_str());
    let last = points.last().map_or("", |(l, _)| l.as_str());
    frame(id, title, top, first, last, &body)
}

/// A line through the points that have a value (gaps where none was taken).
pub(crate) fn line(id: &str, title: &str, points: &[(String, Option<f64>)]) -> String {
    let values: Vec<f64> = points.iter().filter_map(|(_, v)| *v).collect();
    let top = top_of(&values);
    let step = (WIDTH - LEFT) / (points.len().max(2) - 1) as f64;
    let height = HEIGHT - BOTTOM - TOP;
    let mut path = String::new();
    let mut pen_down = false;
    for (i, (_, value)) in points.iter().enumerate() {
        match value {
            Some(v) => {
                let _ = write!(
                    path,
                    "{}{:.1},{:.1} ",
                    if pen_down { "L" } else { "M" },
                    LEFT + step * i as f64,
                    HEIGHT - BOTTOM - height * v / top
                );
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let mut body = if path.is_empty() {
        String::new()
    } else {
        format!(r#"<path d="{path}" fill="none" stroke="{BAR}" stroke-width="2"/>"#)
    };
    // Few points: each is marked, so one alone is seen too.
    if values.len() <= 60 {
        for (i, (_, value)) in points.iter().enumerate() {
            if let Some(v) = value {
                let _ = write!(
                    body,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{BAR}"/>"#,
                    LEFT + step * i as f64,
                    HEIGHT - BOTTOM - height * v / top
                );
            }
        }
    }
    let first = points.first().map_or("", |(l, _)| l.as_str());
    let last = points.last().map_or("", |(l, _)| l.as_str());
    frame(id, title, top, first, last, &body)
}

/// Horizontal bars that compare a few totals (a funnel: registered, attended, no-show).
pub(crate) fn funnel(id: &str, title: &str, steps: &[(&str, u64)]) -> String {
    let top = steps.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let row = 30.0;
    let height = row * steps.len() as f64 + 4.0;
    let label_width = 90.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{id}-title" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{title}</title>"#,
        title = escape(title),
    );
    for (i, (label, n)) in steps.iter().enumerate() {
        let y = row * i as f64 + 4.0;
        let w = (WIDTH - label_width - 60.0) * (*n as f64) / top;
        let _ = write!(
            svg,
            r#"<text x="0" y="{ty:.1}" font-size="13" fill="{INK}">{label}</text><rect x="{label_width}" y="{y:.1}" width="{w:.1}" height="20" fill="{BAR}"/><text x="{nx:.1}" y="{ty:.1}" font-size="13" fill="{INK}">{n}</text>"#,
            ty = y + 15.0,
            label = escape(label),
            nx = label_width + w + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A share of something used (0–1) as a bar with its percentage.
pub(crate) fn meter(id: &str, title: &str, share: f64) -> String {
    let share = share.clamp(0.0, 1.0);
    let width = (WIDTH - 60.0) * share;
    format!(
        r#"<svg class="chart meter" viewBox="0 0 {WIDTH} 24" role="img" aria-labelledby="{id}-title" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{title}</title><rect x="0" y="2" width="{full:.1}" height="20" fill="none" stroke="{INK}"/><rect x="0" y="2" width="{width:.1}" height="20" fill="{BAR}"/><text x="{tx:.1}" y="17" font-size="13" fill="{INK}">{pct:.0} %</text></svg>"#,
        title = escape(title),
        full = WIDTH - 60.0,
        tx = WIDTH - 54.0,
        pct = share * 100.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_images_with_titles_and_escape_what_they_show() {
        let svg = bars(
            "s",
            "Sign-ups <per day>",
            &[
                ("1 Mar".into(), 3.0),
                ("2 Mar".into(), 0.0),
                ("3 Mar".into(), 6.0),
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"role="img""#) && svg.contains("&lt;per day&gt;"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(">6<"), "the scale's top: {svg}");
        let gaps = line(
            "l",
            "Waiting",
            &[
                ("a".into(), Some(1.0)),
                ("b".into(), None),
                ("c".into(), Some(2.0)),
            ],
        );
        let path = gaps.split("<path d=\"").nth(1).unwrap_or_default();
        let path = path.split('"').next().unwrap_or_default();
        assert_eq!(path.matches('M').count(), 2, "a gap lifts the pen: {gaps}");
        assert_eq!(gaps.matches("<circle").count(), 2, "each point marked");
        let empty = line("e", "Nothing yet", &[]);
        assert!(!empty.contains("<path"));
        assert!(funnel("f", "Turnout", &[("registered", 10), ("attended", 4)]).contains(">4<"));
        assert!(meter("m", "Budget", 1.7).contains("100 %"));
    }
}
