//! The tidy check: rules on the source text itself, run by `cargo test`.
//!
//! - no `unwrap()`, `expect(` or `panic!(` outside tests, except a documented invariant: the
//!   call is allowed by an `#[allow(clippy::unwrap_used | expect_used)]` on one of the two
//!   lines above it, with a comment saying why on one of the four lines above;
//! - no `todo!`, `unimplemented!` or `dbg!` anywhere;
//! - no `f32` or `f64` in the money and contract modules;
//! - every module opens with a `//!` line;
//! - layers: each folder of `src/` may `use crate::` only the folders below it in [`LAYERS`],
//!   and only the binary (`src/main.rs`, `src/cli/`) names clap, anyhow or indicatif;
//! - a ratchet on function length: no function over [`MAX_FN_LINES`] lines but those in
//!   [`LONG_FUNCTIONS`], none of which may grow (and an entry that no longer needs its
//!   allowance must be removed, so the list only shrinks).
//!
//! Lines from a `#[cfg(test)]` line to the end of its file are tests (ipow keeps unit tests at
//! the end of a file; the check that this holds is part of the rules).

use std::path::{Path, PathBuf};

/// Modules that hold money, energy or contracts: no floating point at all.
const EXACT_MODULES: [&str; 7] = [
    "src/base/amount.rs",
    "src/contract/mod.rs",
    "src/ledger/mod.rs",
    "src/pipeline/settle.rs",
    "src/market/readings.rs",
    "src/market/paper.rs",
    "src/report/paper.rs",
];

/// The folders of `src/`, lowest first: each may `use crate::` only the folders before it (and
/// itself). `fuzz.rs` stands above them all; the binary (`main.rs`, `cli/`) uses the library
/// by its public paths.
const LAYERS: [&str; 14] = [
    "base",
    "crypto",
    "contract",
    "ledger",
    "grid",
    "market",
    "validate",
    "consensus",
    "cluster",
    "chain",
    "pipeline",
    "lab",
    "report",
    "fuzz",
];

/// Crates only the binary may name: argument parsing, its error type, the progress bars.
const BINARY_ONLY: [&str; 3] = ["clap", "anyhow", "indicatif"];

/// The most lines a function may take (signature to closing brace).
const MAX_FN_LINES: usize = 70;

/// Functions allowed over [`MAX_FN_LINES`] today, with their length: none may grow, and none
/// may be added. Shorten one and lower (or remove) its entry.
const LONG_FUNCTIONS: &[(&str, &str, usize)] = &[
    ("src/base/amount.rs", "parse_fixed", 72),
    ("src/chain/audit/consensus.rs", "check_consensus", 145),
    ("src/chain/audit/diagnose.rs", "diagnose_list", 114),
    ("src/chain/audit/mod.rs", "prove", 116),
    ("src/chain/mod.rs", "build_period", 100),
    ("src/chain/mod.rs", "verify_proof", 81),
    ("src/cli/market.rs", "dataset_command", 96),
    ("src/cli/market.rs", "generate_command", 72),
    ("src/cli/run.rs", "run_command", 73),
    ("src/cli/run.rs", "scenario_command", 85),
    ("src/contract/mod.rs", "fill_well_formed", 75),
    ("src/fuzz.rs", "mutate", 74),
    ("src/grid/dc.rs", "new", 83),
    ("src/lab/compare.rs", "execute", 91),
    ("src/lab/simulate.rs", "check_seed", 134),
    ("src/lab/simulate.rs", "damage_found", 104),
    ("src/lab/stress.rs", "stress_size", 98),
    ("src/ledger/mod.rs", "contract_transfers", 80),
    ("src/ledger/mod.rs", "record", 91),
    ("src/market/dataset/json.rs", "from_json", 100),
    ("src/market/dataset/reader.rs", "check_and_decode", 115),
    ("src/market/dataset/reader.rs", "read_batch", 71),
    ("src/market/dataset/reader.rs", "read_header", 142),
    ("src/market/generator.rs", "new", 113),
    ("src/market/paper.rs", "from_json", 99),
    ("src/pipeline/metrics.rs", "report", 117),
    ("src/pipeline/settle.rs", "settle_dataset", 81),
    ("src/report/mod.rs", "write", 79),
    ("src/report/paper.rs", "build", 81),
    ("src/report/paper.rs", "draw_tree", 83),
    ("src/report/paper.rs", "render_text", 90),
    ("src/report/plot.rs", "draw", 76),
    ("src/report/text.rs", "render_run", 85),
];

/// The code of a line: what comes before a `//` comment (strings holding `//` are rare enough
/// in this code base that the rule stays simple).
fn code(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// The folder of `src/` a file belongs to (`fuzz` for `src/fuzz.rs`), or `None` for the
/// binary and the crate root.
fn layer_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("src/")?;
    match rest.split_once('/') {
        Some(("cli", _)) => None,
        Some((folder, _)) => Some(folder),
        None => rest.strip_suffix(".rs").filter(|m| *m == "fuzz"),
    }
}

