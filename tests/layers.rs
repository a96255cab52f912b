//! The layers point one way: `main → app → daemon/scan → collect | rules | export → model`.
//!
//! This test reads every `src/**/*.rs`, collects its `crate::…`, `super::…` and `self::…`
//! paths (in `use` lines and inside functions alike; comments, string literals and
//! `#[cfg(test)] mod …` blocks, which may reach anywhere, left out), and builds two graphs:
//! one between the top-level modules (`src/<x>.rs` or `src/<x>/`) and one between the files
//! of `src/export/`. It fails on any cycle in either, printing the cycle with the file and
//! line of each import that makes it. It also checks that the model modules import nothing
//! but the model.
//!
//! Pure std, no I/O beyond reading the sources: the parser and the cycle finder have unit
//! tests below on hand-made sources and graphs, so the check is shown to be able to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The model: the data every layer shares. These import nothing but each other.
const MODEL: &[&str] = &["snapshot", "finding", "values", "input"];

/// Directories whose files must not import each other in a cycle either.
const FILE_LEVEL_DIRS: &[&str] = &["export"];

/// Where an import was seen: the file and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Site {
    file: String,
    line: usize,
}

/// A directed graph from module to module, each edge with the places that make it.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Site>>>;

/// Replaces comments, string literals and char literals with spaces (keeping newlines), so
/// that only code is left and line numbers still hold.
fn blank_non_code(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, bytes: &[u8]| {
        for &c in bytes {
            out.push(if c == b'\n' { b'\n' } else { b' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            // Block comments nest in Rust.
            let mut depth = 0;
            let mut j = 0;
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if let Some(len) = raw_string_len(rest, i > 0 && is_ident(b[i - 1])) {
            blank(&mut out, &rest[..len]);
            i += len;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            let len = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                // The byte length of the UTF-8 char after the quote, from its first byte.
                let ch_len = match rest.get(1) {
                    Some(&c) if c >= 0xF0 => 4,
                    Some(&c) if c >= 0xE0 => 3,
                    Some(&c) if c >= 0x80 => 2,
                    _ => 1,
                };
                (rest.get(1 + ch_len) == Some(&b'\'')).then_some(ch_len + 2)
            };
            match len {
                Some(len) => {
                    blank(&mut out, &rest[..len]);
                    i += len;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps UTF-8: only ASCII replaced whole")
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The length of a raw string (`r"…"`, `r#"…"#`, `br"…"`) starting at `rest`, if one does.
fn raw_string_len(rest: &[u8], after_ident: bool) -> Option<usize> {
    if after_ident {
        return None;
    }
    let start = if rest.starts_with(b"br") {
        2
    } else if rest.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = rest[start..].iter().take_while(|&&c| c == b'#').count();
    if rest.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = start + hashes + 1;
    let end = rest[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(body + end + close.len())
}

/// Blanks every `#[cfg(test)]` module (`mod x { … }`, `pub mod x { … }`, …) out of code that
/// [`blank_non_code`] has already cleaned, keeping newlines.
fn blank_test_modules(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(pos) = code[from..].find("#[cfg(test)]") {
        let attr = from + pos;
        let mut after = &code[attr + "#[cfg(test)]".len()..];
        // Other attributes may come between (`#[cfg(test)] #[allow(…)] mod tests`).
        while let Some(rest) = after.trim_start().strip_prefix("#[") {
            after = rest.find(']').map_or("", |e| &rest[e + 1..]);
        }
        let after_start = code.len() - after.len();
        let words: Vec<&str> = after.split_whitespace().take(3).collect();
        let is_mod = match words.as_slice() {
            ["mod", ..] => true,
            [vis, "mod", ..] if vis.starts_with("pub") => true,
            _ => false,
        };
        let open = is_mod.then(|| after.find('{')).flatten();
        let Some(open) = open.filter(|&o| !after[..o].contains(';')) else {
            from = attr + 1;
            continue;
        };
        let open = after_start + open;
        let mut depth = 0usize;
        let mut end = code.len();
        for (k, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        for c in &mut out[attr..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(out).expect("only ASCII replaced")
}

/// The module path of a source file: `src/export/html.rs` is `["export", "html"]`,
/// `src/collect/mod.rs` is `["collect"]`, `src/lib.rs` is `[]`.
fn module_path(src_dir: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src_dir).expect("a file under src/");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every absolute module path that `code` (already cleaned) refers to through `crate::`,
/// `super::` or `self::`, with its 1-based line. `here` is the file's own module path. A
/// brace group (`crate::{a::b, c}`) yields one path per member.
fn references(code: &str, here: &[String]) -> Vec<(Vec<String>, usize)> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts_path = (i == 0 || !is_ident(b[i - 1]) && b[i - 1] != b':')
            && ["crate::", "super::", "self::"]
                .iter()
                .any(|p| code[i..].starts_with(p));
        if !starts_path {
            i += 1;
            continue;
        }
        let line = code[..i].matches('\n').count() + 1;
        // Resolve the leading `crate`/`super`/`self` segments to an absolute prefix.
        let mut base: Vec<String> = here.to_vec();
        let mut j = i;
        loop {
            if code[j..].starts_with("crate::") {
                base.clear();
                j += "crate::".len();
            } else if code[j..].starts_with("super::") {
                base.pop();
                j += "super::".len();
            } else if code[j..].starts_with("self::") {
                j += "self::".len();
            } else {
                break;
            }
        }
        let (paths, end) = parse_tail(code, j);
        for tail in paths {
            let mut full = base.clone();
            full.extend(tail);
            found.push((full, line));
        }
        i = end.max(i + 1);
    }
    found
}

/// Parses what follows `crate::`: `a::b::C` or `a::{b, c::{d}}`, into the paths it names.
/// Returns the paths and where parsing stopped.
fn parse_tail(code: &str, mut j: usize) -> (Vec<Vec<String>>, usize) {
    let b = code.as_bytes();
    let skip_ws = |j: &mut usize| {
        while *j < b.len() && b[*j].is_ascii_whitespace() {
            *j += 1;
        }
    };
    let mut prefix: Vec<String> = Vec::new();
    loop {
        skip_ws(&mut j);
        if j < b.len() && b[j] == b'{' {
            // A group: split its members at depth-one commas and parse each.
            let mut depth = 0;
            let mut k = j;
            let mut members = Vec::new();
            let mut start = j + 1;
            while k < b.len() {
                match b[k] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            members.push(&code[start..k]);
                            break;
                        }
                    }
                    b',' if depth == 1 => {
                        members.push(&code[start..k]);
                        start = k + 1;
                    }
                    _ => {}
                }
                k += 1;
            }
            let mut paths = Vec::new();
            for member in members {
                let member = member.trim();
                if member.is_empty() {
                    continue;
                }
                if member == "self" {
                    paths.push(prefix.clone());
                    continue;
                }
                let (tails, _) = parse_tail(member, 0);
                for tail in tails {
                    let mut full = prefix.clone();
                    full.extend(tail);
                    paths.push(full);
                }
            }
            return (paths, k + 1);
        }
        let start = j;
        while j < b.len() && is_ident(b[j]) {
            j += 1;
        }
        if start == j {
            return (vec![prefix], j);
        }
        prefix.push(code[start..j].to_string());
        let mut k = j;
        skip_ws(&mut k);
        if code[k..].starts_with("::") {
            j = k + 2;
        } else {
            return (vec![prefix], j);
        }
    }
}

/// Adds an edge `from → to` seen at `site`, unless it is a loop.
fn add_edge(graph: &mut Graph, from: &str, to: &str, site: Site) {
    graph.entry(from.to_string()).or_default();
    graph.entry(to.to_string()).or_default();
    if from != to {
        graph
            .get_mut(from)
            .expect("inserted above")
            .entry(to.to_string())
            .or_default()
            .push(site);
    }
}

/// The strongly connected components with more than one node (Tarjan), each sorted.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let targets: Vec<&'g str> = s.graph[v].keys().map(String::as_str).collect();
        for w in targets {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("v is on the stack");
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

/// A cycle's edges with where each comes from, for the failure message.
fn describe(graph: &Graph, component: &[String]) -> String {
    let members: BTreeSet<&String> = component.iter().collect();
    let mut text = format!("cycle among {}:\n", component.join(", "));
    for from in component {
        for (to, sites) in &graph[from] {
            if members.contains(to) {
                let at: Vec<String> = sites
                    .iter()
                    .take(3)
                    .map(|s| format!("{}:{}", s.file, s.line))
                    .collect();
                text += &format!("  {from} -> {to}  ({})\n", at.join(", "));
            }
        }
    }
    text
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level graph and one graph per directory in [`FILE_LEVEL_DIRS`].
fn crate_graphs() -> (Graph, BTreeMap<String, Graph>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut top = Graph::new();
    let mut inner: BTreeMap<String, Graph> = BTreeMap::new();
    for file in files {
        let here = module_path(&src, &file);
        let Some(top_here) = here.first() else {
            continue; // lib.rs and main.rs declare the modules; they are the root.
        };
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let code = blank_test_modules(&blank_non_code(&text));
        let name = format!(
            "src/{}",
            file.strip_prefix(&src).expect("under src").display()
        );
        top.entry(top_here.clone()).or_default();
        for (path, line) in references(&code, &here) {
            let site = Site {
                file: name.clone(),
                line,
            };
            if let Some(target) = path.first() {
                add_edge(&mut top, top_here, target, site.clone());
            }
            if FILE_LEVEL_DIRS.contains(&top_here.as_str()) && path.first() == Some(top_here) {
                // `src/export/mod.rs` is the node `export`; a path to an item re-exported
                // there (`crate::export::Report`) points at it too.
                let node = |p: &[String]| p.get(1).cloned().unwrap_or_else(|| p[0].clone());
                let graph = inner.entry(top_here.clone()).or_default();
                let from = node(&here);
                let to = if path.len() > 1 && is_module(&src, &path[..2]) {
                    path[1].clone()
                } else {
                    top_here.clone()
                };
                add_edge(graph, &from, &to, site);
            }
        }
    }
    (top, inner)
}

/// Whether a module path names a source file (`export::html` → `src/export/html.rs`).
fn is_module(src: &Path, path: &[String]) -> bool {
    let rel: PathBuf = path.iter().collect();
    src.join(rel.with_extension("rs")).is_file() || src.join(&rel).join("mod.rs").is_file()
}

#[test]
fn no_cycle_between_top_level_modules() {
    let (top, _) = crate_graphs();
    // The graph is real: the layers named in the module docs are there.
    for (from, to) in [("app", "scan"), ("scan", "collect"), ("rules", "snapshot")] {
        assert!(
            top[from].contains_key(to),
            "expected {from} -> {to}; the parser lost it: {top:#?}"
        );
    }
    let found: Vec<String> = cycles(&top).iter().map(|c| describe(&top, c)).collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_cycle_between_files_of_export() {
    let (_, inner) = crate_graphs();
    for dir in FILE_LEVEL_DIRS {
        let graph = &inner[*dir];
        assert!(
            graph.get("html").is_some_and(|e| e.contains_key("markup")),
            "expected html -> markup in {graph:#?}"
        );
        let found: Vec<String> = cycles(graph).iter().map(|c| describe(graph, c)).collect();
        assert!(found.is_empty(), "in src/{dir}/: {}", found.join("\n"));
    }
}

#[test]
fn the_model_imports_only_the_model() {
    let (top, _) = crate_graphs();
    let mut wrong = Vec::new();
    for model in MODEL {
        let edges = top
            .get(*model)
            .unwrap_or_else(|| panic!("model module {model} not found"));
        for (to, sites) in edges {
            if !MODEL.contains(&to.as_str()) {
                wrong.push(format!(
                    "{model} -> {to} at {}:{}",
                    sites[0].file, sites[0].line
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the model ({MODEL:?}) imports a layer above it:\n{}",
        wrong.join("\n")
    );
}

fn refs_of(src: &str, here: &[&str]) -> Vec<String> {
    let here: Vec<String> = here.iter().map(|s| s.to_string()).collect();
    references(&blank_test_modules(&blank_non_code(src)), &here)
        .into_iter()
        .map(|(p, line)| format!("{}@{line}", p.join("::")))
        .collect()
}

#[test]
fn parser_finds_uses_groups_and_paths_inside_functions() {
    let src = r##"//! Doc naming crate::docs, which is not an import.
use crate::finding::{Finding, Severity};
use crate::{config::{self, Settings}, snapshot};
fn f() -> u32 {
    let s = "crate::in_a_string";
    let r = r#"crate::in_raw"#;
    let c = '"';
    let _x: &'static str = "";
    crate::rules::evaluate(); // crate::in_a_comment
    super::sibling::g()
}
#[cfg(test)]
mod tests {
    use crate::anything::at_all;
}
#[cfg(test)]
pub mod test_support {
    use crate::helpers;
}
fn after() { self::local::h(); }
"##;
    assert_eq!(
        refs_of(src, &["export", "html"]),
        vec![
            "finding::Finding@2",
            "finding::Severity@2",
            "config@3",
            "config::Settings@3",
            "snapshot@3",
            "rules::evaluate@9",
            "export::sibling::g@10",
            "export::html::local::h@20",
        ]
    );
}

#[test]
fn cycle_finder_reports_a_hand_made_cycle_and_passes_a_dag() {
    let site = || Site {
        file: "src/x.rs".into(),
        line: 1,
    };
    let mut dag = Graph::new();
    for (a, b) in [
        ("app", "scan"),
        ("scan", "rules"),
        ("rules", "finding"),
        ("app", "finding"),
    ] {
        add_edge(&mut dag, a, b, site());
    }
    assert_eq!(cycles(&dag), Vec::<Vec<String>>::new());

    let mut looped = dag.clone();
    add_edge(&mut looped, "finding", "scan", site());
    assert_eq!(cycles(&looped), vec![vec!["finding", "rules", "scan"]]);
    let text = describe(&looped, &cycles(&looped)[0]);
    assert!(text.contains("finding -> scan  (src/x.rs:1)"), "{text}");

    // Two separate cycles are both reported.
    add_edge(&mut looped, "export", "model", site());
    add_edge(&mut looped, "model", "export", site());
    assert_eq!(cycles(&looped).len(), 2);
}
