//! One run's timeline as an SVG (our own few lines, no plotting crate): per client a panel of
//! successes per second per shard, errors per second as bars (red on the faulty shard, orange on
//! the healthy ones), and the fault's steps as vertical lines.

use std::fmt::Write as _;

use super::runs::{BIN, RunResult};

const W: f64 = 960.0;
const ML: f64 = 70.0;
const MR: f64 = 20.0;
const TOP: f64 = 75.0;
const PH: f64 = 160.0;
const GAP: f64 = 40.0;
const COLORS: [&str; 8] =
    ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The SVG of run `r`.
pub(crate) fn svg(r: &RunResult) -> String {
    let per_s = 1000.0 / BIN.as_millis() as f64;
    let end_s = r.end.as_secs_f64().max(0.1);
    let pw = W - ML - MR;
    let h = TOP + r.clients.len() as f64 * (PH + GAP) + 10.0;
    let ymax = r
        .clients
        .iter()
        .flat_map(|c| c.bins.iter().flatten().map(|b| f64::from(b[0].max(b[1])) * per_s))
        .fold(1.0, f64::max);
    // A round axis top.
    let mag = 10f64.powf(ymax.log10().floor());
    let ymax = (ymax / mag).ceil() * mag;
    let x = |t: f64| ML + t / end_s * pw;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{ML}" y="16" font-size="13">{}</text><text x="{ML}" y="{}" font-size="11">run {}, faulty shard {}: successful requests per second per shard (lines), errors per second (bars)</text>"#,
        esc(r.drill.title()),
        16.0 + 13.0,
        r.run + 1,
        r.faulty
    );
    let shards = r.clients.first().map_or(0, |c| c.bins.len());
    for sh in 0..shards {
        let lx = ML + sh as f64 * 110.0;
        let label = if sh == r.faulty { format!("shard {sh} (faulty)") } else { format!("shard {sh}") };
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="44" x2="{}" y2="44" stroke="{}" stroke-width="2"/><text x="{}" y="48">{label}</text>"#,
            lx + 16.0,
            COLORS[sh % COLORS.len()],
            lx + 20.0
        );
    }
    let ex = ML + shards as f64 * 110.0;
    let _ = writeln!(
        s,
        r##"<rect x="{ex}" y="39" width="10" height="10" fill="#d62728"/><text x="{}" y="48">errors, faulty shard</text><rect x="{}" y="39" width="10" height="10" fill="#ff7f0e"/><text x="{}" y="48">errors, healthy shards</text>"##,
        ex + 14.0,
        ex + 140.0,
        ex + 154.0
    );
    for (i, c) in r.clients.iter().enumerate() {
        let y0 = TOP + i as f64 * (PH + GAP);
        let y = |v: f64| y0 + PH - (v / ymax).min(1.0) * PH;
        let _ = writeln!(
            s,
            r#"<text x="{ML}" y="{}" font-size="12" font-weight="bold">{}</text>"#,
            y0 - 6.0,
            esc(c.who.name())
        );
        let _ = writeln!(
            s,
            r##"<rect x="{ML}" y="{y0}" width="{pw}" height="{PH}" fill="none" stroke="#999"/>"##
        );
        for k in 0..=4 {
            let v = ymax * f64::from(k) / 4.0;
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" text-anchor="end">{v:.0}</text><line x1="{ML}" y1="{}" x2="{}" y2="{}" stroke="#eee"/>"##,
                ML - 4.0,
                y(v) + 4.0,
                y(v),
                ML + pw,
                y(v)
            );
        }
        let step = if end_s > 20.0 { 5.0 } else { 1.0 };
        let mut t = 0.0;
        while t <= end_s {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{t:.0} s</text>"#,
                x(t),
                y0 + PH + 13.0
            );
            t += step;
        }
        // Error bars, stacked: faulty shard (red) then healthy shards (orange).
        let n = c.bins.first().map_or(0, Vec::len);
        let bw = pw * BIN.as_secs_f64() / end_s;
        for b in 0..n.min((r.end.as_micros() / BIN.as_micros()) as usize + 1) {
            let faulty = c.bins.get(r.faulty).map_or(0, |v| v[b][1]);
            let healthy: u32 =
                c.bins.iter().enumerate().filter(|(sh, _)| *sh != r.faulty).map(|(_, v)| v[b][1]).sum();
            let t = b as f64 * BIN.as_secs_f64();
            let mut base = y0 + PH;
            for (count, color) in [(faulty, "#d62728"), (healthy, "#ff7f0e")] {
                if count > 0 {
                    let hgt = (f64::from(count) * per_s / ymax).min(1.0) * PH;
                    let _ = writeln!(
                        s,
                        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{hgt:.1}" fill="{color}" opacity="0.8"/>"#,
                        x(t),
                        base - hgt,
                        bw.max(1.0)
                    );
                    base -= hgt;
                }
            }
        }
        for (sh, bins) in c.bins.iter().enumerate() {
            // Whole bins only: the last one is cut short by the end of the load.
            let whole = (r.end.as_micros() / BIN.as_micros()) as usize;
            let pts: Vec<String> = bins
                .iter()
                .take(whole)
                .enumerate()
                .map(|(b, v)| {
                    let t = (b as f64 + 0.5) * BIN.as_secs_f64();
                    format!("{:.1},{:.1}", x(t.min(end_s)), y(f64::from(v[0]) * per_s))
                })
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                COLORS[sh % COLORS.len()],
                pts.join(" ")
            );
        }
        for (k, (t, label)) in r.events.steps.iter().enumerate() {
            let tx = x(t.as_secs_f64());
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{y0}" x2="{tx:.1}" y2="{}" stroke="#444" stroke-dasharray="3,3"/>"##,
                y0 + PH
            );
            if i == 0 {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{}" fill="#444" font-size="9">{}</text>"##,
                    tx + 2.0,
                    y0 + 10.0 + (k % 4) as f64 * 10.0,
                    esc(label)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}
