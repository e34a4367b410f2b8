//! The layers of the crate (STYLE.md, `src/lib.rs`): an import only ever points down.
//!
//! The test reads `src/`, finds every reference to a top-level module (`crate::x`,
//! `crate::{x, ..}`, `modeflow::x` in the binary, `super::x` reaching the crate root) outside
//! comments, and fails on any reference to a module that is not *before* the referring one in
//! [`ORDER`]. A total order is acyclic by construction, so this also rules out import cycles
//! between top-level modules. Domain modules (and `num`, `model`) must in addition write no
//! files and draw no progress bars outside their unit tests.

use std::path::Path;

/// Every top-level module, lowest first, grouped by layer. A module may use the modules before
/// it, never those after it.
const ORDER: &[(&str, &[&str])] = &[
    // leaves: errors, bounded reads and atomic writes, budgets, numerics, prediction beside
    // measurement
    ("leaves", &["error", "io", "budget", "num", "compare"]),
    // model files (kind-agnostic) and the text/JSON form of results
    ("model", &["model", "report"]),
    // domains: spec -> run -> outcome; no claims, no files, no progress bars
    ("domains", &["latent", "interference", "rnn", "bias"]),
    // every check; drawing only
    ("claims and plot", &["claims", "plot"]),
    // the application: progress bars, figures, the family table, sweeps, the gallery, the CLI
    (
        "application",
        &["progress", "figures", "run", "sweep", "gallery", "main"],
    ),
];

/// Modules that compute and must not write files or draw progress bars.
const PURE: &[&str] = &["num", "model", "latent", "interference", "rnn", "bias"];

/// Calls that write files or draw bars (searched outside `#[cfg(test)]`).
const EFFECTS: &[&str] = &[
    "write_atomic",
    "ensure_dir",
    "fs::write",
    "File::create",
    "create_dir",
    "indicatif",
    "progress::bar",
];

/// Position of a module in [`ORDER`] (and its layer's name).
fn rank(module: &str) -> Option<(usize, &'static str)> {
    ORDER
        .iter()
        .flat_map(|(layer, ms)| ms.iter().map(move |m| (*m, *layer)))
        .enumerate()
        .find(|(_, (m, _))| *m == module)
        .map(|(i, (_, layer))| (i, layer))
}

