//! A latency plot per run, as SVG with no dependency: the latency at each percentile, on the
//! usual "nines" scale (50 %, 90 %, 99 %, 99.9 %, …), so the tail is as visible as the median.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 50.0;
const TOP: f64 = 40.0;
const RIGHT: f64 = 20.0;

/// Where on the x axis a percentile goes: the number of nines, `-log10(1 - q)`.
fn nines(q: f64) -> f64 {
    -(1.0 - q).max(1e-6).log10()
}

/// The SVG of `h`'s latency distribution (microseconds), titled `title`.
pub(crate) fn latency_svg(title: &str, h: &Histogram<u64>) -> String {
    let mut points: Vec<(f64, f64)> = h
        .iter_quantiles(2)
        .map(|v| {
            (
                nines(v.quantile_iterated_to()),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .filter(|(x, _)| x.is_finite())
        .collect();
    if points.is_empty() {
        points.push((0.0, 0.0));
    }
    let max_x = points
        .iter()
        .map(|p| p.0)
        .fold(1.0_f64, f64::max)
        .ceil()
        .min(6.0);
    let max_y = points.iter().map(|p| p.1).fold(0.001_f64, f64::max) * 1.1;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| LEFT + x.min(max_x) / max_x * plot_w;
    let py = |y: f64| TOP + plot_h - y / max_y * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"##,
        WIDTH / 2.0,
        escape(title)
    );
    for k in 0..=(max_x as u32) {
        let x = px(f64::from(k));
        let label = match k {
            0 => "0%".to_owned(),
            1 => "90%".to_owned(),
            2 => "99%".to_owned(),
            n => format!("99.{}%", "9".repeat(n as usize - 2)),
        };
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    for i in 0..=4 {
        let y = max_y * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{y:.2}</text>"##,
            py(y),
            WIDTH - RIGHT,
            py(y),
            LEFT - 6.0,
            py(y) + 4.0
        );
    }
    let path: String = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
        .collect::<Vec<_>>()
        .join(" ");
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{path}"/><text x="{}" y="{}" text-anchor="middle">percentile</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">latency (ms)</text></svg>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_is_an_svg_with_one_line() {
        let mut h =
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!());
        for v in 1..=10_000u64 {
            h.saturating_record(v);
        }
        let svg = latency_svg("eval <one>", &h);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("eval &lt;one&gt;"));
        assert!(svg.contains("99.9%"));
    }
}
