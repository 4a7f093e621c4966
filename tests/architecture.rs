//! The module tree, checked against the source: `docs/architecture.md`
//! lists the layers and the dependencies between the crate's modules; this
//! test computes the dependencies from `src/` and checks that
//!
//! * they have no cycle,
//! * they are the list written in the document (so it cannot go stale),
//! * no module uses one of a higher layer than its own,
//! * no source file is longer than 600 lines (`src/fuzz.rs` excepted: it is
//!   leaving the crate, and may already be gone).
//!
//! A node is a top-level module: `src/NAME.rs` or `src/NAME/`. An edge
//! from `a` to `b` is a path `crate::b…` (or `super::…` reaching `b` from
//! the top of `a`) in code of `a`, outside comments and strings; a path
//! `crate::Name` through one of `lib.rs`'s re-exports counts as a path to
//! the module it re-exports from. `lib.rs` (the root, which declares every
//! module) and `fuzz.rs` are not nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Dependencies: module → the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

const MAX_LINES: usize = 600;
/// Not a node, and no limit on its length: it is leaving the crate.
const LEAVING: &str = "fuzz";
const GRAPH_BEGIN: &str = "<!-- BEGIN MODULE GRAPH -->";
const GRAPH_END: &str = "<!-- END MODULE GRAPH -->";
const LAYERS_BEGIN: &str = "<!-- BEGIN LAYERS -->";
const LAYERS_END: &str = "<!-- END LAYERS -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
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