/// The module path of a file relative to `src/`: `rnn/train.rs` -> [rnn, train],
/// `rnn/mod.rs` -> [rnn], `main.rs` -> [main].
fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code without `//` comments (line, doc and inner doc comments).
fn strip_comments(src: &str) -> String {
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The code before the first `#[cfg(test)]` (unit tests sit at the end of each file).
fn without_tests(src: &str) -> &str {
    match src.find("#[cfg(test)]") {
        Some(i) => &src[..i],
        None => src,
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first identifier of `s` (after whitespace).
fn ident(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    &s[..end]
}

/// Top-level modules named after `prefix::` in `code` (`prefix::x` and `prefix::{x, y::z}`).
fn after_prefix(code: &str, prefix: &str) -> Vec<String> {
    let pat = format!("{prefix}::");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(&pat) {
        let at = from + i;
        from = at + pat.len();
        // a whole path segment: `crate::` but not `mycrate::`
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            out.extend(group[..end].split(',').map(ident).map(str::to_string));
        } else {
            out.push(ident(rest).to_string());
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Top-level modules reached through `super::` chains that climb to the crate root.
fn via_super(code: &str, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find("super::") {
        let at = from + i;
        if code[..at].chars().next_back().is_some_and(is_ident) {
            from = at + 7;
            continue;
        }
        let mut k = 0;
        let mut rest = &code[at..];
        while let Some(r) = rest.strip_prefix("super::") {
            k += 1;
            rest = r;
        }
        from = code.len() - rest.len();
        if k >= depth {
            let name = ident(rest);
            if rank(name).is_some() {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// The violations of one file (`rel` relative to `src/`, `src` its text).
fn violations(rel: &str, src: &str) -> Vec<String> {
    let path = module_path(rel);
    let module = path[0].as_str();
    if module == "lib" {
        // the crate root declares the modules and re-exports `Error` / `Result`
        return vec![];
    }
    let Some((own, _)) = rank(module) else {
        return vec![format!(
            "{rel}: top-level module `{module}` is not in the layer table of tests/layering.rs"
        )];
    };
    let code = strip_comments(src);
    let mut used = after_prefix(&code, "crate");
    used.extend(after_prefix(&code, "modeflow"));
    used.extend(via_super(&code, path.len()));
    let mut out = Vec::new();
    for m in used {
        if m == module || m == "Error" || m == "Result" || m == "self" {
            continue;
        }
        match rank(&m) {
            Some((r, layer)) if r > own => out.push(format!(
                "{rel}: `{module}` uses `{m}` ({layer}), which comes after it in the layers"
            )),
            _ => {}
        }
    }
    // a `tests.rs` file is a unit-test module moved out of its parent file: all of it is tests
    let is_test_file = path.last().is_some_and(|p| p == "tests");
    if PURE.contains(&module) && !is_test_file {
        let code = strip_comments(without_tests(src));
        for e in EFFECTS {
            if code.contains(e) {
                out.push(format!(
                    "{rel}: `{module}` computes only, but calls `{e}` (files and progress bars \
                     belong to the application layer)"
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every `.rs` file under `dir`, relative to `root`.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(root, &p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push(rel);
        }
    }
}

#[test]
fn no_module_imports_upward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &root, &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut bad = Vec::new();
    for rel in &files {
        let src = std::fs::read_to_string(root.join(rel)).unwrap();
        bad.extend(violations(rel, &src));
    }
    assert!(bad.is_empty(), "back-edges:\n{}", bad.join("\n"));
}

#[test]
fn every_top_level_module_is_ranked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(declared.len() >= 15, "{declared:?}");
    for m in &declared {
        assert!(rank(m).is_some(), "module `{m}` is missing from ORDER");
    }
    // and lib.rs lists them in layer order
    let ranks: Vec<usize> = declared.iter().map(|m| rank(m).unwrap().0).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1]),
        "lib.rs does not list the modules in layer order: {declared:?}"
    );
}

#[test]
fn scanner_finds_a_planted_claims_import_in_a_domain() {
    let v = violations("rnn/train.rs", "use crate::claims::Row;\nfn f() {}\n");
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("`rnn` uses `claims`"), "{v:?}");
    // grouped imports and paths in expressions
    let v = violations("bias/spec.rs", "use crate::{claims::Row, num::stats};\n");
    assert_eq!(v.len(), 1, "{v:?}");
    let v = violations(
        "latent/flow.rs",
        "fn f() { crate::interference::nonlinear::learn(); }",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    // super:: climbing to the crate root from a top-level file
    let v = violations("num/mod.rs", "use super::rnn::Network;\n");
    assert_eq!(v.len(), 1, "{v:?}");
    // the application importing a domain, a domain importing a leaf, comments: fine
    assert!(violations("run.rs", "use crate::rnn::spec;\n").is_empty());
    assert!(violations("rnn/report.rs", "use crate::compare::{Row, Verdict};\n").is_empty());
    assert!(violations("rnn/report.rs", "/// see [`crate::claims::runner`]\n").is_empty());
    assert!(violations("rnn/report.rs", "use mycrate::claims::Row;\n").is_empty());
    assert!(violations("rnn/train.rs", "mod tests { use super::*; }\n").is_empty());
    // a module the table does not know
    assert_eq!(violations("newthing.rs", "").len(), 1);
}

#[test]
fn scanner_finds_file_writes_and_bars_in_a_domain() {
    let v = violations(
        "bias/spec.rs",
        "fn f() { crate::io::write_atomic(p, b)?; }\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    let v = violations(
        "rnn/train.rs",
        "fn f() { let b = indicatif::ProgressBar::new(1); }\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    // unit tests may write scratch files; the application may write
    let test_only = "fn f() {}\n#[cfg(test)]\nmod tests { fn t() { std::fs::write(p, b); } }\n";
    assert!(violations("rnn/spec.rs", test_only).is_empty());
    // a unit-test module in its own file may write files; it may still not import upward
    let moved = "fn t() { std::fs::write(p, b); }\n";
    assert!(violations("num/ode/tests.rs", moved).is_empty());
    assert!(!violations("num/ode/tests.rs", "use crate::rnn::Network;\n").is_empty());
    assert!(violations("run.rs", "fn f() { crate::io::write_atomic(p, b); }").is_empty());
}

/// The `src/...` entries of the README's layout block.
fn readme_layout(readme: &str) -> Vec<String> {
    let Some(start) = readme.find("## Layout") else {
        return vec![];
    };
    let block = &readme[start..];
    let open = block.find("```").map_or(0, |i| i + 3);
    let close = block[open..].find("```").map_or(block.len(), |i| open + i);
    block[open..close]
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("src/"))
        .map(|w| w.trim_end_matches('/').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn readme_layout_matches_the_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let named = readme_layout(&readme);
    let mut tree: Vec<String> = std::fs::read_dir(root.join("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    tree.sort();
    for entry in &tree {
        assert!(
            named.contains(entry),
            "src/{entry} is missing from the README's layout section"
        );
    }
    for n in &named {
        assert!(
            root.join("src").join(n).exists(),
            "the README's layout names src/{n}, which does not exist"
        );
    }
    // the scanner itself
    let fake = "## Layout\n\n```\nsrc/a.rs  x   src/b/  y\n```\nsrc/c.rs\n";
    assert_eq!(readme_layout(fake), ["a.rs", "b"]);
}
