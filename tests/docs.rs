//! The documentation a newcomer walks: the README (the front door) and the pages of `docs/`.
//!
//! - The README stays a front door: under 300 lines, with the two quick-start commands (the
//!   demo and the whole test suite) in its first 40 lines.
//! - The rule table of `docs/rules.md` is what `vpc-auditor --list-rules` prints.
//! - Every key of the configuration reference's key table (`docs/configuration.md`, "Every
//!   key") is loaded by the real binary, which must know it; and every key the binary accepts
//!   at a documented level of the config is in the table.
//! - Every relative link of the README and of `docs/` resolves to a file of the repository,
//!   and every `#anchor` to a heading of the page it names (GitHub's anchors).
//!
//! Each check is a function over text (or over a binary's answers) that returns the problems
//! it found; the tests at the end feed each one a bad input and show that it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// The README's limit, in lines.
const README_MAX_LINES: usize = 300;
/// The README's first screen: both quick-start commands must be within it.
const FIRST_SCREEN_LINES: usize = 40;
/// The two quick-start commands: the demo (no AWS account) and the whole test suite, which
/// `.ci/run` calls.
const QUICK_START: [&str; 2] = ["cargo run -- --once --demo", "scripts/test.sh"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_vpc-auditor")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Markdown: headings, anchors, links, tables
// ---------------------------------------------------------------------------------------

/// Each line of the document with whether it is inside a fenced code block (fence lines
/// count as inside).
fn lines_with_fences(markdown: &str) -> Vec<(bool, &str)> {
    let mut fenced = false;
    markdown
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return (true, line);
            }
            (fenced, line)
        })
        .collect()
}

/// (level, text) of every ATX heading outside fenced code blocks.
fn headings(markdown: &str) -> Vec<(usize, String)> {
    lines_with_fences(markdown)
        .into_iter()
        .filter(|(fenced, _)| !fenced)
        .filter_map(|(_, line)| {
            let level = line.chars().take_while(|c| *c == '#').count();
            ((1..=6).contains(&level) && line[level..].starts_with(' '))
                .then(|| (level, line[level..].trim().to_string()))
        })
        .collect()
}

/// GitHub's anchor for a heading: lowercase, spaces to `-`, punctuation dropped except `-`
/// and `_` (inline-code backticks are punctuation too).
fn github_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors GitHub gives a document's headings (a repeated heading gets `-1`, `-2`, …).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, text) in headings(markdown) {
        let slug = github_slug(&text);
        let n = seen.entry(slug.clone()).or_default();
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// (line number, target) of every inline link and image outside code: `[text](target)`,
/// `![alt](target "title")`.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (number, (fenced, line)) in lines_with_fences(markdown).into_iter().enumerate() {
        if fenced {
            continue;
        }
        // Inline code spans are text, not links: blank them out.
        let mut text = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            }
            text.push(if in_code { ' ' } else { c });
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push((number + 1, target.to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// The rows of the first Markdown table after the heading `heading` (each row's cells,
/// trimmed; the header and the separator row left out).
fn table_after(markdown: &str, heading: &str) -> Vec<Vec<String>> {
    let mut found = false;
    let mut rows = Vec::new();
    for (fenced, line) in lines_with_fences(markdown) {
        if !found {
            found =
                !fenced && line.trim_start_matches('#').trim() == heading && line.starts_with('#');
            continue;
        }
        if line.starts_with('|') {
            rows.push(
                line.trim()
                    .trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().to_string())
                    .collect::<Vec<_>>(),
            );
        } else if !rows.is_empty() {
            break;
        }
    }
    rows.into_iter().skip(2).collect()
}

// ---------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------

/// The README is a front door: short, with both quick-start commands in its first screen.
fn front_door_problems(readme: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let lines = readme.lines().count();
    if lines >= README_MAX_LINES {
        problems.push(format!(
            "README.md has {lines} lines; the front door stays under {README_MAX_LINES}"
        ));
    }
    let first_screen: Vec<&str> = readme.lines().take(FIRST_SCREEN_LINES).collect();
    for command in QUICK_START {
        if !first_screen
            .iter()
            .any(|line| line.trim_start().starts_with(command))
        {
            problems.push(format!(
                "README.md: the command `{command}` is not in its first {FIRST_SCREEN_LINES} lines"
            ));
        }
    }
    problems
}

/// The rule table of the rules page is exactly what `--list-rules` prints.
fn rule_table_problems(page: &str, list_rules: &str) -> Vec<String> {
    if page.contains(list_rules) {
        Vec::new()
    } else {
        vec![format!(
            "docs/rules.md's rule table is not the output of `vpc-auditor --list-rules`; paste \
             it:\n{list_rules}"
        )]
    }
}

/// Every relative link of `pages` (path → text) resolves: to a file or folder of the
/// repository, and, with an `#anchor` into a Markdown page, to one of its headings.
/// `exists` answers for paths relative to the repository root.
fn link_problems(
    pages: &BTreeMap<String, String>,
    exists: &dyn Fn(&str) -> bool,
    read_page: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (page, text) in pages {
        let folder = Path::new(page).parent().unwrap_or(Path::new(""));
        for (line, target) in links(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                Some(page.clone())
            } else {
                normalize(&folder.join(path))
            };
            let Some(resolved) = resolved else {
                problems.push(format!(
                    "{page}:{line}: {target} climbs out of the repository"
                ));
                continue;
            };
            if !exists(&resolved) {
                problems.push(format!("{page}:{line}: {target}: no such file {resolved}"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if !resolved.ends_with(".md") {
                continue;
            }
            let target_text = pages
                .get(&resolved)
                .cloned()
                .or_else(|| read_page(&resolved))
                .unwrap_or_default();
            if !anchors(&target_text).contains(anchor) {
                problems.push(format!(
                    "{page}:{line}: {target}: {resolved} has no heading with the anchor #{anchor}"
                ));
            }
        }
    }
    problems
}

/// A path with its `..` segments applied, relative to the repository root; `None` when it
/// climbs above the root.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/").trim_end_matches('/').to_string())
}

/// The README and every Markdown page under `docs/`, by path relative to the root.
fn documentation() -> BTreeMap<String, String> {
    let mut pages = BTreeMap::new();
    pages.insert("README.md".to_string(), read("README.md"));
    let mut folders = vec![repo().join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path.strip_prefix(repo()).unwrap();
                let relative = relative.to_string_lossy().replace('\\', "/");
                pages.insert(relative.clone(), read(&relative));
            }
        }
    }
    pages
}