/// `code` with comments (doc comments included), string literals and
/// character literals blanked out, so that only paths in code remain.
fn strip(code: &str) -> String {
    let c: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] == '/' && at(&c, i + 1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && at(&c, i + 1) == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(&c, i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(&c, i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c[i] == 'r'
            && (at(&c, i + 1) == Some('"') || at(&c, i + 1) == Some('#'))
            && !ident_before(&c, i)
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && at(&c, i + 1) == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{..}'.
            i += 2;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c[i] == '\'' && at(&c, i + 2) == Some('\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The character at `j`, if any.
fn at(c: &[char], j: usize) -> Option<char> {
    c.get(j).copied()
}

fn ident_before(c: &[char], i: usize) -> bool {
    i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
}

/// The module path of a file under `src/`: `src/a.rs` and `src/a/mod.rs`
/// are `[a]`, `src/a/b.rs` is `[a, b]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("a file under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs").to_string();
    if stem != "mod" && stem != "lib" {
        parts.push(stem);
    }
    parts
}

/// The first segment of each path a `use` group names: `{a::b, c, self}`
/// gives `a`, `c`.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item = String::new();
    for ch in group.chars().chain([',']) {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth == 0 {
            let head: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !head.is_empty() && head != "self" {
                heads.push(head);
            }
            item.clear();
        } else {
            item.push(ch);
        }
    }
    heads
}

/// After a path prefix ending at byte `at` (just past `::`), the names it
/// reaches: one identifier, or the heads of a `{…}` group.
fn names_at(code: &str, at: usize) -> Vec<String> {
    let rest = code[at..].trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let end = group
            .char_indices()
            .find(|&(_, ch)| {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(group.len(), |(k, _)| k);
        group_heads(&group[..end])
    } else {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        vec![name]
    }
}

/// The paths of `code` that leave its module: each `crate::` path, and
/// each `super::` path climbing to the crate root (from a file at
/// `module`), as the name that follows the root.
fn root_paths(code: &str, module: &[String]) -> Vec<String> {
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let word_start = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b'$';
        if word_start
            && code[i..].starts_with("crate")
            && !code[i + 5..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            let after = code[i + 5..].trim_start();
            if let Some(rest) = after.strip_prefix("::") {
                let at = code.len() - rest.len();
                out.extend(names_at(code, at));
            }
            i += 5;
        } else if word_start
            && code[i..].starts_with("super")
            && !code[i + 5..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            // Count the chain super::super::…
            let mut j = i;
            let mut ups = 0;
            loop {
                let rest = &code[j..];
                let Some(r) = rest.strip_prefix("super") else {
                    break;
                };
                let Some(r) = r.trim_start().strip_prefix("::") else {
                    break;
                };
                ups += 1;
                j = code.len() - r.trim_start().len();
            }
            if ups == 0 {
                i += 5;
                continue;
            }
            assert!(
                ups <= module.len(),
                "a `super::` path climbs above the crate root in module {module:?}"
            );
            if ups == module.len() {
                out.extend(names_at(code, j));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The top-level modules `lib.rs` declares, and where each name it
/// re-exports comes from (`pub use a::{X, Y}` → `X`: `a`).
fn root_items(lib: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let lib = strip(lib);
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for stmt in lib.split(';') {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        let Some(pos) = words.iter().position(|w| *w == "mod" || *w == "use") else {
            continue;
        };
        let body = words[pos + 1..].join(" ");
        if words[pos] == "mod" {
            modules.insert(body.trim().to_string());
            continue;
        }
        let Some((module, names)) = body.split_once("::") else {
            continue;
        };
        let names = names.trim();
        let names = names
            .strip_prefix('{')
            .and_then(|n| n.strip_suffix('}'))
            .unwrap_or(names);
        for full in names.split(',') {
            if let Some(last) = full.trim().rsplit("::").next() {
                let last = last.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_'));
                if !last.is_empty() {
                    reexports.insert(last.to_string(), module.trim().to_string());
                }
            }
        }
    }
    modules.remove(LEAVING);
    (modules, reexports)
}

/// The dependency graph of the modules under `src`, and the length in
/// lines of each file.
fn compute(src: &Path) -> (Graph, BTreeMap<PathBuf, usize>) {
    let lib = fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let (modules, reexports) = root_items(&lib);
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    let mut lengths = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    for file in files {
        let text = fs::read_to_string(&file).expect("read a source file");
        lengths.insert(file.clone(), text.lines().count());
        let module = module_path(src, &file);
        let Some(node) = module.first() else {
            continue; // lib.rs
        };
        if node == LEAVING {
            continue;
        }
        assert!(
            modules.contains(node),
            "{} is not in a module lib.rs declares",
            file.display()
        );
        for name in root_paths(&strip(&text), &module) {
            let target = if modules.contains(&name) {
                name
            } else if let Some(m) = reexports.get(&name) {
                m.clone()
            } else {
                panic!(
                    "{}: `crate::{name}` names neither a module nor a re-export of lib.rs",
                    file.display()
                );
            };
            if target != *node && target != LEAVING {
                graph.entry(node.clone()).or_default().insert(target);
            }
        }
    }
    (graph, lengths)
}

/// A cycle of `graph`, if it has one (as the modules along it).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        n: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(n.to_string(), Mark::OnPath);
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match marks.get(m).copied().unwrap_or(Mark::New) {
                Mark::OnPath => {
                    let start = path.iter().position(|p| p == m).expect("on the path");
                    let mut cycle = path[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(m, graph, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in graph.keys() {
        if marks.get(n).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(c) = visit(n, graph, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// The lines between two markers of the document.
fn block<'a>(doc: &'a str, begin: &str, end: &str) -> Vec<&'a str> {
    let start = doc
        .find(begin)
        .unwrap_or_else(|| panic!("docs/architecture.md has no `{begin}`"));
    let stop = doc
        .find(end)
        .unwrap_or_else(|| panic!("docs/architecture.md has no `{end}`"));
    doc[start + begin.len()..stop]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("```"))
        .collect()
}

/// The graph as written: `a -> b, c` per line, `a -> nothing` for a module
/// that uses none.
fn documented_graph(doc: &str) -> Graph {
    block(doc, GRAPH_BEGIN, GRAPH_END)
        .into_iter()
        .map(|line| {
            let (from, to) = line
                .split_once("->")
                .unwrap_or_else(|| panic!("not `a -> b, c`: {line}"));
            let to = to.trim();
            let deps = if to == "nothing" {
                BTreeSet::new()
            } else {
                to.split(',').map(|t| t.trim().to_string()).collect()
            };
            (from.trim().to_string(), deps)
        })
        .collect()
}

/// The layers as written, `N. title: a, b, c`: module → N.
fn documented_layers(doc: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    for line in block(doc, LAYERS_BEGIN, LAYERS_END) {
        let (n, rest) = line
            .split_once('.')
            .unwrap_or_else(|| panic!("not `N. title: modules`: {line}"));
        let n: u32 = n.trim().parse().expect("a layer number");
        let (_, modules) = rest
            .split_once(':')
            .unwrap_or_else(|| panic!("not `N. title: modules`: {line}"));
        for m in modules.split(',') {
            let old = layers.insert(m.trim().to_string(), n);
            assert!(old.is_none(), "{} is in two layers", m.trim());
        }
    }
    layers
}

fn render(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(from, to)| {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            let to = if to.is_empty() {
                "nothing".to_string()
            } else {
                to.join(", ")
            };
            format!("{from} -> {to}\n")
        })
        .collect()
}

fn doc() -> String {
    fs::read_to_string(root().join("docs/architecture.md")).expect("read docs/architecture.md")
}

#[test]
fn module_graph_has_no_cycle() {
    let (graph, _) = compute(&root().join("src"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the modules depend on each other in a cycle: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn module_graph_is_the_one_documented() {
    let (graph, _) = compute(&root().join("src"));
    let written = documented_graph(&doc());
    assert!(
        written == graph,
        "docs/architecture.md's module graph is stale; the source has:\n{}",
        render(&graph)
    );
}

#[test]
fn no_module_uses_a_higher_layer() {
    let (graph, _) = compute(&root().join("src"));
    let layers = documented_layers(&doc());
    let nodes: BTreeSet<&String> = graph.keys().collect();
    let placed: BTreeSet<&String> = layers.keys().collect();
    assert_eq!(
        nodes, placed,
        "docs/architecture.md's layers must place every module once"
    );
    let mut up = Vec::new();
    for (from, to) in &graph {
        for t in to {
            if layers[t] > layers[from] {
                up.push(format!(
                    "{from} (layer {}) uses {t} (layer {})",
                    layers[from], layers[t]
                ));
            }
        }
    }
    assert!(up.is_empty(), "edges up the layers:\n  {}", up.join("\n  "));
}

#[test]
fn no_source_file_is_over_600_lines() {
    let (_, lengths) = compute(&root().join("src"));
    let long: Vec<String> = lengths
        .iter()
        .filter(|(f, n)| **n > MAX_LINES && f.file_stem().is_none_or(|s| s != LEAVING))
        .map(|(f, n)| format!("{} ({n} lines)", f.display()))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines: {}",
        long.join(", ")
    );
}

/// The checks themselves can fail: a back-edge makes a cycle, and a path in
/// a comment or a string is not an edge.
#[test]
fn the_checks_catch_a_back_edge() {
    let (mut graph, _) = compute(&root().join("src"));
    assert_eq!(find_cycle(&graph), None);
    // future uses loop_core; a path back from loop_core closes a cycle.
    assert!(graph["future"].contains("loop_core"));
    graph
        .get_mut("loop_core")
        .expect("a loop_core module")
        .insert("future".into());
    let cycle = find_cycle(&graph).expect("a cycle");
    assert!(cycle.contains(&"future".to_string()) && cycle.contains(&"loop_core".to_string()));

    let code = strip(
        "// crate::a::X\n/// [`Y`](crate::b)\nlet s = \"crate::c\";\nlet r = r#\"crate::d\"#;\n\
         let q = '\"'; use crate::{e::F, g};\nuse super::h::I;",
    );
    assert_eq!(root_paths(&code, &["m".to_string()]), ["e", "g", "h"]);
    assert_eq!(
        root_paths(&code, &["m".to_string(), "n".to_string()]),
        ["e", "g"]
    );
}
