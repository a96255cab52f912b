//! The JSON Schemas in `schemas/` are what `vpc-auditor schema <kind>` prints, every shipped
//! config, rule pack and suppressions file names its schema in a
//! `# yaml-language-server: $schema=…` first line, and each of them is valid against its
//! schema (checked by Python's `jsonschema`, the validator pinned in
//! `scripts/setup-test-env.sh`), so the schemas are shown to accept what the auditor accepts.
//!
//! `UPDATE_SCHEMAS=1 cargo test --test schemas` rewrites `schemas/` from the binary's output.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use vpc_auditor::config::ConfigFile;
use vpc_auditor::input;
use vpc_auditor::rules::pack::RulePack;
use vpc_auditor::schemas::SchemaKind;
use vpc_auditor::suppress::SuppressionsFile;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every shipped file that the auditor reads, with its kind. Copies kept byte-equal to
/// these by `tests/deploy.rs` (under `deploy/kubernetes/base/`) are not listed: they carry
/// their original's first line.
fn shipped() -> Vec<(PathBuf, SchemaKind)> {
    let mut files = vec![
        ("deploy/config.yaml", SchemaKind::Config),
        (
            "deploy/kubernetes/overlays/example/config.yaml",
            SchemaKind::Config,
        ),
        (
            "deploy/kubernetes/overlays/sharded/config.yaml",
            SchemaKind::Config,
        ),
    ]
    .into_iter()
    .map(|(f, k)| (repo().join(f), k))
    .collect::<Vec<_>>();
    // Every example: the suppressions file, and configs.
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    files.extend(examples.into_iter().map(|p| {
        let kind = if p.ends_with("suppressions.yaml") {
            SchemaKind::Suppressions
        } else {
            SchemaKind::Config
        };
        (p, kind)
    }));
    for dir in ["rules", "rules/examples"] {
        let mut packs: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        packs.sort();
        assert!(!packs.is_empty(), "no packs in {dir}");
        files.extend(packs.into_iter().map(|p| (p, SchemaKind::RulePack)));
    }
    files
}

fn schema_path(kind: SchemaKind) -> PathBuf {
    repo().join("schemas").join(kind.file_name())
}

/// Copies of a schema where the modeline of a byte-equal copy of a shipped file resolves:
/// `deploy/kubernetes/base/config.yaml` (a copy of `deploy/config.yaml`) names a
/// `schemas/` folder beside `base/`, and the copies of `rules/` and `rules/examples/` under
/// `deploy/kubernetes/base/rules/` both name `deploy/kubernetes/base/schemas/`.
fn schema_copies() -> Vec<(SchemaKind, PathBuf)> {
    vec![
        (
            SchemaKind::Config,
            repo().join("deploy/kubernetes/schemas/config.schema.json"),
        ),
        (
            SchemaKind::RulePack,
            repo().join("deploy/kubernetes/base/schemas/rule-pack.schema.json"),
        ),
    ]
}

/// `to` relative to the folder `from`, with `/` separators, climbing with `..` as needed.
fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

fn modeline(file: &Path, kind: SchemaKind) -> String {
    let dir = file.parent().expect("a file in a folder");
    format!(
        "# yaml-language-server: $schema={}",
        relative(dir, &schema_path(kind))
    )
}

#[test]
fn committed_schemas_equal_the_binarys_output() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for kind in SchemaKind::ALL {
        let out = Command::new(env!("CARGO_BIN_EXE_vpc-auditor"))
            .args(["schema", kind.name()])
            .output()
            .expect("run vpc-auditor schema");
        assert!(
            out.status.success(),
            "vpc-auditor schema {}: {}",
            kind.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).expect("UTF-8");
        let parsed: Value = serde_json::from_str(&printed).expect("the schema is JSON");
        assert_eq!(
            parsed["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{printed}"
        );
        assert_eq!(printed, vpc_auditor::schemas::schema_json(kind));
        let copies = schema_copies()
            .into_iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, p)| p);
        for path in std::iter::once(schema_path(kind)).chain(copies) {
            if update {
                std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
                std::fs::write(&path, &printed).expect("write the schema");
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == printed,
                "{} differs from `vpc-auditor schema {}`; regenerate with \
                 UPDATE_SCHEMAS=1 cargo test --test schemas",
                path.display(),
                kind.name()
            );
        }
    }
}

