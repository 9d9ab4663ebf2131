//! `cargo xtask structure`: the server's layering rules, checked from its source.
//!
//! - no function outside test code longer than [`MAX_FN_LINES`] lines;
//! - `AppState` only at the edges (`http/`, `server.rs`): domain code takes what it uses;
//! - no cycle between top-level modules of `server/src`.
//!
//! What breaks a rule today is listed in `xtask/structure-debt.txt`; the test in this
//! module fails when something new breaks one *and* when a listed item no longer does
//! (so the list only shrinks). `--write` redraws the import graph in
//! docs/architecture.md, which the test also keeps current.
//!
//! The source is read as text, relying on rustfmt's layout (the suite checks formatting):
//! a function ends at the first line that closes a block at its own indentation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

pub const MAX_FN_LINES: usize = 80;
const DEBT_FILE: &str = "xtask/structure-debt.txt";
const GRAPH_START: &str = "<!-- structure:graph:start -->";
const GRAPH_END: &str = "<!-- structure:graph:end -->";
/// Where `AppState` may appear.
const EDGES: [&str; 3] = ["http/", "server.rs", "state.rs"];
/// Crate-root files that are not modules of the layering.
const ROOTS: [&str; 3] = ["lib", "bin", "fuzzing"];

#[derive(clap::Args)]
pub struct StructureArgs {
    /// Redraw the import graph in docs/architecture.md.
    #[arg(long)]
    write: bool,
}

/// One source file: its path under `server/src` and its non-test lines.
struct Source {
    rel: String,
    lines: Vec<String>,
}

fn server_src() -> PathBuf {
    crate::bench::workspace_root().join("server/src")
}

/// Every `.rs` file under `root` that is not test code (a `tests.rs`, or a file under a
/// `tests/` directory), with any `#[cfg(test)]` item cut off.
fn sources(root: &Path) -> anyhow::Result<Vec<Source>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if name != "tests" {
                    dirs.push(path);
                }
                continue;
            }
            if !name.ends_with(".rs") || name == "tests.rs" {
                continue;
            }
            let rel = path
                .strip_prefix(root)?
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path)?;
            out.push(Source {
                rel,
                lines: without_tests(&text),
            });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines of `text` with each `#[cfg(test)]` item blanked (kept as empty lines, so
/// line numbers stay true).
fn without_tests(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "#[cfg(test)]" {
            out.push(lines[i].to_owned());
            i += 1;
            continue;
        }
        let at = indent(lines[i]);
        let end = item_end(&lines, i + 1, at).unwrap_or(lines.len() - 1);
        out.extend(std::iter::repeat_n(String::new(), end + 1 - i));
        i = end + 1;
    }
    out
}

/// The last line of the item starting at `from` (attributes skipped) indented `at`: the
/// line itself when it ends with `;` or closes on the same line, else the first later
/// line that is `}` (or `};`) at indentation `at`.
fn item_end<S: AsRef<str>>(lines: &[S], from: usize, at: usize) -> Option<usize> {
    let mut i = from;
    while lines.get(i)?.as_ref().trim_start().starts_with("#[") {
        i += 1;
    }
    let mut j = i;
    loop {
        let l = lines.get(j)?.as_ref().trim_end();
        if l.ends_with('{') {
            break;
        }
        if l.ends_with(';') || l.ends_with('}') {
            return Some(j);
        }
        j += 1;
    }
    (j + 1..lines.len()).find(|&k| {
        let l = lines[k].as_ref();
        indent(l) == at && matches!(l.trim_end().trim_start(), "}" | "};" | "})" | "});")
    })
}

/// The name of the function a line declares, if it does.
fn fn_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    if let Some(r) = rest.strip_prefix("pub") {
        rest = match r.strip_prefix('(') {
            Some(r) => r.split_once(')')?.1,
            None => r,
        }
        .trim_start();
    }
    for qualifier in ["const ", "async ", "unsafe ", "extern \"C\" "] {
        if let Some(r) = rest.strip_prefix(qualifier) {
            rest = r.trim_start();
        }
    }
    let name = rest.strip_prefix("fn ")?;
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    Some(&name[..end])
}

