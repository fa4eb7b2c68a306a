//! `ipow compare`: sweeps expand as documented, the report's files add up and agree with each
//! other, the same scenario and seed give the same decisions, and the HTML renders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipow::consensus::model::dishonest_majority_probability;
use ipow::lab::compare::{Spread, theoretical_wrong_rate};
use ipow::lab::scenario::{self, SweepMode};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    crate::util::scratch(&format!("compare-{name}"))
}

fn tiny(extra: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({
        "format": "ipow-scenario/1",
        "name": "tiny-compare",
        "grid": manifest().join("datasets/grids/pglib_opf_case14_ieee.m"),
        "market": { "participants": 40, "contracts": 600, "seed": 7, "invalid": 0.1 },
        "variants": [
            { "consensus": "ipow", "validators": 16, "quorum": [3, 5], "byzantine": 0.25, "behaviour": "liar" },
            { "consensus": "pow", "difficulty": [4, 8] }
        ],
        "load": { "kind": "closed_loop" },
        "period_txs": 100,
        "repetitions": 2
    });
    if let (Some(v), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            v.insert(k.clone(), x.clone());
        }
    }
    v
}

fn parse(v: &serde_json::Value) -> Result<scenario::Scenario, String> {
    scenario::parse("s.json", &v.to_string(), Path::new(".")).map_err(|e| e.to_string())
}

