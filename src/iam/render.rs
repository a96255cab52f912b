//! Writing a parsed policy back out as IAM JSON, e.g. the expected policy a person can
//! apply with `aws iam put-role-policy`, or a role for the demo snapshot.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::policy::{PatternSet, PolicyDocument, PrincipalScope, Principals, Statement};

/// The document as IAM JSON. Parsing the result gives back an equal document.
pub fn to_iam_json(document: &PolicyDocument) -> Value {
    let mut out = Map::new();
    if let Some(version) = &document.version {
        out.insert("Version".into(), json!(version));
    }
    if let Some(id) = &document.id {
        out.insert("Id".into(), json!(id));
    }
    let statements: Vec<Value> = document.statements.iter().map(statement_json).collect();
    out.insert("Statement".into(), Value::Array(statements));
    Value::Object(out)
}

fn patterns(set: &PatternSet, only: &str, except: &str) -> (String, Value) {
    match set {
        PatternSet::Only(p) => (only.to_string(), json!(p)),
        PatternSet::AllExcept(p) => (except.to_string(), json!(p)),
    }
}

fn principals(p: &Principals) -> Value {
    match p {
        Principals::Everyone => json!("*"),
        Principals::Listed(set) => {
            let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for principal in set {
                by_kind
                    .entry(principal.kind.as_str())
                    .or_default()
                    .push(&principal.id);
            }
            json!(by_kind)
        }
    }
}

fn statement_json(statement: &Statement) -> Value {
    let mut out = Map::new();
    if let Some(sid) = &statement.sid {
        out.insert("Sid".into(), json!(sid));
    }
    out.insert("Effect".into(), json!(statement.effect.to_string()));
    match &statement.principal {
        Some(PrincipalScope::Only(p)) => {
            out.insert("Principal".into(), principals(p));
        }
        Some(PrincipalScope::AllExcept(p)) => {
            out.insert("NotPrincipal".into(), principals(p));
        }
        None => {}
    }
    let (key, value) = patterns(&statement.action, "Action", "NotAction");
    out.insert(key, value);
    if let Some(resource) = &statement.resource {
        let (key, value) = patterns(resource, "Resource", "NotResource");
        out.insert(key, value);
    }
    if !statement.conditions.is_empty() {
        let mut condition: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
        for clause in statement.conditions.clauses() {
            condition
                .entry(clause.operator.as_str())
                .or_default()
                .insert(
                    clause.key.as_str(),
                    clause.values.iter().map(String::as_str).collect(),
                );
        }
        out.insert("Condition".into(), json!(condition));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_form_round_trips() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"a","Effect":"Allow","Action":["ec2:Describe*"],"Resource":"*"},
            {"Effect":"Deny","NotAction":"iam:*","NotResource":["arn:aws:s3:::x"]},
            {"Effect":"Allow","Principal":{"AWS":["111122223333"],"Service":"ec2.amazonaws.com"},
             "Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":["x","y"]}}},
            {"Effect":"Allow","NotPrincipal":"*","Action":"s3:GetObject","Resource":"*"}]}"#;
        let parsed = PolicyDocument::parse(text).unwrap();
        let again = PolicyDocument::parse(&to_iam_json(&parsed).to_string()).unwrap();
        assert_eq!(parsed, again);
    }
}
