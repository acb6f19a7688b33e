//! `--report FILE.html`: one self-contained page (inline CSS and SVG, no script, nothing
//! fetched) with the summary, the rates over time, the latency percentiles over time and
//! the latency histograms. It opens offline in any browser.

use std::fmt::Write as _;

use super::hist::Hist;
use super::report::{PERCENTILES, Summary, dur_us, percentiles};
use super::series::Point;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 300.0;
/// Plot area inside the SVG: left, top, right, bottom margins.
const LEFT: f64 = 80.0;
const TOP: f64 = 16.0;
const RIGHT: f64 = 150.0;
const BOTTOM: f64 = 40.0;

const BLUE: &str = "#1f77b4";
const GREEN: &str = "#2ca02c";
const ORANGE: &str = "#ff7f0e";

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    dash: &'a str,
    points: Vec<(f64, f64)>,
}

/// The whole page.
pub fn render(s: &Summary, verdict: &str) -> String {
    let mut h = String::with_capacity(64 << 10);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<title>warren perf report</title>\n<style>\n");
    h.push_str(
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:920px}\
         h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 6px}\
         .headline{color:#555}.verdict{font-weight:bold;font-size:18px}.ok{color:#18794e}.failed{color:#c62828}\
         table{border-collapse:collapse}td{padding:2px 14px 2px 0;vertical-align:top}td:first-child{color:#555}\
         svg{display:block;background:#fafafa;border:1px solid #ddd}\
         svg text{font-size:12px;fill:#333}.axis{stroke:#888}.grid{stroke:#e4e4e4}\
         .empty{fill:#888;font-size:14px}\n",
    );
    h.push_str("</style>\n</head>\n<body>\n<h1>warren perf</h1>\n");
    let _ = writeln!(h, "<p class=\"headline\">{}</p>", esc(&s.headline()));
    let class = if verdict == "ok" { "ok" } else { "failed" };
    let _ = writeln!(
        h,
        "<p class=\"verdict {class}\" id=\"verdict\">Result: {}</p>",
        esc(verdict)
    );
    summary_table(&mut h, s);

    h.push_str("<section id=\"rates\">\n<h2>Rate over time</h2>\n");
    let rate = |f: fn(&Point) -> f64| s.points.iter().map(|p| (p.at_secs, f(p))).collect::<Vec<_>>();
    let mut rates = vec![Series {
        name: "published/s",
        color: BLUE,
        dash: "",
        points: rate(|p| p.publish_rate),
    }];
    if s.confirm > 0 {
        rates.push(Series {
            name: "confirmed/s",
            color: GREEN,
            dash: "6 3",
            points: rate(|p| p.confirm_rate),
        });
    }
    rates.push(Series {
        name: "consumed/s",
        color: ORANGE,
        dash: "",
        points: rate(|p| p.consume_rate),
    });
    line_chart(&mut h, "rate-chart", "messages per second", &rates, false);
    h.push_str("</section>\n");

    h.push_str("<section id=\"latency-over-time\">\n<h2>Latency percentiles over time</h2>\n");
    let mut lat = Vec::new();
    for (kind, color, pick) in [
        (
            "consume",
            ORANGE,
            (|p: &Point| p.consume_latency) as fn(&Point) -> super::series::Percentiles,
        ),
        ("confirm", GREEN, |p: &Point| p.confirm_latency),
    ] {
        for (i, dash) in [(0usize, ""), (3, "6 3"), (4, "2 3")] {
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|p| (p.at_secs, pick(p)))
                .filter(|(_, q)| q.count > 0)
                .map(|(t, q)| (t, q.values[i] as f64))
                .collect();
            if !points.is_empty() {
                lat.push((format!("{kind} {}", PERCENTILES[i].0), color, dash, points));
            }
        }
    }
    let lat: Vec<Series> = lat
        .iter()
        .map(|(name, color, dash, points)| Series {
            name,
            color,
            dash,
            points: points.clone(),
        })
        .collect();
    line_chart(&mut h, "latency-chart", "latency", &lat, true);
    h.push_str("</section>\n");

    h.push_str("<section id=\"histogram\">\n<h2>Latency histogram</h2>\n");
    histogram(&mut h, &s.latency_us, &s.confirm_latency_us);
    h.push_str("</section>\n</body>\n</html>\n");
    h
}

fn summary_table(h: &mut String, s: &Summary) {
    let mut rows: Vec<(&str, String)> = vec![
        ("published", format!("{} ({:.0}/s)", s.published, s.publish_rate())),
        ("confirmed", s.confirmed.to_string()),
        ("nacked / returned", format!("{} / {}", s.nacked, s.returned)),
        ("consumed", format!("{} ({:.0}/s)", s.consumed, s.consume_rate())),
        ("lost", s.lost.to_string()),
        (
            "duplicates",
            format!(
                "{} ({} redelivered, {} unexplained)",
                s.duplicates, s.redelivered, s.unexplained
            ),
        ),
    ];
    if s.unknown > 0 || s.recoveries > 0 {
        rows.push((
            "unknown outcome",
            format!("{} ({} arrived)", s.unknown, s.unknown_arrived),
        ));
        rows.push(("recoveries", s.recoveries.to_string()));
    }
    if s.consumer_nacks > 0 {
        rows.push((
            "consumer nacks",
            format!("{} ({} dropped)", s.consumer_nacks, s.nack_dropped),
        ));
    }
    let labels: Vec<&str> = PERCENTILES.iter().map(|p| p.0).collect();
    rows.push(("latency", labels.join(" / ")));
    rows.push(("publish → consume", percentiles(&s.latency_us)));
    if s.confirm_latency_us.count() > 0 {
        rows.push(("publish → confirm", percentiles(&s.confirm_latency_us)));
    }
    if let Some(c) = s.cpu_secs {
        rows.push(("client CPU", format!("{c:.2} s")));
    }
    if let Some(m) = s.rss.max {
        rows.push(("client RSS max", format!("{:.1} MiB", m as f64 / super::report::MIB)));
    }
    rows.push(("elapsed", format!("{:.3} s", s.elapsed_secs)));
    h.push_str("<table id=\"summary\">\n");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    }
    h.push_str("</table>\n");
}

/// A line chart of `series` over the run's seconds; `log` puts y on a log scale
/// (latencies, in microseconds).
fn line_chart(h: &mut String, id: &str, y_label: &str, series: &[Series], log: bool) {
    let _ = writeln!(
        h,
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        esc(y_label)
    );
    let all = || series.iter().flat_map(|s| s.points.iter());
    if all().next().is_none() {
        let _ = writeln!(
            h,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data (the run lasted under a second, or nothing was measured)</text>\n</svg>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return;
    }
    let x_max = all().map(|p| p.0).fold(1.0, f64::max);
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |t: f64| LEFT + t / x_max * pw;
    // y: linear from 0, or log10 over whole decades.
    let y_hi = all().map(|p| p.1).fold(0.0, f64::max);
    let (lo, hi) = if log {
        let lo = all().map(|p| p.1.max(1.0)).fold(f64::MAX, f64::min);
        (
            lo.log10().floor(),
            y_hi.max(1.0).log10().ceil().max(lo.log10().floor() + 1.0),
        )
    } else {
        (0.0, nice_ceiling(y_hi))
    };
    let y = |v: f64| {
        let f = if log {
            (v.max(1.0).log10() - lo) / (hi - lo)
        } else {
            v / hi
        };
        TOP + ph - f.clamp(0.0, 1.0) * ph
    };
    // Grid and y ticks.
    let ticks: Vec<f64> = if log {
        (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5).map(|i| hi * f64::from(i) / 5.0).collect()
    };
    for v in ticks {
        let yy = y(v);
        let label = if log { dur_us(v as u64) } else { compact(v) };
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + pw,
            LEFT - 6.0,
            yy + 4.0,
            esc(&label)
        );
    }
    // x ticks: about 6, on whole seconds.
    let step = ((x_max / 6.0).ceil()).max(1.0);
    let mut t = 0.0;
    while t <= x_max + 1e-9 {
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t:.0} s</text>",
            x(t),
            TOP + ph + 16.0
        );
        t += step;
    }
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{:.1}\"/>",
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph
    );
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">seconds since the start</text>",
        LEFT + pw / 2.0,
        HEIGHT - 6.0
    );
    let _ = writeln!(
        h,
        "<text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">{}</text>",
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        let dash = if s.dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{}\"", s.dash)
        };
        let _ = writeln!(
            h,
            "<polyline class=\"series\" data-name=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            esc(s.name),
            s.color,
            pts.join(" ")
        );
        // A single point draws no line: mark it.
        if let [(t, v)] = s.points.as_slice() {
            let _ = writeln!(
                h,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
                x(*t),
                y(*v),
                s.color
            );
        }
        let ly = TOP + 14.0 + i as f64 * 18.0;
        let lx = LEFT + pw + 12.0;
        let _ = writeln!(
            h,
            "<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\"{dash}/><text class=\"legend\" x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
            ly - 4.0,
            lx + 22.0,
            ly - 4.0,
            s.color,
            lx + 28.0,
            esc(s.name)
        );
    }
    h.push_str("</svg>\n");
}