#[test]
fn sweeps_expand_to_the_product_or_the_listed_pairs() {
    let sc = parse(&tiny(serde_json::json!({}))).unwrap();
    let labels: Vec<&str> = sc.cases.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "ipow q=3 n=16 f=0.25 liar",
            "ipow q=5 n=16 f=0.25 liar",
            "pow d=4",
            "pow d=8"
        ]
    );
    assert_eq!(sc.swept, ["quorum", "difficulty"]);
    assert_eq!(sc.sweep, SweepMode::Product);

    // Product over three lists of the IPOW variant and the thread counts: 2 x 2 x 2 x 2 + 2 x 2.
    let v = tiny(serde_json::json!({
        "threads": [1, 2],
        "variants": [
            { "consensus": "ipow", "validators": [16, 32], "quorum": [3, 5], "byzantine": [0.0, 0.25] },
            { "consensus": "pow", "difficulty": [4, 8] }
        ]
    }));
    let sc = parse(&v).unwrap();
    assert_eq!(sc.cases.len(), 2 * (8 + 2));
    let mut seen = std::collections::HashSet::new();
    assert!(sc.cases.iter().all(|c| seen.insert(c.label.clone())));
    assert!(
        sc.cases
            .iter()
            .any(|c| c.label == "ipow q=5 n=32 f=0.25 liar t=2")
    );

    // Pairs: the k-th of every list together; sizes of the market too.
    let v = tiny(serde_json::json!({
        "sweep": "pairs",
        "market": { "participants": 40, "contracts": [300, 600], "seed": 7 },
        "variants": [
            { "consensus": "ipow", "validators": 16, "quorum": [3, 5], "byzantine": [0.0, 0.25] },
            { "consensus": "pow", "difficulty": [4, 8] }
        ]
    }));
    let sc = parse(&v).unwrap();
    let labels: Vec<&str> = sc.cases.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "ipow q=3 n=16 m=300",
            "pow d=4 m=300",
            "ipow q=5 n=16 f=0.25 liar m=600",
            "pow d=8 m=600"
        ]
    );

    // Lists of different lengths cannot pair; the error names the record and the field.
    let v = tiny(serde_json::json!({
        "sweep": "pairs",
        "variants": [
            { "consensus": "ipow", "validators": 16, "quorum": [3, 5, 7] },
            { "consensus": "pow", "difficulty": [4, 8] }
        ]
    }));
    let err = parse(&v).unwrap_err();
    assert!(err.contains("s.json: variants[1]: difficulty"), "{err}");
    for (bad, field) in [
        (serde_json::json!({ "threads": [] }), "document: threads"),
        (serde_json::json!({ "threads": [0] }), "document: threads"),
        (
            serde_json::json!({ "variants": [{ "consensus": "ipow", "quorum": [3, 99] }] }),
            "variants[0]: parameters",
        ),
        (
            serde_json::json!({ "variants": [{ "consensus": "pow", "difficulty": [] }] }),
            "variants[0]: difficulty",
        ),
    ] {
        let err = parse(&tiny(bad)).unwrap_err();
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn the_embedded_main_job_is_the_comparison_the_issue_names() {
    let text = std::fs::read_to_string(manifest().join("datasets/scenarios/default-compare.json"))
        .unwrap();
    let sc = scenario::parse("default", &text, &manifest().join("datasets/scenarios")).unwrap();
    let ipow: Vec<_> = sc
        .cases
        .iter()
        .filter_map(|c| match &c.config.variant {
            ipow::pipeline::VariantConfig::Ipow(p) => Some(p),
            ipow::pipeline::VariantConfig::Pow(_) => None,
        })
        .collect();
    let pow = sc.cases.len() - ipow.len();
    assert_eq!((ipow.len(), pow), (2, 2), "two quorums, two difficulties");
    assert_ne!(ipow[0].quorum, ipow[1].quorum);
    for p in ipow {
        assert!((p.byzantine_fraction - 0.1).abs() < 1e-12);
        assert_eq!(p.behaviour, ipow::consensus::ipow::Behaviour::Liar);
    }
    let grid = sc.grid.unwrap();
    assert!(grid.ends_with("pglib_opf_case118_ieee.m") && grid.is_file());
    let scenario::Market::Generated(m) = &sc.market else {
        panic!("a generated market")
    };
    assert!(m.invalid_ppm > 0);
}

#[test]
fn spreads_rates_and_the_model_curve() {
    let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]);
    assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
    assert_eq!(Spread::of(&[4.0, 1.0, 9.0]).median, 4.0);
    assert_eq!(ipow::report::percent(0.02139), "2.14%");
    assert_eq!(ipow::report::percent(0.000123), "0.0123%");
    assert_eq!(ipow::report::percent(0.0), "0%");
    assert_eq!(ipow::report::duration_us(12_500), "12.50 ms");
    // With many validators and an odd quorum the model is the binomial tail.
    for f in [0.05, 0.1, 0.3] {
        let model = theoretical_wrong_rate(10_000, 5, 0, f);
        let tail = dishonest_majority_probability(5, f);
        assert!((model - tail).abs() < 1e-2 * tail, "{f}: {model} {tail}");
    }
    assert_eq!(theoretical_wrong_rate(64, 3, 4, 0.0), 0.0);
}

/// `ipow compare --scenario SCENARIO --out OUT`.
fn run_compare(scenario: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(["compare", "--scenario"])
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Runs `ipow compare` and returns the report directory.
fn compare(sc: &serde_json::Value, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, sc.to_string()).unwrap();
    let out_dir = dir.join(name);
    let out = run_compare(&path, &out_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("report written to"));
    out_dir
}

/// The rows of the Markdown table under `heading`, as cells.
fn md_table(md: &str, heading: &str) -> Vec<Vec<String>> {
    let start = md.find(heading).unwrap();
    md[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// (case, repetition) -> (outcome, verdict, reason) per transaction, from the CSV.
type Decisions = BTreeMap<(u64, u64), Vec<(String, String, String)>>;

fn decisions(csv: &str) -> Decisions {
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), ipow::report::CSV_HEADER);
    let mut out: Decisions = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 14, "{line}");
        let key = (f[0].parse().unwrap(), f[2].parse().unwrap());
        let tx: usize = f[3].parse().unwrap();
        let v = out.entry(key).or_default();
        assert_eq!(v.len(), tx, "rows in transaction order");
        v.push((f[8].to_owned(), f[9].to_owned(), f[10].to_owned()));
        // Timestamps: decided ones have decided >= submitted; committed ones are accepted.
        let submitted: u64 = f[5].parse().unwrap();
        if !f[6].is_empty() {
            assert!(f[6].parse::<u64>().unwrap() >= submitted);
        }
        assert_eq!(!f[7].is_empty(), f[8] == "accepted", "{line}");
    }
    out
}

