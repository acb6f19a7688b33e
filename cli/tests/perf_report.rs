//! `warren perf`'s outputs (`--time-series`, `--report`) and presets (`--scenario`)
//! against the real broker. The HTML report is opened in headless Chromium, which must
//! be installed (`scripts/test-deps.sh` installs it): without it these tests fail.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Json, check_clean, num, perf_json, text};

/// A fresh directory for one test's files.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warren-perf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn time_series_has_one_object_per_second() {
    let dir = temp_dir("series");
    let file = dir.join("series.jsonl");
    let obj = perf_json(&["--rate", "500", "-z", "2.5", "--time-series", file.to_str().unwrap()]);
    check_clean(&obj, num(&obj, "published"));
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert!(lines.len() >= 2, "{} points in a 2.5 s run", lines.len());
    let mut last_t = 0.0;
    for line in &lines {
        let Ok(Json::Object(p)) = Json::parse(line) else {
            panic!("not a JSON object: {line}")
        };
        for key in [
            "publish_rate",
            "confirm_rate",
            "consume_rate",
            "unconfirmed",
            "latency_count",
        ] {
            assert!(num(&p, key) >= 0.0, "{key} in {line}");
        }
        for prefix in ["latency", "confirm_latency"] {
            let v: Vec<f64> = ["p50", "p75", "p95", "p99", "p999", "max"]
                .iter()
                .map(|q| num(&p, &format!("{prefix}_{q}_us")))
                .collect();
            assert!(v.windows(2).all(|w| w[0] <= w[1]), "{line}");
        }
        assert!(num(&p, "rss_mib") > 0.0 && num(&p, "cpu_percent") >= 0.0, "{line}");
        assert!(num(&p, "t") > last_t);
        last_t = num(&p, "t");
    }
    let first = match Json::parse(&lines[0]) {
        Ok(Json::Object(p)) => p,
        _ => unreachable!(),
    };
    assert!(num(&first, "publish_rate") > 0.0 && num(&first, "latency_count") > 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What Chromium shows of `page`: the visible text and, per chart, its drawn size, its
/// lines and bars, and its visible labels (measured after layout by a script in a page
/// that frames the report; the report itself has no script).
fn rendered(dir: &Path, page: &Path) -> BTreeMap<String, Json> {
    let probe = dir.join("probe.html");
    std::fs::write(
        &probe,
        format!(
            r#"<!DOCTYPE html><html><body>
<iframe id="f" src="{}" width="1000" height="4000"></iframe>
<pre id="out">not measured</pre>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const d = document.getElementById('f').contentDocument;
  const visible = (e) => {{ const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; }};
  // A flat line has no height and is still seen.
  const drawn = (e) => {{ const r = e.getBoundingClientRect(); return r.width > 0 || r.height > 0; }};
  const out = {{
    text: d.body.innerText,
    charts: [...d.querySelectorAll('svg')].map((s) => ({{
      id: s.id,
      width: s.getBoundingClientRect().width,
      height: s.getBoundingClientRect().height,
      lines: [...s.querySelectorAll('polyline')].filter(drawn).map((p) => ({{ name: p.dataset.name, points: p.points.numberOfItems }})),
      bars: [...s.querySelectorAll('rect.bar')].filter(visible).length,
      labels: [...s.querySelectorAll('text')].filter(visible).map((t) => t.textContent),
    }})),
  }};
  document.getElementById('out').textContent = JSON.stringify(out);
}});
</script></body></html>"#,
            page.file_name().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let chromium = std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
        .expect(
            "headless Chromium is needed to check the HTML report: run scripts/test-deps.sh (apt-get install chromium)",
        );
    let profile = dir.join("profile");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", probe.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"out\">").expect("the probe page was dumped") + "<pre id=\"out\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    match Json::parse(&json) {
        Ok(Json::Object(o)) => o,
        other => panic!(
            "chromium did not measure the page: {other:?}\n{json}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn list<'a>(obj: &'a BTreeMap<String, Json>, key: &str) -> &'a [Json] {
    match obj.get(key) {
        Some(Json::Array(a)) => a,
        other => panic!("{key}: expected an array, found {other:?}"),
    }
}

