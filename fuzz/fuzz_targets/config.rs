//! Config parser: YAML → `ConfigFile` (with its load-time checks) → `Settings`. The config
//! is written to a file because that is the only way in; packs and suppression files it
//! names are not followed (they have their own target), so `Settings::resolve` runs only
//! for configs that name none.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vpc_auditor::config::{ConfigFile, Overrides, Settings};

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vpc-auditor-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch().join("config.yaml");
    std::fs::write(&path, data).expect("write the config");
    let Ok(config) = ConfigFile::load(&path) else {
        return;
    };
    if config.rule_packs.is_empty() && config.suppressions_file.is_none() {
        let _ = Settings::resolve(&Overrides {
            config: Some(path),
            ..Overrides::default()
        });
    }
});