#[test]
fn the_report_adds_up_agrees_with_itself_and_repeats_its_decisions() {
    let dir = scratch("report");
    let sc = tiny(serde_json::json!({}));
    let a = compare(&sc, &dir, "a");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["format"], ipow::report::FORMAT);
    assert!(json["setup"]["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(
        !json["setup"]["machine"]["rustc"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4 * 2);
    // Interleaved: repetition-major, cases in order.
    for (k, r) in runs.iter().enumerate() {
        assert_eq!(r["case"], k % 4);
        assert_eq!(r["repetition"], k / 4);
        let n = |f: &str| r[f].as_u64().unwrap();
        assert_eq!(
            n("accepted") + n("rejected") + n("undecided"),
            n("submitted")
        );
        assert_eq!(n("submitted"), 600);
    }
    // The Markdown's results table is the JSON's rows.
    let md = std::fs::read_to_string(a.join("report.md")).unwrap();
    let table = md_table(&md, "## Results per run");
    assert_eq!(table.len(), runs.len());
    for (cells, r) in table.iter().zip(runs) {
        assert_eq!(cells[0], r["label"].as_str().unwrap());
        for (i, f) in [
            (2, "submitted"),
            (3, "accepted"),
            (4, "rejected"),
            (5, "undecided"),
        ] {
            assert_eq!(cells[i], r[f].to_string(), "{f}");
        }
        assert_eq!(
            cells[7],
            format!("{:.0}", r["throughput_per_s"].as_f64().unwrap())
        );
        assert_eq!(
            cells[10],
            ipow::report::duration_us(r["latency_p99_us"].as_u64().unwrap())
        );
        assert_eq!(
            cells[14],
            format!(
                "{} ({}, {})",
                r["signature_batches"], r["bisection_tests"], r["single_checks"]
            )
        );
        assert!(cells[16].starts_with(&format!(
            "{} / {} (",
            r["wrong_accepts"], r["honest_invalid"]
        )));
    }
    let ratios = md_table(&md, "## Against the baseline");
    assert_eq!(ratios.len(), 4);
    assert!(ratios[0][2].starts_with("1.000 [1.000, 1.000]"));
    // The CSV's outcomes tally to the same counts, transaction by transaction.
    let csv = std::fs::read_to_string(a.join("transactions.csv")).unwrap();
    let dec = decisions(&csv);
    assert_eq!(dec.len(), runs.len());
    for r in runs {
        let key = (
            r["case"].as_u64().unwrap(),
            r["repetition"].as_u64().unwrap(),
        );
        let rows = &dec[&key];
        assert_eq!(rows.len() as u64, r["submitted"].as_u64().unwrap());
        for (outcome, field) in [
            ("accepted", "accepted"),
            ("rejected", "rejected"),
            ("undecided", "undecided"),
        ] {
            let n = rows.iter().filter(|d| d.0 == outcome).count() as u64;
            assert_eq!(n, r[field].as_u64().unwrap(), "{key:?} {field}");
        }
    }
    // Closed loop: the same decisions in every repetition of a case, and the liars made some
    // wrong ones (the comparison measures something).
    for case in 0..4 {
        assert_eq!(dec[&(case, 0)], dec[&(case, 1)], "case {case}");
    }
    assert!(
        runs[0]["wrong_accepts"].as_u64().unwrap() + runs[0]["wrong_rejects"].as_u64().unwrap() > 0
    );
    // Plots: drawn for what the scenario varies, said absent otherwise.
    for f in [
        "cases.svg",
        "vs-quorum.svg",
        "vs-difficulty.svg",
        "wrong-accepts-vs-byzantine.svg",
        "latency-cdf.svg",
    ] {
        let svg = std::fs::read_to_string(a.join("plots").join(f)).unwrap();
        assert!(
            svg.starts_with("<svg") && (svg.contains("<polyline") || svg.contains("<path")),
            "{f}"
        );
    }
    assert!(!a.join("plots/vs-validators.svg").exists());
    assert!(md.contains("not drawn, the scenario does not vary validators"));
    // One colour per case: every marker of the sweeps and of the wrong-accept plot has the
    // colour of some case in the cases chart, and the quorum sweep shows each of its cases'.
    let fills = |f: &str| -> Vec<String> {
        let svg = std::fs::read_to_string(a.join("plots").join(f)).unwrap();
        svg.match_indices("<circle")
            .filter_map(|(at, _)| {
                let tag = &svg[at..at + svg[at..].find('>').unwrap()];
                let fill = tag.split(" fill=\"").nth(1)?.split('"').next()?;
                (fill != "none").then(|| fill.to_owned())
            })
            .collect()
    };
    let case_colours: std::collections::HashSet<String> = fills("cases.svg").into_iter().collect();
    assert!(case_colours.len() >= 4, "{case_colours:?}");
    for f in [
        "vs-quorum.svg",
        "vs-difficulty.svg",
        "wrong-accepts-vs-byzantine.svg",
    ] {
        let marks = fills(f);
        assert!(!marks.is_empty(), "{f}");
        assert!(
            marks.iter().all(|c| case_colours.contains(c)),
            "{f}: {marks:?} {case_colours:?}"
        );
    }
    assert!(
        fills("vs-quorum.svg")
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            >= 2
    );
    // In the page, each panel is its own SVG at its own width (a narrow window wraps panels
    // rather than shrinking them): 3 + 2 + 2 + 2 + 1 panels in 5 figures.
    let html = std::fs::read_to_string(a.join("report.html")).unwrap();
    assert_eq!(html.matches("<div class=\"panels\">").count(), 5);
    assert_eq!(html.matches("<svg").count(), 10);
    assert_eq!(html.matches("<svg width=\"560\"").count(), 10);
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));

    // A second process with the same scenario and seed: the same decisions everywhere.
    let b = compare(&sc, &dir, "b");
    let csv_b = std::fs::read_to_string(b.join("transactions.csv")).unwrap();
    assert_eq!(decisions(&csv_b), dec);
    let json_b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("summary.json")).unwrap()).unwrap();
    for (x, y) in runs.iter().zip(json_b["runs"].as_array().unwrap()) {
        for f in [
            "accepted",
            "rejected",
            "undecided",
            "curtailed",
            "wrong_accepts",
            "wrong_rejects",
            "validations",
        ] {
            assert_eq!(x[f], y[f], "{f}");
        }
    }

    // Rewriting a report replaces it whole; a directory holding anything else is refused.
    let again = compare(&sc, &dir, "a");
    assert!(again.join("summary.json").is_file());
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let out = run_compare(&dir.join("a.json"), &foreign);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("foreign") && err.contains("other than an ipow report"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(!foreign.join("summary.json").exists());

    render_in_chromium(&a.join("report.html"), &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Renders the HTML in headless Chromium and checks the screenshot shows a page with content:
/// many non-white pixels and the plot colours. Skips, saying so, when Chromium is absent
/// (`.ci/run` installs it).
fn render_in_chromium(html: &Path, dir: &Path) {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("SKIPPED: headless Chromium render of report.html: no chromium on this machine");
        return;
    };
    let shot = dir.join("shot.png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,2400",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium-profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&shot).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.line_size / info.width as usize;
    assert!(channels >= 3);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let non_white = pixels
        .iter()
        .filter(|p| p[0] < 200 || p[1] < 200 || p[2] < 200)
        .count();
    let colours: std::collections::HashSet<[u8; 3]> = pixels
        .iter()
        .map(|p| [p[0] / 32, p[1] / 32, p[2] / 32])
        .collect();
    assert!(
        non_white * 100 > pixels.len(),
        "the page is blank: {non_white} of {} pixels not white",
        pixels.len()
    );
    assert!(
        colours.len() >= 8,
        "{} colours: no plots drawn",
        colours.len()
    );
}

/// One vocabulary: every term of the report's Definitions is in README's Glossary with the same
/// text, and the words the terminal prints for a grid run (scheme, cut, curtailed, O1 context)
/// are among them.
#[test]
fn the_glossary_defines_every_term_the_reports_use() {
    let readme = std::fs::read_to_string(manifest().join("README.md")).unwrap();
    let glossary = readme
        .split("## Glossary")
        .nth(1)
        .and_then(|g| g.split("\n## ").next())
        .unwrap();
    for d in ipow::report::DEFINITIONS {
        assert!(glossary.contains(d), "README's Glossary lacks {d:?}");
    }
    for term in [
        "**scheme**",
        "**cut**",
        "**curtailed**",
        "**residual**",
        "O1 context",
        "**loss compensation**",
        "**P(dishonest majority in a quorum)**",
        "**wrong accepts**",
        "**O1-O4, W1-W2**",
    ] {
        assert!(
            ipow::report::DEFINITIONS.iter().any(|d| d.contains(term)),
            "{term} is not defined"
        );
    }
}

/// The example scenario runs, uses every field `datasets/scenarios/README.md` documents, and
/// every field it uses is documented there; the example trades file gives flows on case14.
#[test]
fn the_example_scenario_and_trades_file_are_documented_and_run() {
    let dir = manifest().join("datasets");
    let example = dir.join("scenarios/example.json");
    let sc = scenario::load(&example).unwrap();
    assert_eq!(sc.cases.len(), 3, "quorum 3 and 5, and PoW");
    let readme = std::fs::read_to_string(dir.join("scenarios/README.md")).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&example).unwrap()).unwrap();
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.extend(v["market"].as_object().unwrap().keys().cloned());
    for variant in v["variants"].as_array().unwrap() {
        keys.extend(variant.as_object().unwrap().keys().cloned());
    }
    let documented: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next().map(str::to_owned))
        .collect();
    for k in keys.iter().filter(|k| *k != "consensus") {
        assert!(documented.contains(k), "{k} is used but not documented");
    }
    for d in documented.iter().filter(|d| *d != "stress") {
        assert!(
            keys.contains(d),
            "{d} is documented but the example does not use it"
        );
    }
    let out = crate::util::ipow(&[
        "grid",
        "flows",
        "--grid",
        dir.join("grids/pglib_opf_case14_ieee.m").to_str().unwrap(),
        "--trades",
        dir.join("trades/case14-example.json").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The terminal names figures as the report's columns do: throughput is committed tx/s, CPU
/// time is per committed transaction.
#[test]
fn the_terminal_and_the_report_name_figures_alike() {
    let columns = ipow::report::RUN_COLUMNS;
    assert!(columns.contains(&"throughput (tx/s)"));
    assert!(columns.contains(&"CPU-us / committed"));
    let run = crate::util::ipow(&["run", "--contracts", "300"]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("throughput    ") && text.contains("committed tx/s"),
        "{text}"
    );
    assert!(text.contains("CPU-us / committed"), "{text}");
    let stress = crate::util::ipow(&["stress", "--sizes", "1000", "--threads", "2"]);
    let text = String::from_utf8_lossy(&stress.stdout);
    assert!(text.contains("throughput is committed tx/s"), "{text}");
    assert!(text.contains(" contracts/s throughput "), "{text}");
    assert!(!text.contains("commit/s"), "{text}");
}