/// Imports that point up, or at a folder the layers do not know.
fn layer_violations(path: &str, lines: &[&str], out: &mut Vec<String>) {
    let binary = path == "src/main.rs" || path.starts_with("src/cli/");
    let layer = layer_of(path).and_then(|l| LAYERS.iter().position(|x| *x == l));
    if let (Some(folder), None) = (layer_of(path), layer) {
        out.push(format!("{path}:1: folder `{folder}` is not in the layers"));
    }
    for (n, line) in lines.iter().enumerate() {
        let c = code(line);
        if !binary {
            for name in BINARY_ONLY {
                if has_word(c, name) {
                    out.push(format!("{path}:{}: `{name}` outside the binary", n + 1));
                }
            }
        }
        let Some(own) = layer else { continue };
        for (i, _) in c.match_indices("crate::") {
            let target: String = c[i + 7..]
                .chars()
                .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
                .collect();
            match LAYERS.iter().position(|x| *x == target) {
                Some(t) if t <= own => {}
                Some(_) => out.push(format!(
                    "{path}:{}: `{}` imports `{target}`, a layer above it",
                    n + 1,
                    LAYERS[own]
                )),
                None => out.push(format!(
                    "{path}:{}: `crate::{target}` is not a folder in the layers",
                    n + 1
                )),
            }
        }
    }
}

/// Every function before the tests: (name, first line, lines from signature to closing brace).
fn functions(lines: &[&str], test_start: usize) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (n, line) in lines[..test_start].iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let sig = ["pub ", "pub(crate) ", "pub(super) ", "const ", "unsafe "]
            .iter()
            .fold(trimmed, |s, p| s.strip_prefix(p).unwrap_or(s));
        let Some(rest) = sig.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
            .collect();
        let close = format!("{indent}}}");
        let end = lines[n..test_start].iter().position(|l| {
            *l == close || (l.trim_end().ends_with(';') && !l.contains('{') && *l == *line)
        });
        if let Some(e) = end
            && !(e == 0 && line.trim_end().ends_with(';'))
        {
            out.push((name, n + 1, e + 1));
        }
    }
    out
}