fn object(v: &Json) -> &BTreeMap<String, Json> {
    match v {
        Json::Object(o) => o,
        other => panic!("expected an object, found {other:?}"),
    }
}

#[test]
fn html_report_renders_in_a_browser() {
    let dir = temp_dir("report");
    let page = dir.join("report.html");
    let obj = perf_json(&["--rate", "400", "-z", "2.5", "--report", page.to_str().unwrap()]);
    check_clean(&obj, num(&obj, "published"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "the report runs no script");
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "the report loads nothing"
    );

    let shown = rendered(&dir, &page);
    let text = text(&shown, "text");
    for needle in [
        "warren perf",
        "Result: ok",
        "Rate over time",
        "Latency percentiles over time",
        "Latency histogram",
        "publish → consume",
        "publish → confirm",
    ] {
        assert!(text.contains(needle), "{needle:?} is not on the page:\n{text}");
    }
    assert!(
        text.contains(&format!("published\t{}", num(&obj, "published"))),
        "{text}"
    );
    assert!(text.contains("lost\t0") && text.contains("duplicates\t0"), "{text}");

    let charts: Vec<&BTreeMap<String, Json>> = list(&shown, "charts").iter().map(object).collect();
    let ids: Vec<&str> = charts.iter().map(|c| common::text(c, "id")).collect();
    assert_eq!(ids, ["rate-chart", "latency-chart", "histogram-chart"]);
    for c in &charts {
        assert!(num(c, "width") >= 800.0 && num(c, "height") >= 250.0, "{c:?}");
        let labels: Vec<&Json> = list(c, "labels").iter().collect();
        assert!(labels.len() >= 5, "axis labels drawn: {labels:?}");
    }
    let lines = |c: &BTreeMap<String, Json>| -> Vec<(String, f64)> {
        list(c, "lines")
            .iter()
            .map(object)
            .map(|l| (common::text(l, "name").to_string(), num(l, "points")))
            .collect()
    };
    let rates = lines(charts[0]);
    let names: Vec<&str> = rates.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["published/s", "confirmed/s", "consumed/s"]);
    assert!(rates.iter().all(|(_, n)| *n >= 2.0), "one point per second: {rates:?}");
    let latency = lines(charts[1]);
    for name in ["consume p50", "consume p99", "confirm p50"] {
        assert!(latency.iter().any(|(n, _)| n == name), "{name} in {latency:?}");
    }
    assert!(num(charts[2], "bars") >= 2.0, "histogram bars drawn: {:?}", charts[2]);
    let legend: Vec<&Json> = list(charts[2], "labels").iter().collect();
    assert!(
        legend.contains(&&Json::String("publish → consume".into())),
        "{legend:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn scenarios_run_short() {
    // Every preset, one second (or a few thousand messages) each; the 1 000-queue one is
    // run by hand (see the README), its setup alone takes seconds.
    for (scenario, extra) in [
        ("flat-out", &["-z", "1"][..]),
        ("growing-queue", &["-z", "1"]),
        ("drain", &["-C", "3000"]),
        ("latency", &["-z", "1"]),
        ("fanout", &["-z", "1"]),
        ("one-unconfirmed", &["-z", "1"]),
        ("backlog-consumers", &["-C", "3000"]),
        ("multi-ack", &["-z", "1"]),
        ("nack-requeue", &["-z", "1"]),
    ] {
        let mut args = vec!["--scenario", scenario];
        args.extend(extra);
        let obj = perf_json(&args);
        assert_eq!(common::text(&obj, "scenario"), scenario);
        assert_eq!((num(&obj, "lost"), num(&obj, "duplicates")), (0.0, 0.0), "{scenario}");
        assert!(num(&obj, "published") > 0.0, "{scenario}");
        match scenario {
            "growing-queue" => assert_eq!(num(&obj, "left_in_queues"), num(&obj, "published")),
            "fanout" => assert_eq!(num(&obj, "consumed"), 10.0 * num(&obj, "published")),
            "nack-requeue" => assert!(num(&obj, "consumer_nacks") > 0.0),
            "one-unconfirmed" => assert_eq!(num(&obj, "confirm_window"), 1.0),
            _ => check_clean(&obj, num(&obj, "published")),
        }
    }
}
