//! Reading templates: the union-ai-admin releases, and every feature and error on small ones.

use std::collections::BTreeSet;

use super::*;
use crate::iam::grants::{effective_grants, missing, Target};
use crate::iam::policy::{contains_unknown, Effect, PatternSet, PrincipalScope, Principals};
use crate::iam::trust::{compare_trust, TrustOptions};

const VERSIONS: &[&str] = &["0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13"];

fn context() -> TemplateContext {
    TemplateContext::new("us-east-1", "111122223333")
}

fn union_template(version: &str) -> String {
    let path = crate::iam::tests_support::union_template_path(&format!("v{version}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_union(version: &str) -> Template {
    let context = context().with_unknown_parameter("ExternalId");
    read_template(&union_template(version), &context).unwrap_or_else(|e| panic!("v{version}: {e}"))
}

fn read_err(text: &str, context: &TemplateContext) -> TemplateError {
    match read_template(text, context) {
        Ok(t) => panic!("expected an error, read {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_union_template_yields_the_union_ai_admin_role() {
    for version in VERSIONS {
        let template = read_union(version);
        assert_eq!(template.roles.len(), 1, "v{version}");
        let role = template
            .role("union-ai-admin")
            .unwrap_or_else(|| panic!("v{version}"));
        assert_eq!(role.logical_id, "CrossAccountRoleForAWSTrustedAdvisorUnion");
        assert_eq!(role.arn, "arn:aws:iam::111122223333:role/union-ai-admin");
        assert_eq!(template.format_version.as_deref(), Some("2010-09-09"));
        let statement = &role.trust_policy.statements[0];
        assert_eq!(statement.effect, Effect::Allow);
        match &statement.principal {
            Some(PrincipalScope::Only(Principals::Listed(set))) => {
                assert!(
                    set.iter().any(|p| p.id == "arn:aws:iam::479331373192:root"),
                    "v{version}"
                );
            }
            other => panic!("v{version}: {other:?}"),
        }
        assert_eq!(role.policies.len(), 1);
        assert_eq!(role.policies[0].name, "UnionIAMPolicy");
        assert_eq!(
            role.policies[0].source,
            PolicySource::Policy {
                logical_id: "CrossAccountPolicyForAWSTrustedAdvisorUnion".to_string()
            }
        );
        // Every resource was substituted with the context's region and account.
        for s in &role.policies[0].document.statements {
            for r in s
                .resource
                .as_ref()
                .map(PatternSet::patterns)
                .unwrap_or_default()
            {
                assert!(!r.contains("${"), "v{version}: {r}");
                assert!(r == "*" || r.starts_with("arn:aws:"), "v{version}: {r}");
            }
        }
    }
}

#[test]
fn union_v0_13_trust_requires_external_id_and_v0_7_does_not() {
    let v13 = read_union("0.13");
    let trust = &v13.roles[0].trust_policy;
    let clause = trust.statements[0]
        .conditions
        .get("StringEquals", "sts:ExternalId")
        .expect("v0.13 trust has sts:ExternalId");
    assert!(clause.values.iter().all(|v| contains_unknown(v)));

    let v7 = read_union("0.7");
    assert!(v7.roles[0].trust_policy.statements[0].conditions.is_empty());

    // v0.7's trust is what a role without ExternalId has: v0.13 flags it.
    let drifts = compare_trust(trust, &v7.roles[0].trust_policy, &TrustOptions::default());
    assert_eq!(drifts.len(), 1);
    assert!(drifts[0].message().contains("sts:ExternalId"));
}

#[test]
fn external_id_from_context_is_substituted() {
    let context = context().with_parameter("ExternalId", "abcdefgh12");
    let template = read_template(&union_template("0.13"), &context).unwrap();
    let clause = template.roles[0].trust_policy.statements[0]
        .conditions
        .get("StringEquals", "sts:ExternalId")
        .unwrap()
        .clone();
    assert_eq!(clause.values, BTreeSet::from(["abcdefgh12".to_string()]));
}

#[test]
fn external_id_without_value_or_unknown_mark_is_an_error_naming_it() {
    let err = read_err(&union_template("0.13"), &context());
    assert_eq!(err.kind, TemplateErrorKind::MissingParameter);
    assert!(err.message.contains("parameter ExternalId"), "{err}");
    assert!(
        err.path.ends_with(
            "AssumeRolePolicyDocument.Statement[0].Condition.StringEquals.sts:ExternalId"
        ),
        "{err}"
    );
    assert!(err.line.is_some());
}

#[test]
fn role_name_parameter_from_context_overrides_default() {
    let context = context()
        .with_unknown_parameter("ExternalId")
        .with_parameter("CrossAccountRoleName", "OrganizationAccountAccessRole");
    let template = read_template(&union_template("0.13"), &context).unwrap();
    assert_eq!(template.roles[0].role_name, "OrganizationAccountAccessRole");
    assert_eq!(
        template.roles[0].policies.len(),
        1,
        "the Policy's Roles follow the name"
    );
}

/// (lower-cased action, resource) pairs of every Allow statement, computed
/// without the grants module.
fn plain_pairs(template: &Template) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for policy in &template.roles[0].policies {
        for s in &policy.document.statements {
            assert_eq!(s.effect, Effect::Allow);
            let (PatternSet::Only(actions), Some(PatternSet::Only(resources))) =
                (&s.action, &s.resource)
            else {
                panic!("union statements are plain Action/Resource lists");
            };
            for a in actions {
                for r in resources {
                    pairs.insert((a.to_lowercase(), r.clone()));
                }
            }
        }
    }
    pairs
}

fn missing_pairs(expected: &Template, actual: &Template) -> BTreeSet<(String, String)> {
    let docs = |t: &Template| -> Vec<PolicyDocument> {
        t.roles[0]
            .policies
            .iter()
            .map(|p| p.document.clone())
            .collect()
    };
    missing(
        &effective_grants(&docs(expected)),
        &effective_grants(&docs(actual)),
    )
    .into_iter()
    .map(|g| match (g.action, g.resource) {
        (Target::Pattern(a), Target::Pattern(r)) => {
            assert!(g.conditions.is_empty());
            (a.to_string(), r.to_string())
        }
        other => panic!("{other:?}"),
    })
    .collect()
}

#[test]
fn missing_between_v0_12_and_v0_13_equals_plain_set_difference() {
    let v12 = read_union("0.12");
    let v13 = read_union("0.13");
    let independent: BTreeSet<_> = plain_pairs(&v13)
        .difference(&plain_pairs(&v12))
        .cloned()
        .collect();
    assert!(
        plain_pairs(&v13).len() > 300,
        "the comparison is not vacuous"
    );
    assert_eq!(missing_pairs(&v13, &v12), independent);
    let reverse: BTreeSet<_> = plain_pairs(&v12)
        .difference(&plain_pairs(&v13))
        .cloned()
        .collect();
    assert_eq!(missing_pairs(&v12, &v13), reverse);
}

#[test]
fn missing_between_consecutive_union_versions_is_the_set_difference_less_wildcard_coverage() {
    let mut exact_and_nonempty = 0;
    for pair in VERSIONS.windows(2) {
        let (old, new) = (read_union(pair[0]), read_union(pair[1]));
        for (expected, actual) in [(&new, &old), (&old, &new)] {
            let plain: BTreeSet<_> = plain_pairs(expected)
                .difference(&plain_pairs(actual))
                .cloned()
                .collect();
            let reported = missing_pairs(expected, actual);
            assert!(reported.is_subset(&plain), "{pair:?}");
            if reported == plain && !plain.is_empty() {
                exact_and_nonempty += 1;
            }
            // Whatever set difference finds but `missing` does not must be
            // a pair the actual policy grants through a wildcard.
            for (action, resource) in plain.difference(&reported) {
                let granted = plain_pairs(actual).iter().any(|(a, r)| {
                    crate::iam::pattern::covers(a, action, true)
                        && crate::iam::pattern::covers(r, resource, false)
                });
                assert!(granted, "{pair:?}: {action} on {resource}");
            }
        }
    }
    assert!(
        exact_and_nonempty > 0,
        "some version pairs differ without wildcards"
    );
}

#[test]
fn v0_11_to_v0_12_adds_the_expected_permissions() {
    let missing = missing_pairs(&read_union("0.12"), &read_union("0.11"));
    assert!(missing.contains(&(
        "iam:updateopenidconnectproviderthumbprint".to_string(),
        "arn:aws:iam::111122223333:oidc-provider/*".to_string()
    )));
    assert!(missing.iter().any(|(a, _)| a == "logs:filterlogevents"));
}

const MINIMAL: &str = r#"
Parameters:
  Name:
    Type: String
    Default: app
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub '${Name}-role'
      Path: /svc/
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: { Service: ec2.amazonaws.com }
            Action: sts:AssumeRole
      ManagedPolicyArns:
        - !Ref Managed
        - arn:aws:iam::aws:policy/ReadOnlyAccess
      Policies:
        - PolicyName: inline
          PolicyDocument:
            Statement:
              Effect: Allow
              Action: s3:GetObject
              Resource: !Sub
                - 'arn:${AWS::Partition}:s3:::${Bucket}/*'
                - Bucket: !Join ['-', [!Ref Name, data]]
  Managed:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: iam:PassRole
            Resource: !GetAtt Role.Arn
  Attached:
    Type: 'AWS::IAM::Policy'
    Properties:
      PolicyName: attached
      Roles: [!Ref Role]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: sqs:SendMessage
            Resource: {"Fn::Sub": "arn:aws:sqs:${AWS::Region}:${AWS::AccountID}:q-${!Literal}"}
  Unrelated:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: other
      Roles: [someone-else]
      PolicyDocument: !If [Cond, {}, {}]
"#;

#[test]
fn all_policy_sources_attach_to_the_role() {
    let template = read_template(MINIMAL, &context()).unwrap();
    let role = &template.roles[0];
    assert_eq!(role.role_name, "app-role");
    assert_eq!(role.arn, "arn:aws:iam::111122223333:role/svc/app-role");
    let names: Vec<&str> = role.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["inline", "Managed", "attached"]);
    assert_eq!(
        role.external_managed_policy_arns,
        vec!["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    );
    let resource = |n: usize| {
        role.policies[n].document.statements[0]
            .resource
            .clone()
            .unwrap()
    };
    assert_eq!(
        resource(0),
        PatternSet::Only(vec!["arn:aws:s3:::app-data/*".into()])
    );
    assert_eq!(
        resource(1),
        PatternSet::Only(vec!["arn:aws:iam::111122223333:role/svc/app-role".into()])
    );
    assert_eq!(
        resource(2),
        PatternSet::Only(vec![
            "arn:aws:sqs:us-east-1:111122223333:q-${Literal}".into()
        ])
    );
}

#[test]
fn json_templates_are_read_too() {
    let json = r#"{"Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{
            "RoleName":{"Fn::Join":["",["a","b"]]},
            "AssumeRolePolicyDocument":{"Statement":[{"Effect":"Allow",
              "Principal":{"AWS":{"Fn::Sub":"arn:aws:iam::${AWS::AccountId}:root"}},"Action":"sts:AssumeRole"}]}}}}}"#;
    let template = read_template(json, &context()).unwrap();
    assert_eq!(template.roles[0].role_name, "ab");
}