/// Bars of the latency distributions on log-spaced bins (4 per decade), publish →
/// consume and publish → confirm side by side; the height is the share of messages.
fn histogram(h: &mut String, consume: &Hist, confirm: &Hist) {
    let _ = writeln!(
        h,
        "<svg id=\"histogram-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"latency histogram\">"
    );
    let hists: Vec<(&str, &str, &Hist)> = [
        ("publish → consume", ORANGE, consume),
        ("publish → confirm", GREEN, confirm),
    ]
    .into_iter()
    .filter(|(_, _, h)| h.count() > 0)
    .collect();
    if hists.is_empty() {
        let _ = writeln!(
            h,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no latency measured</text>\n</svg>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return;
    }
    const PER_DECADE: f64 = 4.0;
    let bin = |v: u64| ((v.max(1) as f64).log10() * PER_DECADE).floor() as i64;
    let lo = hists
        .iter()
        .flat_map(|(_, _, h)| h.buckets())
        .map(|(v, _)| bin(v))
        .min()
        .unwrap_or(0);
    let hi = hists
        .iter()
        .flat_map(|(_, _, h)| h.buckets())
        .map(|(v, _)| bin(v))
        .max()
        .unwrap_or(0);
    let n = (hi - lo + 1) as usize;
    let shares: Vec<Vec<f64>> = hists
        .iter()
        .map(|(_, _, hist)| {
            let mut counts = vec![0u64; n];
            for (v, c) in hist.buckets() {
                counts[(bin(v) - lo) as usize] += c;
            }
            counts.iter().map(|&c| c as f64 / hist.count() as f64).collect()
        })
        .collect();
    let top = nice_ceiling(shares.iter().flatten().copied().fold(0.0, f64::max) * 100.0);
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let slot = pw / n as f64;
    let bar = slot * 0.8 / hists.len() as f64;
    for i in 0..=5 {
        let v = top * f64::from(i) / 5.0;
        let yy = TOP + ph - ph * f64::from(i) / 5.0;
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>",
            LEFT + pw,
            LEFT - 6.0,
            yy + 4.0,
            compact(v)
        );
    }
    for (k, ((name, color, _), share)) in hists.iter().zip(&shares).enumerate() {
        for (i, f) in share.iter().enumerate() {
            if *f == 0.0 {
                continue;
            }
            let bh = f * 100.0 / top * ph;
            let bx = LEFT + i as f64 * slot + slot * 0.1 + k as f64 * bar;
            let from = 10f64.powf((lo + i as i64) as f64 / PER_DECADE);
            let to = 10f64.powf((lo + i as i64 + 1) as f64 / PER_DECADE);
            let _ = writeln!(
                h,
                "<rect class=\"bar\" data-name=\"{}\" x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{}: {:.2}% from {} to {}</title></rect>",
                esc(name),
                TOP + ph - bh,
                esc(name),
                f * 100.0,
                dur_us(from as u64),
                dur_us(to as u64)
            );
        }
        let ly = TOP + 14.0 + k as f64 * 18.0;
        let lx = LEFT + pw + 12.0;
        let _ = writeln!(
            h,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\" fill=\"{color}\"/><text class=\"legend\" x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
            ly - 9.0,
            lx + 20.0,
            esc(name)
        );
    }
    // x labels at each decade.
    for i in 0..n {
        let b = lo + i as i64;
        if b.rem_euclid(PER_DECADE as i64) == 0 {
            let v = 10f64.powf(b as f64 / PER_DECADE);
            let _ = writeln!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                LEFT + i as f64 * slot,
                TOP + ph + 16.0,
                esc(&dur_us(v as u64))
            );
        }
    }
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">latency (log scale)</text>",
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        LEFT + pw / 2.0,
        HEIGHT - 6.0
    );
    let _ = writeln!(
        h,
        "<text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">share of messages</text>",
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    h.push_str("</svg>\n");
}