// ---------------------------------------------------------------------------------------
// Config keys, against the real binary
// ---------------------------------------------------------------------------------------

/// A config holding one key path (`a.b`, `a[].b`) set to `value`, in block YAML.
fn config_with(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut indent = 0;
    let mut dash = false;
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let (name, list) = match segment.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (*segment, false),
        };
        let prefix = if dash {
            format!("{}- ", " ".repeat(indent - 2))
        } else {
            " ".repeat(indent)
        };
        dash = false;
        if i + 1 == segments.len() {
            out.push_str(&format!("{prefix}{name}: {value}\n"));
        } else {
            out.push_str(&format!("{prefix}{name}:\n"));
            if list {
                indent += 4;
                dash = true;
            } else {
                indent += 2;
            }
        }
    }
    out
}

/// What the binary says about a config: its stderr, after loading it for a `--once --demo`
/// run (the demo needs no AWS; the config is read and checked as for any run).
fn load_config(dir: &Path, name: &str, yaml: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(binary())
        .args(["--once", "--demo", "--format", "json", "--config"])
        .arg(&file)
        .output()
        .expect("run vpc-auditor");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The field names serde lists after "unknown field `x`, expected …".
fn expected_fields(stderr: &str) -> Option<BTreeSet<String>> {
    let at = stderr.find("unknown field `")?;
    let rest = &stderr[at..];
    let rest = &rest[rest.find("expected")?..];
    let rest = rest.lines().next().unwrap_or("");
    Some(
        rest.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// The documented keys the binary does not know (`documented`: path → example value).
fn unknown_documented_keys(dir: &Path, documented: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, (path, value)) in documented.iter().enumerate() {
        let yaml = config_with(path, value);
        let stderr = load_config(dir, &format!("key-{i}.yaml"), &yaml);
        if stderr.contains("unknown field") {
            problems.push(format!(
                "docs/configuration.md documents `{path}`, which the config loader does not \
                 accept:\n{yaml}{stderr}"
            ));
        }
    }
    problems
}

/// The keys the binary accepts at a documented level of the config that the table lacks.
fn undocumented_keys(dir: &Path, documented: &[(String, String)]) -> Vec<String> {
    // Documented children of every documented level ("" is the top).
    let mut children: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, _) in documented {
        let segments: Vec<&str> = path.split('.').collect();
        for depth in 0..segments.len() {
            let parent = segments[..depth].join(".");
            let child = segments[depth].trim_end_matches("[]").to_string();
            children.entry(parent).or_default().insert(child);
        }
    }
    let mut problems = Vec::new();
    for (i, (parent, documented_children)) in children.iter().enumerate() {
        let probe = "docs_probe_not_a_key";
        let path = if parent.is_empty() {
            probe.to_string()
        } else {
            format!("{parent}.{probe}")
        };
        let stderr = load_config(dir, &format!("probe-{i}.yaml"), &config_with(&path, "1"));
        let Some(accepted) = expected_fields(&stderr) else {
            problems.push(format!(
                "`{path}`: the binary did not name the keys it accepts there:\n{stderr}"
            ));
            continue;
        };
        for key in accepted.difference(documented_children) {
            let full = if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            };
            problems.push(format!(
                "the config accepts `{full}`, which docs/configuration.md (\"Every key\") does \
                 not list"
            ));
        }
    }
    problems
}