#[test]
fn role_without_role_name_is_named_by_logical_id() {
    let text = "Resources:\n  MyRole:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Statement:\n          Effect: Allow\n          Principal: {AWS: '1'}\n          Action: sts:AssumeRole\n";
    let template = read_template(text, &context()).unwrap();
    assert_eq!(template.roles[0].role_name, "MyRole");
}

#[test]
fn unknown_tag_is_an_error_with_line_and_path() {
    let text =
        "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Foo x\n";
    let err = read_err(text, &context());
    assert_eq!(err.kind, TemplateErrorKind::UnknownTag);
    assert_eq!(err.path, "Resources.R.Properties.RoleName");
    assert_eq!(err.line, Some(5));
    assert_eq!(
        err.to_string(),
        "5:17: Resources.R.Properties.RoleName: unknown tag !Foo (not a CloudFormation function)"
    );
}

#[test]
fn unknown_long_form_function_is_an_error() {
    let text = r#"{"Resources":{"R":{"Type":"X","Properties":{"A":{"Fn::Frobnicate":"x"}}}}}"#;
    assert_eq!(
        read_err(text, &context()).kind,
        TemplateErrorKind::UnknownTag
    );
}

#[test]
fn unsupported_function_where_it_must_be_resolved_is_an_error() {
    let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Select [0, [a]]\n      AssumeRolePolicyDocument: {}\n";
    let err = read_err(text, &context());
    assert_eq!(err.kind, TemplateErrorKind::Unsupported);
    assert!(err.message.contains("Select"), "{err}");
}

