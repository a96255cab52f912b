//! `--format fix-script`: the scan's remediation plan ([`crate::plan`]) as one bash script.
//!
//! The script is grouped by account, region and VPC or role. It starts with
//! `set -euo pipefail`, checks first that every environment variable it reads is set (the
//! external IDs a trust policy needs, never written into the script), prints each step and
//! command before running it, and quotes in a comment the findings each step fixes. Every
//! command names its region, and the profile of its account when
//! `VPC_AUDITOR_PROFILE_<account>` is set. Manual and needs-decision steps are written as
//! comments, with the reason and the closest safe action, and are not run. With nothing
//! to fix the script has no steps.

use std::collections::BTreeSet;

use crate::plan::{environment_variables, Plan, StepKind};

/// Single-quotes `text` for bash.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` as comment lines.
fn comment(out: &mut String, prefix: &str, text: &str) {
    for line in text.lines() {
        out.push_str(&format!("# {prefix}{line}\n"));
    }
}

/// Adds the account's profile to each `aws` invocation in `command`.
fn with_profile(command: &str, account: &str) -> String {
    let profile = format!("aws ${{PROFILE_{account}:+--profile \"$PROFILE_{account}\"}} ");
    let body = command.replace("$(aws ", &format!("$({profile}"));
    match body.strip_prefix("aws ") {
        Some(rest) => format!("{profile}{rest}"),
        None => body,
    }
}

