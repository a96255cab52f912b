//! The repository stands alone: no file of the project refers to anything outside it.
//!
//! A user's clone lives anywhere, with nothing beside it. This test reads every file of
//! the tree (not build output, virtualenvs or git's own) and fails on:
//! - a relative path with `..` that, read from the file's own folder, climbs above the
//!   repository root or names something the repository does not have (Markdown is held to
//!   this in its links only: its code blocks show paths on the reader's machine);
//! - an absolute path into a developer's machine (`/work/`, `/home/`, `/root/`, `/Users/`,
//!   `/mnt/`), in any file.

use std::path::{Component, Path, PathBuf};

/// Not the project's text: git's own, build output, virtualenvs, and the fuzzers' generated
/// inputs and crashes.
const SKIPPED_DIRS: [&str; 6] = [
    ".git",
    "target",
    ".venv",
    "node_modules",
    "fuzz/corpus",
    "fuzz/artifacts",
];
const MACHINE_PATHS: [&str; 5] = ["/work/", "/home/", "/root/", "/Users/", "/mnt/"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == ".git") {
            continue; // a directory in a clone, a file in a worktree
        }
        if path.is_dir() {
            let relative = path.strip_prefix(root).unwrap();
            let name = path.file_name().unwrap();
            if !SKIPPED_DIRS
                .iter()
                .any(|s| relative == Path::new(s) || name == *s)
            {
                files(root, &path, out);
            }
        } else {
            out.push(path);
        }
    }
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-/".contains(c)
}

/// Every token of path characters that contains a `..` segment.
fn dotdot_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("../") {
            let start = rest[..at]
                .char_indices()
                .rev()
                .take_while(|(_, c)| is_path_char(*c))
                .last()
                .map_or(at, |(i, _)| i);
            let end = rest[at..]
                .find(|c: char| !is_path_char(c))
                .map_or(rest.len(), |e| at + e);
            found.push((number + 1, rest[start..end].to_string()));
            rest = &rest[end..];
        }
    }
    found
}

/// `path` read from `dir`, with `..` applied; `None` when it climbs above `root`.
fn resolve(root: &Path, dir: &Path, path: &str) -> Option<PathBuf> {
    let mut resolved = dir.strip_prefix(root).unwrap().to_path_buf();
    for part in Path::new(path).components() {
        match part {
            Component::ParentDir if !resolved.pop() => return None,
            Component::ParentDir => {}
            Component::Normal(p) => resolved.push(p),
            _ => {}
        }
    }
    Some(root.join(resolved))
}

/// The targets of Markdown links, `](target)`, with their line numbers.
fn markdown_links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let target = &rest[at + 2..];
            let end = target.find(')').unwrap_or(target.len());
            found.push((number + 1, target[..end].to_string()));
            rest = &target[end..];
        }
    }
    found
}

fn problems_in(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let name = file.strip_prefix(root).unwrap().display().to_string();
    let dir = file.parent().unwrap();
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        for machine in MACHINE_PATHS {
            let mut rest = line;
            while let Some(at) = rest.find(machine) {
                let before = rest[..at].chars().next_back();
                // `https://host/home/...` or `dir/root/` are not absolute paths.
                if !before.is_some_and(|c| c.is_ascii_alphanumeric() || "._-/:~".contains(c)) {
                    problems.push(format!("{name}:{}: absolute path {machine}…", number + 1));
                }
                rest = &rest[at + machine.len()..];
            }
        }
    }
    let markdown = name.ends_with(".md");
    let paths = if markdown {
        markdown_links(text)
            .into_iter()
            .filter(|(_, t)| t.contains("../"))
            .collect()
    } else {
        dotdot_paths(text)
    };
    for (line, path) in paths {
        let path = path.split(['#', '?']).next().unwrap_or_default();
        // `.../a-1` is an ellipsis in prose, not a path that climbs.
        if !Path::new(path)
            .components()
            .any(|c| c == Component::ParentDir)
        {
            continue;
        }
        match resolve(root, dir, path) {
            None => problems.push(format!("{name}:{line}: {path} climbs above the repository")),
            Some(target) if !target.exists() => problems.push(format!(
                "{name}:{line}: {path} names nothing in the repository"
            )),
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn no_file_refers_outside_the_repository() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &root, &mut all);
    assert!(all.len() > 100, "the walk found only {} files", all.len());
    let mut problems = Vec::new();
    for file in &all {
        if file.ends_with("tests/standalone.rs") {
            continue; // names the patterns it looks for
        }
        if let Ok(text) = std::fs::read_to_string(file) {
            problems.extend(problems_in(&root, file, &text));
        }
    }
    assert!(
        problems.is_empty(),
        "references outside the repository:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_what_it_is_for() {
    let root = root();
    let file = root.join("tests/common/cfn.rs");
    // The folder beside the repository that development machines have, spelt in pieces so
    // that this file is not itself a reference to it.
    let beside = ["shared", "reference"].join("/");
    let bad = [
        format!(r#"PathBuf::from("/work/{beside}")"#),
        format!(r#"dir.join("../{beside}/union-ai-admin")"#),
        r#"include_str!("../../../outside.txt")"#.to_string(),
    ];
    for text in &bad {
        assert_eq!(
            problems_in(&root, &file, text).len(),
            1,
            "not caught: {text}"
        );
    }
    let good = [
        r#"include_str!("../fixtures/union-ai-admin/README.md")"#,
        r#"let url = "https://example.com/home/x";"#,
        "cd /tmp/web",
        "numbered ARNs (`.../a-1`, `.../*-2`)",
    ];
    for text in good {
        assert_eq!(
            problems_in(&root, &file, text),
            Vec::<String>::new(),
            "flagged: {text}"
        );
    }
    let readme = root.join("README.md");
    assert_eq!(
        problems_in(&root, &readme, &format!("[x](../{beside}/a.md)")).len(),
        1
    );
    assert!(problems_in(&root, &readme, "rule_packs: [../rules/union-byoc.yaml]").is_empty());
}