#[test]
fn missing_reference_names_the_target_and_path() {
    let text = "Resources:\n  P:\n    Type: AWS::IAM::Policy\n    Properties:\n      Roles: [!Ref Ghost]\n      PolicyDocument: {}\n";
    let err = read_err(text, &context());
    assert_eq!(err.kind, TemplateErrorKind::MissingReference);
    assert_eq!(err.path, "Resources.P.Properties.Roles[0]");
    assert!(err.message.contains("\"Ghost\""), "{err}");
    assert_eq!(err.line, Some(5));

    let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !GetAtt Ghost.Arn\n";
    assert_eq!(
        read_err(text, &context()).kind,
        TemplateErrorKind::MissingReference
    );
    let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Sub '${Ghost}'\n";
    assert_eq!(
        read_err(text, &context()).kind,
        TemplateErrorKind::MissingReference
    );
}

#[test]
fn cyclic_references_are_an_error() {
    let text = "Resources:\n  A:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Sub '${B}-a'\n  B:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Ref A\n";
    let err = read_err(text, &context());
    assert_eq!(err.kind, TemplateErrorKind::CyclicReference);
    assert!(
        err.message
            .contains("A.RoleName -> B.RoleName -> A.RoleName"),
        "{err}"
    );
    let text = "Resources:\n  A:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !GetAtt A.Arn\n";
    assert_eq!(
        read_err(text, &context()).kind,
        TemplateErrorKind::CyclicReference
    );
    let text = "Resources:\n  A:\n    Type: AWS::IAM::Role\n    Properties:\n      Path: !Sub '/${A.Arn}/'\n";
    assert_eq!(
        read_err(text, &context()).kind,
        TemplateErrorKind::CyclicReference
    );
}