#[test]
fn shipped_files_start_with_their_schema_modeline() {
    let mut wrong = Vec::new();
    for (file, kind) in shipped() {
        let text = std::fs::read_to_string(&file).expect("a shipped file");
        let want = modeline(&file, kind);
        if text.lines().next() != Some(want.as_str()) {
            wrong.push(format!("{}: first line should be `{want}`", file.display()));
        }
        // The path resolves from the file's own folder.
        let target = want.split_once("$schema=").expect("modeline").1;
        assert!(
            file.parent().unwrap().join(target).is_file(),
            "{}: {target} does not resolve",
            file.display()
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The byte-equal copies under `deploy/kubernetes/base/` keep their original's modeline;
/// it resolves there too, to a schema copy.
#[test]
fn modelines_of_the_kubernetes_copies_resolve() {
    let base = repo().join("deploy/kubernetes/base");
    let mut files = vec![base.join("config.yaml")];
    let mut dirs = vec![base.join("rules")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml")
                && !path.components().any(|c| c.as_os_str() == "vendor")
            {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 3, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a copy");
        let target = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
            .unwrap_or_else(|| panic!("{}: no modeline", file.display()));
        let schema = file.parent().unwrap().join(target);
        assert!(
            schema.is_file(),
            "{}: {target} does not resolve",
            file.display()
        );
    }
}

/// The auditor's own parser accepts `text`, read from `file`, as `kind`.
fn product_accepts(file: &Path, text: &str, kind: SchemaKind) -> Result<(), String> {
    match kind {
        SchemaKind::Config => ConfigFile::parse(file, text).map(drop),
        SchemaKind::RulePack => input::parse_yaml::<RulePack>(file, text).map(drop),
        SchemaKind::Suppressions => input::parse_yaml::<SuppressionsFile>(file, text).map(drop),
    }
    .map_err(|e| e.to_string())
}

/// The YAML as the JSON that a YAML language server validates.
fn yaml_to_json(file: &Path, text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// What Python's jsonschema says of each instance against `kind`'s committed schema: a list
/// of error messages per instance, in order.
fn schema_errors(kind: SchemaKind, instances: &[Value]) -> Vec<Vec<String>> {
    let python = repo().join(".venv/report-tools/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup-test-env.sh",
        python.display()
    );
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut args = vec![schema_path(kind)];
    for (i, instance) in instances.iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, instance.to_string()).expect("write an instance");
        args.push(path);
    }
    let script = "import json, sys\n\
        from jsonschema import Draft202012Validator as V\n\
        schema = json.load(open(sys.argv[1]))\n\
        V.check_schema(schema)\n\
        v = V(schema)\n\
        print(json.dumps([[('/'.join(map(str, e.absolute_path)) + ': ' + e.message) \
        for e in v.iter_errors(json.load(open(p)))] for p in sys.argv[2:]]))\n";
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(&args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "jsonschema: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list of errors")
}

#[test]
fn every_shipped_file_is_valid_against_its_schema() {
    let files = shipped();
    for kind in SchemaKind::ALL {
        let mine: Vec<&PathBuf> = files
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(f, _)| f)
            .collect();
        assert!(!mine.is_empty(), "no shipped {}", kind.name());
        let mut instances = Vec::new();
        for file in &mine {
            let text = std::fs::read_to_string(file).expect("a shipped file");
            product_accepts(file, &text, kind)
                .unwrap_or_else(|e| panic!("the auditor rejects a shipped file: {e}"));
            instances.push(yaml_to_json(file, &text));
        }
        let errors = schema_errors(kind, &instances);
        let bad: Vec<String> = mine
            .iter()
            .zip(&errors)
            .filter(|(_, e)| !e.is_empty())
            .map(|(f, e)| format!("{}: {}", f.display(), e.join("; ")))
            .collect();
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}

/// The schemas reject what the auditor rejects, at least for the mistakes an editor should
/// catch: an unknown key, a value of the wrong kind, a bad rule id.
#[test]
fn schemas_reject_what_the_auditor_rejects() {
    let cases = [
        (SchemaKind::Config, "regions: [us-east-1]\nregoins: [eu-west-1]\n"),
        (SchemaKind::Config, "regions: [us-east1]\n"),
        (SchemaKind::Config, "aws:\n  max_attempts: 0\n"),
        (SchemaKind::Config, "scope:\n  vpc_ids: [subnet-1]\n"),
        (SchemaKind::Config, "aws:\n  attempt_timeout: 30\n"),
        (SchemaKind::Config, "accounts:\n  - role_arn: arn:aws:iam::123456789012:role/r\n    regions: []\n"),
        (SchemaKind::RulePack, "name: p\nvpc_rules:\n  vpc.az_count:\n    min_azs: three\n"),
        (SchemaKind::RulePack, "name: p\nvpc_rules:\n  vpc.no_such_rule: {}\n"),
        (SchemaKind::RulePack, "description: no name\n"),
        (
            SchemaKind::Suppressions,
            "suppressions:\n  - rule: no.such_rule\n    resource: vpc-1\n    reason: r\n    expires: 2030-01-01\n",
        ),
    ];
    for kind in SchemaKind::ALL {
        let texts: Vec<&str> = cases
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, t)| *t)
            .collect();
        let file = Path::new("case.yaml");
        let instances: Vec<Value> = texts.iter().map(|t| yaml_to_json(file, t)).collect();
        for (text, errors) in texts.iter().zip(schema_errors(kind, &instances)) {
            assert!(
                product_accepts(file, text, kind).is_err(),
                "the auditor accepts {text:?}; pick a case it rejects"
            );
            assert!(
                !errors.is_empty(),
                "the {} schema accepts {text:?}, which the auditor rejects",
                kind.name()
            );
        }
    }
}
