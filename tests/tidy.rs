//! The tidy check: rules on the source text itself, run by `cargo test`.
//!
//! - no `unwrap()`, `expect(` or `panic!(` outside tests, except a documented invariant: the
//!   call is allowed by an `#[allow(clippy::unwrap_used | expect_used)]` on one of the two
//!   lines above it, with a comment saying why on one of the four lines above;
//! - no `todo!`, `unimplemented!` or `dbg!` anywhere;
//! - no `f32` or `f64` in the money and contract modules;
//! - every module opens with a `//!` line.
//!
//! Lines from a `#[cfg(test)]` line to the end of its file are tests (ipow keeps unit tests at
//! the end of a file; the check that this holds is part of the rules).

use std::path::{Path, PathBuf};

/// Modules that hold money, energy or contracts: no floating point at all.
const EXACT_MODULES: [&str; 6] = [
    "src/amount.rs",
    "src/contract.rs",
    "src/settle.rs",
    "src/settlement.rs",
    "src/readings.rs",
    "src/paper.rs",
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
    assert!(broken.is_empty(), "tidy:\n{}", broken.join("\n"));
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
            "src/amount.rs",
            "//! x\nfn f(x: f64) {}\n",
            "floating point",
        ),
        (
            "src/x.rs",
            "//! x\n#[cfg(test)]\nmod tests {\n}\nfn after() {}\n",
            "last item",
        ),
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
            "src/amount.rs",
            "//! x\n// no f64 here, in a comment\nfn f(x: i64) {}\n",
        ),
        ("src/amount.rs", "//! x\nfn f(x: my_f64) {}\n"),
    ];
    for (path, text) in good {
        assert_eq!(violations(path, text), Vec::<String>::new(), "{text:?}");
    }
}