#[test]
fn long_reference_chains_stop_without_overflowing() {
    let mut text = String::from("Resources:\n");
    for n in 0..500 {
        text.push_str(&format!(
            "  R{n}:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Ref R{}\n",
            n + 1
        ));
    }
    text.push_str("  R500:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: end\n");
    assert_eq!(
        read_err(&text, &context()).kind,
        TemplateErrorKind::CyclicReference
    );
}

#[test]
fn non_mapping_resources_and_resources_are_errors() {
    let err = read_err("Resources: [a]\n", &context());
    assert_eq!(err.kind, TemplateErrorKind::Structure);
    assert_eq!(
        err.to_string(),
        "1:1: Resources: expected a mapping, found a list"
    );
    assert_eq!(
        read_err("Resources:\n  R: 3\n", &context()).path,
        "Resources.R"
    );
    assert_eq!(read_err("Description: x\n", &context()).path, "Resources");
    assert_eq!(
        read_err("- a\n", &context()).kind,
        TemplateErrorKind::Structure
    );
    assert_eq!(
        read_err("Resources:\n  R: {Properties: {}}\n", &context()).path,
        "Resources.R.Type"
    );
}

#[test]
fn yaml_syntax_error_reports_line_and_column() {
    let err = read_err("Resources:\n  R:\n   Type: x\n  y: [\n", &context());
    assert_eq!(err.kind, TemplateErrorKind::Syntax);
    assert!(err.line.is_some());
    assert!(err.to_string().contains("not valid YAML"), "{err}");
    let err = read_err("a: 1\na: 2\n", &context());
    assert_eq!(err.kind, TemplateErrorKind::Syntax);
}

#[test]
fn policy_errors_carry_the_full_field_path() {
    let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Statement: {Effect: Allow, Principal: {AWS: '1'}, Action: sts:AssumeRole}\n      Policies:\n        - PolicyName: p\n          PolicyDocument:\n            Statement:\n              - {Effect: Allow, Action: s3:GetObject, Resource: '*'}\n              - {Effect: Allow, Action: s3:GetObject, Resource: '*'}\n              - {Sid: x, Effect: Allow, Action: s3:GetObject, Resource: 7}\n";
    let err = read_err(text, &context());
    assert_eq!(err.kind, TemplateErrorKind::Policy);
    assert_eq!(
        err.path,
        "Resources.R.Properties.Policies[0].PolicyDocument.Statement[2].Resource"
    );
    assert!(err.message.contains("found a number"), "{err}");
}