/// `file:line name (N lines)` of every function longer than [`MAX_FN_LINES`].
fn long_functions(sources: &[Source]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for source in sources {
        for (i, line) in source.lines.iter().enumerate() {
            let Some(name) = fn_name(line) else { continue };
            let Some(end) = item_end(&source.lines, i, indent(line)) else {
                continue;
            };
            if end + 1 - i > MAX_FN_LINES {
                out.insert(format!("long-fn {} {name}", source.rel));
            }
        }
    }
    out
}

/// Files outside the edges that name `AppState`.
fn state_users(sources: &[Source]) -> BTreeSet<String> {
    sources
        .iter()
        .filter(|s| !EDGES.iter().any(|e| s.rel.starts_with(e)))
        .filter(|s| {
            s.lines
                .iter()
                .any(|l| !l.trim_start().starts_with("//") && l.contains("AppState"))
        })
        .map(|s| format!("app-state {}", s.rel))
        .collect()
}

/// The top-level module a file belongs to (`ciba` for `ciba/token.rs`).
fn module_of(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// Edges between top-level modules: `a -> b` when code in `a` names `crate::b`.
fn module_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources {
        let from = module_of(&source.rel);
        if ROOTS.contains(&from) {
            continue;
        }
        let node = graph.entry(from.to_owned()).or_default();
        for line in &source.lines {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for used in crate_paths(line) {
                if used != from {
                    node.insert(used.to_owned());
                }
            }
        }
    }
    graph
}

/// The first segment after each `crate::` in `line`, including inside `use crate::{a, b}`.
fn crate_paths(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or(group);
            out.extend(inner.split(',').filter_map(|p| {
                let p = p.trim();
                let end = p.find("::").unwrap_or(p.len());
                (!p.is_empty()).then(|| p[..end].trim())
            }));
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        out.push(&rest[..end]);
    }
    out
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    component.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// `cycle a -> b` for every edge inside a cycle.
fn cycle_edges(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for component in cycles(graph) {
        for from in &component {
            for to in graph.get(from).into_iter().flatten() {
                if component.contains(to) {
                    out.insert(format!("cycle {from} -> {to}"));
                }
            }
        }
    }
    out
}

/// Every rule broken now.
fn violations(sources: &[Source]) -> BTreeSet<String> {
    let graph = module_graph(sources);
    let mut all = long_functions(sources);
    all.extend(state_users(sources));
    all.extend(cycle_edges(&graph));
    all
}

/// The import graph as a Mermaid flowchart; edges inside a cycle drawn dotted.
fn mermaid(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    let in_cycle = cycle_edges(graph);
    let mut out = String::from("```mermaid\nflowchart LR\n");
    for (from, tos) in graph {
        for to in tos {
            let arrow = if in_cycle.contains(&format!("cycle {from} -> {to}")) {
                "-.->"
            } else {
                "-->"
            };
            out.push_str(&format!("  {from} {arrow} {to}\n"));
        }
    }
    out.push_str("```");
    out
}

fn graph_block(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    format!(
        "{GRAPH_START}\n<!-- drawn by `cargo xtask structure --write` from server/src -->\n{}\n{GRAPH_END}",
        mermaid(graph)
    )
}

fn read_debt() -> anyhow::Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(crate::bench::workspace_root().join(DEBT_FILE))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// New violations and listed ones that are gone, as readable lines.
fn compare(now: &BTreeSet<String>, debt: &BTreeSet<String>) -> Vec<String> {
    let new = now.difference(debt).map(|v| format!("new: {v}"));
    let gone = debt
        .difference(now)
        .map(|v| format!("mended (remove it from {DEBT_FILE}): {v}"));
    new.chain(gone).collect()
}

