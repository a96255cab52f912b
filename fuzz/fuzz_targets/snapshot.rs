//! Snapshot reader and rule evaluation: parse the input as a snapshot file and evaluate it
//! with the built-in pack. Nothing may panic, whatever shape the VPCs have.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vpc_auditor::config::Scope;
use vpc_auditor::rules::{evaluate, pack::RulePack};
use vpc_auditor::snapshot::Snapshot;

fn pack() -> &'static RulePack {
    static PACK: OnceLock<RulePack> = OnceLock::new();
    PACK.get_or_init(|| RulePack::embedded(&|_| None).expect("the embedded pack loads"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snapshot) = Snapshot::from_json(text) {
        let _ = evaluate(&snapshot, std::slice::from_ref(pack()), &Scope::default());
    }
});