#[test]
fn hostile_inputs_error_without_panicking() {
    let deep = "a: ".to_string() + &"[".repeat(10_000);
    assert!(read_template(&deep, &context()).is_err());
    let laughs = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
    assert!(read_template(laughs, &context()).is_err());
    for text in [
            "", "~", "Resources: ~", "Resources: {R: {Type: AWS::IAM::Role}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Ref }}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub '${'}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub '${}'}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub [1, 2]}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !GetAtt [R]}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Join [',']}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Ref AWS::StackName}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: .nan}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: x, Policies: 3, AssumeRolePolicyDocument: {Statement: []}}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: '{not json'}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {Statement: []}, ManagedPolicyArns: [1, [2]]}}}",
            "Parameters: 3\nResources: {}",
            "Resources: {? [a] : b}",
        ] {
            assert!(read_template(text, &context()).is_err(), "{text}");
        }
}

#[test]
fn no_value_drops_the_field() {
    let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Ref AWS::NoValue\n      AssumeRolePolicyDocument:\n        Statement: {Effect: Allow, Principal: {AWS: '1'}, Action: sts:AssumeRole, Condition: !Ref AWS::NoValue}\n";
    let template = read_template(text, &context()).unwrap();
    assert_eq!(template.roles[0].role_name, "R");
    assert!(template.roles[0].trust_policy.statements[0]
        .conditions
        .is_empty());
}

#[test]
fn list_parameters_resolve_to_lists() {
    let text = "Parameters:\n  Arns: {Type: CommaDelimitedList, Default: 'arn:aws:iam::1:root, arn:aws:iam::2:root'}\nResources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Statement: {Effect: Allow, Principal: {AWS: !Ref Arns}, Action: sts:AssumeRole}\n";
    let template = read_template(text, &context()).unwrap();
    match &template.roles[0].trust_policy.statements[0].principal {
        Some(PrincipalScope::Only(Principals::Listed(set))) => assert_eq!(set.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn conditions_decide_which_roles_exist_and_if_picks_a_branch() {
    let text = r#"
Parameters:
  Env: {Type: String}
  Region2: {Type: String, Default: ''}
Conditions:
  IsProd: {"Fn::Equals": [{"Ref": Env}, prod]}
  HasSecond: !Not [!Equals [!Ref Region2, '']]
  Both: !And [!Condition IsProd, !Condition HasSecond]
  Either: !Or [!Condition IsProd, !Condition HasSecond]
  Loop: !Not [!Condition Loop]
Resources:
  Always:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !If [Either, !Sub 'r-${Env}', !Ref AWS::NoValue]
      AssumeRolePolicyDocument:
        Statement: {Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}
  ProdAndSecond:
    Type: AWS::IAM::Role
    Condition: Both
    Properties:
      AssumeRolePolicyDocument:
        Statement: {Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}
"#;
    let read = |env: &str, second: &str| {
        read_template(
            text,
            &context()
                .with_parameter("Env", env)
                .with_parameter("Region2", second),
        )
        .unwrap()
    };
    let prod = read("prod", "eu-west-1");
    let names: Vec<(&str, bool)> = prod
        .roles
        .iter()
        .map(|r| (r.role_name.as_str(), r.generated_name))
        .collect();
    assert_eq!(names, [("r-prod", false), ("ProdAndSecond", true)]);
    let dev = read("dev", "");
    assert_eq!(dev.roles.len(), 1);
    assert!(dev.roles[0].generated_name, "AWS::NoValue drops RoleName");

    let unknown = read_template(text, &context().with_unknown_parameter("Env"));
    let err = unknown.unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::MissingParameter, "{err}");

    let looping = text.replace("Condition: Both", "Condition: Loop");
    let err = read_template(&looping, &context().with_parameter("Env", "prod")).unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::CyclicReference, "{err}");
}