/// 1, 2 or 5 times a power of ten, at least `v` (and above 0).
fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

/// 12, 1.5k, 20k, 1.2M.
fn compact(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{}M", trim(v / 1e6)),
        v if v >= 1e3 => format!("{}k", trim(v / 1e3)),
        v => trim(v),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::series::Percentiles;
    use super::*;

    #[test]
    fn page_is_self_contained() {
        let mut s = Summary {
            queue: "q<1>".into(),
            confirm: 10,
            ..Default::default()
        };
        let mut hist = Hist::default();
        for v in [90, 110, 1500, 20_000] {
            hist.record(v);
        }
        s.latency_us = hist.clone();
        for t in 1..=3 {
            s.points.push(Point {
                at_secs: f64::from(t),
                publish_rate: 1000.0 * f64::from(t),
                consume_latency: Percentiles::of(&hist),
                ..Default::default()
            });
        }
        let page = render(&s, "ok");
        assert!(page.contains("q&lt;1&gt;"));
        for needle in [
            "Rate over time",
            "Latency percentiles over time",
            "Latency histogram",
            "published/s",
            "consume p99",
        ] {
            assert!(page.contains(needle), "{needle}");
        }
        assert!(!page.contains("<script"));
        assert!(
            !page.contains("http://")
                || page
                    .matches("http://")
                    .all(|_| page.contains("xmlns=\"http://www.w3.org/2000/svg\""))
        );
        assert_eq!(page.matches("<svg ").count(), 3);
        assert!(page.matches("class=\"bar\"").count() >= 3);
        let empty = render(&Summary::default(), "FAILED: x");
        assert!(empty.contains("no data") && empty.contains("no latency measured"));
    }

    #[test]
    fn axis_helpers() {
        assert_eq!(
            (nice_ceiling(0.0), nice_ceiling(7.0), nice_ceiling(1200.0)),
            (1.0, 10.0, 2000.0)
        );
        assert_eq!(
            (compact(1500.0), compact(2_000_000.0), compact(12.5)),
            ("1.5k".into(), "2M".into(), "12.5".into())
        );
    }
}
