//! Rule pack parser: YAML → `RulePack`, then its role expectations resolved against fixed
//! files (a valid policy; the union template), with no environment.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vpc_auditor::input::InputError;
use vpc_auditor::rules::pack::RulePack;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${BucketName}/*"}]}"#;
const TEMPLATE: &str = include_str!("../../rules/vendor/union-ai-admin-role.v0.13.template.yaml");

fn read(path: &Path) -> Result<String, InputError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Ok(POLICY.to_string()),
        Some("yaml" | "yml") => Ok(TEMPLATE.to_string()),
        _ => Err(InputError::file(path, "no such file")),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz/pack.yaml");
    if let Ok(mut pack) = RulePack::parse(file, text) {
        let _ = pack.load_sources(file, &read, &|_| None);
    }
});
