//! Policy parser and evaluator: parse the input as a policy (plain JSON, and as IAM's
//! URL-encoded form), compute its grants, and compare them with a fixed expected policy.
//! Invariants: nothing panics; a policy is never missing or in excess of itself; what the
//! input lacks of the expected policy plus what they share is the expected policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vpc_auditor::iam::{decode_url_encoded, effective_grants, excess, missing, PolicyDocument};

const EXPECTED: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["s3:GetObject","s3:List*"],"Resource":["arn:aws:s3:::bucket","arn:aws:s3:::bucket/*"]},
  {"Effect":"Allow","Action":"ec2:Describe*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}},
  {"Effect":"Deny","NotAction":"iam:*","NotResource":"arn:aws:iam::*:role/x"}]}"#;

fn exercise(text: &str) {
    let Ok(actual) = PolicyDocument::parse(text) else {
        return;
    };
    let expected = PolicyDocument::parse(EXPECTED).expect("the expected policy parses");
    let actual = effective_grants(std::slice::from_ref(&actual));
    let expected = effective_grants(std::slice::from_ref(&expected));
    assert!(missing(&actual, &actual).is_empty(), "a policy lacks its own grants");
    assert!(excess(&actual, &actual).is_empty(), "a policy exceeds itself");
    let _ = missing(&expected, &actual);
    let _ = excess(&expected, &actual);
    let _ = missing(&actual, &expected);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    exercise(text);
    if let Ok(decoded) = decode_url_encoded(text) {
        exercise(&decoded);
    }
});
