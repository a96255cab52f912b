//! CloudFormation template reader: read every role, with every policy resolved, out of the
//! input as a template. Nothing may panic or recurse without bound; an error has a kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vpc_auditor::iam::{effective_grants, read_template, TemplateContext};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut context = TemplateContext::new("us-east-1", "123456789012");
    context.unknown_parameters.insert("ExternalId".to_string());
    if let Ok(template) = read_template(text, &context) {
        for role in &template.roles {
            let documents: Vec<_> = role.policies.iter().map(|p| p.document.clone()).collect();
            let _ = effective_grants(&documents);
        }
    }
});