pub fn run(args: &StructureArgs) -> anyhow::Result<()> {
    let sources = sources(&server_src())?;
    let graph = module_graph(&sources);
    let now = violations(&sources);
    let doc = crate::bench::workspace_root().join("docs/architecture.md");
    if args.write {
        let text = std::fs::read_to_string(&doc)?;
        let block = graph_block(&graph);
        std::fs::write(
            &doc,
            crate::bench::replace_between(&text, GRAPH_START, GRAPH_END, &block),
        )?;
    }
    let counts = ["long-fn", "app-state", "cycle"]
        .map(|kind| now.iter().filter(|v| v.starts_with(kind)).count());
    println!(
        "functions over {MAX_FN_LINES} lines: {}; domain files naming AppState: {}; module edges in cycles: {}",
        counts[0], counts[1], counts[2]
    );
    let problems = compare(&now, &read_debt()?);
    for p in &problems {
        println!("{p}");
    }
    if !problems.is_empty() {
        bail!("{} structure problems", problems.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Vec<Source> {
        vec![Source {
            rel: "ciba/token.rs".into(),
            lines: without_tests(text),
        }]
    }

    #[test]
    fn the_server_breaks_no_rule_beyond_its_listed_debt() {
        let sources = sources(&server_src()).expect("server/src reads");
        let problems = compare(&violations(&sources), &read_debt().expect("debt list"));
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_architecture_doc_shows_the_current_import_graph() {
        let sources = sources(&server_src()).expect("server/src reads");
        let doc =
            std::fs::read_to_string(crate::bench::workspace_root().join("docs/architecture.md"))
                .expect("docs/architecture.md");
        assert!(
            doc.contains(&graph_block(&module_graph(&sources))),
            "the import graph changed: run `cargo xtask structure --write`"
        );
    }

    #[test]
    fn function_length_counts_from_signature_to_closing_brace() {
        let body = "    x();\n".repeat(MAX_FN_LINES - 2);
        let exact = format!("pub(crate) async fn ok() {{\n{body}}}\n");
        assert!(long_functions(&source(&exact)).is_empty());
        let over = format!("fn long(\n    a: u8,\n) {{\n{body}}}\n");
        assert_eq!(
            long_functions(&source(&over)),
            BTreeSet::from(["long-fn ciba/token.rs long".to_owned()])
        );
        let in_tests =
            format!("#[cfg(test)]\nmod tests {{\n    fn long() {{\n{body}{body}    }}\n}}\n");
        assert!(long_functions(&source(&in_tests)).is_empty());
        assert!(long_functions(&source("trait T {\n    fn f(&self);\n}\n")).is_empty());
    }

    #[test]
    fn imports_make_edges_and_cycles_are_found() {
        assert_eq!(
            crate_paths("use crate::{policy::Decision, store, audit::kinds};"),
            ["policy", "store", "audit"]
        );
        assert_eq!(
            crate_paths("let x = crate::ciba::f(crate::store::g());"),
            ["ciba", "store"]
        );
        let graph: BTreeMap<String, BTreeSet<String>> = [
            ("a", vec!["b"]),
            ("b", vec!["c"]),
            ("c", vec!["a", "d"]),
            ("d", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
        .collect();
        assert_eq!(
            cycle_edges(&graph),
            ["cycle a -> b", "cycle b -> c", "cycle c -> a"]
                .map(str::to_owned)
                .into()
        );
    }

    #[test]
    fn debt_must_shrink_and_never_grow() {
        let debt = BTreeSet::from(["long-fn a.rs f".to_owned()]);
        assert!(compare(&debt, &debt).is_empty());
        assert_eq!(compare(&BTreeSet::new(), &debt).len(), 1);
        assert_eq!(
            compare(&BTreeSet::from(["app-state b.rs".to_owned()]), &debt).len(),
            2
        );
    }
}