/// Renders `plan` as a bash script; `generated_at` goes in its header.
pub fn render(plan: &Plan, generated_at: &str) -> String {
    let mut out = String::new();
    out.push_str("#!/usr/bin/env bash\n");
    out.push_str(&format!(
        "# Fix script written by {} {} at {generated_at}.\n",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(
        "# Review it before running. Each step quotes the findings it fixes; steps marked MANUAL or\n\
         # NEEDS DECISION are comments and do not run. Set VPC_AUDITOR_PROFILE_<account id> to use an\n\
         # AWS CLI profile per account; otherwise the default credentials are used.\n",
    );
    out.push_str("set -euo pipefail\n\n");
    let variables: BTreeSet<String> = plan
        .automatic_steps()
        .flat_map(|s| s.commands.iter())
        .flat_map(|c| environment_variables(c))
        .collect();
    for variable in &variables {
        out.push_str(&format!(
            ": \"${{{variable}:?set {variable} in the environment: a trust policy below reads it}}\"\n"
        ));
    }
    if !variables.is_empty() {
        out.push('\n');
    }
    if plan.step_count() == 0 {
        out.push_str("echo 'vpc-auditor: nothing to fix'\n");
        return out;
    }
    let mut accounts = BTreeSet::new();
    let mut number = 0;
    for group in &plan.groups {
        let account = &group.account_id;
        out.push_str(&format!(
            "# ===== account {account}, region {}, {} =====\n",
            group.region,
            group.target.describe()
        ));
        if accounts.insert(account.clone()) {
            out.push_str(&format!(
                "PROFILE_{account}=\"${{VPC_AUDITOR_PROFILE_{account}:-}}\"\n"
            ));
        }
        for step in &group.steps {
            number += 1;
            out.push('\n');
            let label = match step.kind {
                StepKind::Automatic => "",
                StepKind::Manual => "MANUAL, not run: ",
                StepKind::NeedsDecision => "NEEDS DECISION, not run: ",
            };
            comment(
                &mut out,
                "",
                &format!("Step {number}: {label}{}", step.summary),
            );
            for fixed in &step.fixes {
                comment(
                    &mut out,
                    "  fixes ",
                    &format!(
                        "{} on {}: {}",
                        fixed.rule_id, fixed.resource_id, fixed.message
                    ),
                );
            }
            if let Some(reason) = &step.reason {
                comment(&mut out, "  why: ", reason);
            }
            if step.kind == StepKind::Automatic {
                out.push_str(&format!(
                    "echo {}\n",
                    quote(&format!("==> step {number}: {}", step.summary))
                ));
                for command in &step.commands {
                    out.push_str(&format!("printf '+ %s\\n' {}\n", quote(command)));
                    out.push_str(&with_profile(command, account));
                    out.push('\n');
                }
            } else {
                for command in &step.commands {
                    comment(&mut out, "  closest safe action: ", command);
                }
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "echo 'vpc-auditor: {number} step(s) done or listed'\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{FixedFinding, PlanGroup, Step, Target};

    fn plan_of(steps: Vec<Step>) -> Plan {
        Plan {
            groups: vec![PlanGroup {
                account_id: "111122223333".into(),
                region: "us-east-1".into(),
                target: Target::Vpc {
                    vpc_id: "vpc-1".into(),
                },
                steps,
            }],
        }
    }

    #[test]
    fn an_empty_plan_is_a_script_with_no_steps() {
        let text = render(&Plan::default(), "t");
        assert!(text.starts_with("#!/usr/bin/env bash\n"));
        assert!(text.contains("set -euo pipefail\n"));
        assert!(!text.contains("Step "));
        assert!(!text.contains("aws "), "{text}");
    }

    #[test]
    fn steps_quote_their_findings_and_pass_the_profile_to_every_aws_call() {
        let plan = plan_of(vec![
            Step {
                kind: StepKind::Automatic,
                summary: "make a NAT".into(),
                fixes: vec![FixedFinding {
                    rule_id: "nat.same_az".into(),
                    resource_id: "subnet-1".into(),
                    message: "Private subnet subnet-1 uses a NAT in another AZ".into(),
                }],
                commands: vec![
                    "NAT_1=$(aws ec2 create-nat-gateway --subnet-id s --region us-east-1 --query NatGateway.NatGatewayId --output text)".into(),
                    "aws ec2 wait nat-gateway-available --nat-gateway-ids \"$NAT_1\" --region us-east-1".into(),
                ],
                reason: None,
            },
            Step {
                kind: StepKind::Manual,
                summary: "resize".into(),
                fixes: vec![],
                commands: vec!["aws ec2 create-subnet --region us-east-1".into()],
                reason: Some("cannot resize".into()),
            },
        ]);
        let text = render(&plan, "t");
        assert!(text.contains("# Step 1: make a NAT\n"), "{text}");
        assert!(text.contains("#   fixes nat.same_az on subnet-1: Private subnet subnet-1"));
        assert!(text.contains(
            "NAT_1=$(aws ${PROFILE_111122223333:+--profile \"$PROFILE_111122223333\"} ec2 create-nat-gateway"
        ));
        assert!(text.contains(
            "\naws ${PROFILE_111122223333:+--profile \"$PROFILE_111122223333\"} ec2 wait nat-gateway-available"
        ));
        assert!(text.contains("# Step 2: MANUAL, not run: resize"));
        assert!(text.contains("#   closest safe action: aws ec2 create-subnet"));
        assert!(!text.contains("\naws ec2 create-subnet"));
    }

    #[test]
    fn a_secret_is_checked_for_and_never_written() {
        let plan = plan_of(vec![Step {
            kind: StepKind::Automatic,
            summary: "trust".into(),
            fixes: vec![],
            commands: vec![
                r#"aws iam update-assume-role-policy --role-name r --policy-document '{"c":["'"$UNION_EXTERNAL_ID"'"]}'"#.into(),
            ],
            reason: None,
        }]);
        let text = render(&plan, "t");
        assert!(
            text.contains(": \"${UNION_EXTERNAL_ID:?set UNION_EXTERNAL_ID"),
            "{text}"
        );
    }

    #[test]
    fn the_script_is_valid_bash() {
        let plan = plan_of(vec![Step {
            kind: StepKind::Automatic,
            summary: "it's quoted".into(),
            fixes: vec![],
            commands: vec!["aws ec2 modify-vpc-attribute --vpc-id v --enable-dns-support '{\"Value\":true}' --region us-east-1".into()],
            reason: None,
        }]);
        let text = render(&plan, "t");
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(&text)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