/// Every rule broken in `text` (a file at `path`, relative to the crate root).
fn violations(path: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !text.starts_with("//!") {
        out.push(format!("{path}:1: a module opens with a `//!` line"));
    }
    let lines: Vec<&str> = text.lines().collect();
    let test_start = lines
        .iter()
        .position(|l| l.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len());
    if test_start < lines.len() {
        // The test module must run to the end of the file.
        let after = &lines[test_start..];
        let closes = after.iter().filter(|l| **l == "}").count();
        if closes != 1 || after.last().map(|l| l.trim()) != Some("}") {
            out.push(format!(
                "{path}:{}: a #[cfg(test)] module must be the last item of its file",
                test_start + 1
            ));
        }
    }
    layer_violations(path, &lines, &mut out);
    for (name, at, len) in functions(&lines, test_start) {
        let allowed = LONG_FUNCTIONS
            .iter()
            .find(|(p, f, _)| *p == path && *f == name)
            .map_or(MAX_FN_LINES, |e| e.2);
        if len > allowed {
            out.push(format!(
                "{path}:{at}: fn `{name}` is {len} lines, over its allowance of {allowed}"
            ));
        }
    }
    for (n, line) in lines.iter().enumerate() {
        let c = code(line);
        let at = n + 1;
        for macro_name in ["todo!", "unimplemented!", "dbg!"] {
            if c.contains(macro_name) {
                out.push(format!("{path}:{at}: `{macro_name}` left in"));
            }
        }
        if EXACT_MODULES.contains(&path) && (has_word(c, "f64") || has_word(c, "f32")) {
            out.push(format!(
                "{path}:{at}: floating point in a money or contract module"
            ));
        }
        if n >= test_start {
            continue;
        }
        for call in [".unwrap()", ".expect(", "panic!("] {
            if !c.contains(call) {
                continue;
            }
            let allowed = lines[n.saturating_sub(2)..n].iter().any(|l| {
                l.contains("#[allow(clippy::unwrap_used")
                    || l.contains("#[allow(clippy::expect_used")
                    || l.contains("clippy::panic")
            });
            let explained = lines[n.saturating_sub(4)..n].iter().any(|l| {
                let t = l.trim_start();
                t.starts_with("//") && !t.starts_with("//!")
            });
            if !(allowed && explained) {
                out.push(format!(
                    "{path}:{at}: `{call}` outside tests without an allowed, documented invariant"
                ));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_source_keeps_the_tidy_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 20, "found the sources");
    let mut broken = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        broken.extend(violations(&rel, &std::fs::read_to_string(f).unwrap()));
    }
    for module in EXACT_MODULES {
        if !root.join(module).is_file() {
            broken.push(format!("{module}: listed as an exact module but not there"));
        }
    }
    // The ratchet only tightens: an allowance its function no longer needs must go.
    for (path, name, allowed) in LONG_FUNCTIONS {
        let text = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let test_start = lines
            .iter()
            .position(|l| l.trim() == "#[cfg(test)]")
            .unwrap_or(lines.len());
        let longest = functions(&lines, test_start)
            .into_iter()
            .filter(|(f, _, _)| f == name)
            .map(|(_, _, len)| len)
            .max()
            .unwrap_or(0);
        if longest <= MAX_FN_LINES || longest < *allowed {
            broken.push(format!(
                "{path}: fn `{name}` is {longest} lines; lower its allowance of {allowed} \
                 (remove it at {MAX_FN_LINES} or less)"
            ));
        }
    }
    assert!(broken.is_empty(), "tidy:\n{}", broken.join("\n"));
}

/// A file holding one function of `lines` lines.
fn long_fn(lines: usize) -> String {
    let body = "    let _ = 1;\n".repeat(lines - 2);
    format!("//! x\nfn f() {{\n{body}}}\n")
}

#[test]
fn each_tidy_rule_catches_what_it_names() {
    let bad = [
        ("src/x.rs", "fn f() {}\n", "opens with"),
        (
            "src/x.rs",
            "//! x\nfn f() { let a = g().unwrap(); }\n",
            ".unwrap()",
        ),
        (
            "src/x.rs",
            "//! x\nfn f() { g().expect(\"y\"); }\n",
            ".expect(",
        ),
        ("src/x.rs", "//! x\nfn f() { panic!(\"no\"); }\n", "panic!("),
        (
            "src/x.rs",
            "//! x\nfn f() {\n    #[allow(clippy::expect_used)]\n    g().expect(\"y\");\n}\n",
            ".expect(",
        ),
        ("src/x.rs", "//! x\nfn f() { todo!() }\n", "todo!"),
        ("src/x.rs", "//! x\nfn f() { dbg!(1); }\n", "dbg!"),
        (
            "src/base/amount.rs",
            "//! x\nfn f(x: f64) {}\n",
            "floating point",
        ),
        (
            "src/x.rs",
            "//! x\n#[cfg(test)]\nmod tests {\n}\nfn after() {}\n",
            "last item",
        ),
        (
            "src/base/x.rs",
            "//! x\nuse crate::market::rules::Workload;\n",
            "a layer above it",
        ),
        (
            "src/validate/x.rs",
            "//! x\nfn f() { crate::pipeline::genesis(); }\n",
            "a layer above it",
        ),
        (
            "src/ledger/x.rs",
            "//! x\nuse crate::nowhere::X;\n",
            "not a folder",
        ),
        ("src/newfolder/x.rs", "//! x\n", "not in the layers"),
        (
            "src/report/x.rs",
            "//! x\nuse anyhow::Context;\n",
            "outside the binary",
        ),
        ("src/grid/x.rs", &long_fn(71), "over its allowance of 70"),
    ];
    for (path, text, expected) in bad {
        let v = violations(path, text);
        assert!(
            v.iter().any(|m| m.contains(expected)),
            "{text:?} should break {expected:?}: {v:?}"
        );
    }
    let good = [
        ("src/x.rs", "//! x\nfn f() { g().unwrap_or(1); }\n"),
        (
            "src/x.rs",
            "//! x\nfn f() {\n    // The seed is 32 bytes.\n    #[allow(clippy::expect_used)]\n    g().expect(\"y\");\n}\n",
        ),
        (
            "src/x.rs",
            "//! x\n#[cfg(test)]\nmod tests {\n    fn t() { g().unwrap(); }\n}\n",
        ),
        ("src/run.rs", "//! x\nfn f(x: f64) {}\n"),
        (
            "src/base/amount.rs",
            "//! x\n// no f64 here, in a comment\nfn f(x: i64) {}\n",
        ),
        ("src/base/amount.rs", "//! x\nfn f(x: my_f64) {}\n"),
        (
            "src/pipeline/x.rs",
            "//! x\nuse crate::market::rules::Workload;\n",
        ),
        ("src/cli/x.rs", "//! x\nuse anyhow::Context;\n"),
        ("src/grid/x.rs", &long_fn(70)),
        ("src/grid/x.rs", "//! x\ntrait T {\n    fn f(&self);\n}\n"),
    ];
    for (path, text) in good {
        assert_eq!(violations(path, text), Vec::<String>::new(), "{text:?}");
    }
}