/// (key path, example value) of each row of the reference's key table.
fn documented_keys(page: &str) -> Vec<(String, String)> {
    table_after(page, "Every key")
        .into_iter()
        .map(|cells| {
            let key = cells[0].trim_matches('`').to_string();
            let value = cells[1].trim_matches('`').to_string();
            (key, value)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn readme_is_a_front_door_with_both_quick_start_commands_first() {
    let problems = front_door_problems(&read("README.md"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rules_page_carries_the_table_list_rules_prints() {
    let out = Command::new(binary())
        .arg("--list-rules")
        .output()
        .expect("run vpc-auditor --list-rules");
    assert!(out.status.success(), "{out:?}");
    let list_rules = String::from_utf8(out.stdout).unwrap();
    assert!(list_rules.lines().count() > 20, "{list_rules}");
    let problems = rule_table_problems(&read("docs/rules.md"), &list_rules);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_documented_config_key_is_accepted_by_the_binary() {
    let documented = documented_keys(&read("docs/configuration.md"));
    assert!(
        documented.len() > 40,
        "the key table went missing: {documented:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let problems = unknown_documented_keys(dir.path(), &documented);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_config_key_the_binary_accepts_is_documented() {
    let documented = documented_keys(&read("docs/configuration.md"));
    let dir = tempfile::tempdir().unwrap();
    let problems = undocumented_keys(dir.path(), &documented);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_configuration_examples_use_only_documented_keys() {
    // The YAML examples of the reference are configs: every key path in them is in the table.
    let page = read("docs/configuration.md");
    let documented: BTreeSet<String> = documented_keys(&page).into_iter().map(|(k, _)| k).collect();
    let mut problems = Vec::new();
    let mut in_yaml = false;
    let mut stack: Vec<(usize, String)> = Vec::new();
    for line in page.lines() {
        if line.starts_with("```") {
            in_yaml = line == "```yaml";
            stack.clear();
            continue;
        }
        let code = line.split(" #").next().unwrap_or("");
        if !in_yaml || code.trim().is_empty() || code.trim_start().starts_with('#') {
            continue;
        }
        let indent = code.len() - code.trim_start().len();
        let Some((key, _)) = code.trim().split_once(':') else {
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .chain([key])
            .collect::<Vec<_>>()
            .join(".");
        // Keys under a map-valued key (rule ids under rule_overrides) are values, not keys.
        if !stack.iter().any(|(_, k)| k == "rule_overrides") && !documented.contains(&path) {
            let covered = documented
                .iter()
                .any(|d| d.starts_with(&format!("{path}.")));
            if !covered {
                problems.push(format!("the example's `{path}` is not in the key table"));
            }
        }
        stack.push((indent, key.to_string()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let pages = documentation();
    assert!(pages.len() > 10, "{:?}", pages.keys());
    let root = repo();
    let problems = link_problems(&pages, &|path| root.join(path).exists(), &|path| {
        std::fs::read_to_string(root.join(path)).ok()
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Each check fails on bad input
// ---------------------------------------------------------------------------------------

#[test]
fn front_door_check_fails_on_a_long_readme_or_late_commands() {
    let good = "# x\n```sh\ncargo run -- --once --demo\nscripts/test.sh\n```\n";
    assert_eq!(front_door_problems(good), Vec::<String>::new());
    let long = format!("{good}{}", "more\n".repeat(README_MAX_LINES));
    assert_eq!(front_door_problems(&long).len(), 1, "{long}");
    let late = format!("# x\n{}{good}", "intro\n".repeat(FIRST_SCREEN_LINES));
    assert_eq!(front_door_problems(&late).len(), 2);
    let one = "# x\ncargo run -- --once --demo\n";
    assert_eq!(front_door_problems(one).len(), 1);
}

#[test]
fn rule_table_check_fails_on_a_stale_row() {
    let table = "| id | severity |\n|---|---|\n| `vpc.az_count` | high |\n";
    assert!(rule_table_problems(&format!("# Rules\n\n{table}\nmore"), table).is_empty());
    let stale = table.replace("high", "medium");
    assert_eq!(rule_table_problems(&stale, table).len(), 1);
}

#[test]
fn config_key_checks_fail_on_a_key_the_binary_does_not_know_and_on_a_missing_row() {
    let dir = tempfile::tempdir().unwrap();
    let keys = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // Known keys, at the top, nested, and inside list items.
    let known = keys(&[
        ("scope.vpc_ids", "[vpc-1]"),
        ("suppressions[].reason", "Accepted (TICKET-1)."),
        ("scan.rate_limits.ec2.burst", "100"),
    ]);
    assert_eq!(
        unknown_documented_keys(dir.path(), &known),
        Vec::<String>::new()
    );
    // A documented key the code does not have.
    let bad = keys(&[("scope.vpc_idz", "[]"), ("accounts[].role_arm", "x")]);
    assert_eq!(unknown_documented_keys(dir.path(), &bad).len(), 2);
    // A table that lacks keys the code has: everything under `sharding` but `shard`.
    let partial = keys(&[("sharding.shard", "0")]);
    let problems = undocumented_keys(dir.path(), &partial);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`sharding.total_shards`")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("`regions`")),
        "{problems:?}"
    );
}

#[test]
fn config_with_nests_maps_and_list_items() {
    assert_eq!(config_with("fail_on", "low"), "fail_on: low\n");
    assert_eq!(
        config_with("scan.rate_limits.ec2.burst", "100"),
        "scan:\n  rate_limits:\n    ec2:\n      burst: 100\n"
    );
    assert_eq!(
        config_with("suppressions[].rule", "vpc.az_count"),
        "suppressions:\n  - rule: vpc.az_count\n"
    );
    assert_eq!(config_with("a[].b.c", "1"), "a:\n  - b:\n      c: 1\n");
    assert_eq!(
        expected_fields("x.yaml:1:1: a.zz: unknown field `zz`, expected `per_second` or `burst`"),
        Some(["burst", "per_second"].map(String::from).into())
    );
    assert_eq!(expected_fields("x.yaml:1:1: a: missing field `b`"), None);
}

#[test]
fn link_check_fails_on_a_missing_file_a_missing_anchor_or_a_climb() {
    let mut pages = BTreeMap::new();
    pages.insert(
        "docs/a.md".to_string(),
        "# A\n\n## Step `one`\n\n[b](b.md#intro) [self](#step-one) [root](../README.md)\n\
         [file](../src/main.rs) [web](https://example.com/x.md#nope)\n\
         ```\n[in code](missing.md)\n```\n`[in a span](missing.md)`\n"
            .to_string(),
    );
    pages.insert("docs/b.md".to_string(), "# B\n\n## Intro\n".to_string());
    let files: BTreeSet<&str> = ["docs/a.md", "docs/b.md", "README.md", "src/main.rs"].into();
    let exists = |p: &str| files.contains(p);
    let none = |_: &str| None;
    assert_eq!(link_problems(&pages, &exists, &none), Vec::<String>::new());

    let climb = format!("[climb]({}outside.md)", "../".repeat(2));
    let bad = [
        "[gone](c.md)",
        "[anchor](b.md#outro)",
        "[self](#step-two)",
        &climb,
        "[missing page](schemas.md)",
        "![image](missing.png)",
    ];
    for link in bad {
        let mut broken = pages.clone();
        broken
            .get_mut("docs/a.md")
            .unwrap()
            .push_str(&format!("{link}\n"));
        assert_eq!(
            link_problems(&broken, &exists, &none).len(),
            1,
            "not caught: {link}"
        );
    }
}

#[test]
fn anchors_follow_github() {
    assert_eq!(
        github_slug("The auditor's IAM role"),
        "the-auditors-iam-role"
    );
    assert_eq!(github_slug("ECS (Fargate)"), "ecs-fargate");
    assert_eq!(github_slug("What `--once` does?"), "what---once-does");
    assert_eq!(github_slug("VpcAuditorDown"), "vpcauditordown");
    let doc = "# A\n```\n# not a heading\n```\n## A\n### snake_case here\n";
    assert_eq!(
        anchors(doc),
        ["a", "a-1", "snake_case-here"].map(String::from).into()
    );
}
