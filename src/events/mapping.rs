//! Pure: from one SQS message body (an EventBridge envelope of a CloudTrail management
//! event) to the target it makes stale, or the reason it is ignored. No I/O, no clock.
//!
//! The envelope's own `account` field is not trusted to be there (moto leaves it out, and a
//! forwarded event carries the forwarder's bus account in it): the account and region come
//! from CloudTrail's `detail.recipientAccountId` and `detail.awsRegion`, falling back to the
//! envelope's. IAM is global, so an IAM event's target is the account's `global` scope,
//! whatever region it was delivered in.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::rules::iam::GLOBAL_REGION;

/// The `detail-type` EventBridge gives CloudTrail management events.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// The EC2 calls that change what the VPC rules read: routes, route tables and their
/// associations, subnets, NAT and internet gateways, VPC endpoints and their settings,
/// security groups and their rules, VPC attributes, and CIDR associations.
pub const EC2_EVENTS: &[&str] = &[
    "CreateRoute",
    "DeleteRoute",
    "ReplaceRoute",
    "CreateRouteTable",
    "DeleteRouteTable",
    "AssociateRouteTable",
    "DisassociateRouteTable",
    "ReplaceRouteTableAssociation",
    "CreateSubnet",
    "DeleteSubnet",
    "ModifySubnetAttribute",
    "CreateNatGateway",
    "DeleteNatGateway",
    "CreateInternetGateway",
    "DeleteInternetGateway",
    "AttachInternetGateway",
    "DetachInternetGateway",
    "CreateVpcEndpoint",
    "DeleteVpcEndpoints",
    "ModifyVpcEndpoint",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "ModifySecurityGroupRules",
    "CreateVpc",
    "DeleteVpc",
    "ModifyVpcAttribute",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
    "AssociateSubnetCidrBlock",
    "DisassociateSubnetCidrBlock",
];

/// The IAM calls that change what the IAM rules read: roles, inline and attached policies,
/// trust policies, permission boundaries, and managed policy versions.
pub const IAM_EVENTS: &[&str] = &[
    "CreateRole",
    "DeleteRole",
    "UpdateRole",
    "UpdateAssumeRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "DeletePolicy",
];

/// What a re-scan covers: one account in one region, or an account's IAM (`region` is
/// `global`), the keys the daemon's merged result is kept by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub account_id: String,
    pub region: String,
}

impl Target {
    pub fn new(account_id: &str, region: &str) -> Target {
        Target {
            account_id: account_id.to_string(),
            region: region.to_string(),
        }
    }

    pub fn is_global(&self) -> bool {
        self.region == GLOBAL_REGION
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account_id, self.region)
    }
}

/// The service an event came from, as a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Ec2,
    Iam,
    Other,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Ec2 => "aws.ec2",
            Source::Iam => "aws.iam",
            Source::Other => "other",
        }
    }
}

/// A change event that makes `target` stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub target: Target,
    pub source: Source,
    /// One of [`EC2_EVENTS`] or [`IAM_EVENTS`].
    pub event_name: &'static str,
    /// The event's `time`: when the change happened.
    pub time: Option<DateTime<Utc>>,
    /// The VPC the call names in its request, when it names one.
    pub vpc_id: Option<String>,
}

/// Why a message leads to no re-scan. Each is counted, logged once per kind, and deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// Not JSON, not an EventBridge envelope of a CloudTrail event, or missing the account.
    Malformed { reason: String },
    /// A call this auditor does not read the result of (or another service's).
    UnknownEvent { source: Source, event_name: String },
    /// A call that failed (CloudTrail's `errorCode`): nothing changed.
    FailedCall {
        source: Source,
        event_name: &'static str,
    },
    /// An account or region this daemon does not audit.
    NotAudited {
        source: Source,
        event_name: &'static str,
        target: Target,
    },
}

impl Ignored {
    /// The `outcome` label, and the kind that is logged once.
    pub fn outcome(&self) -> &'static str {
        match self {
            Ignored::Malformed { .. } => "malformed",
            Ignored::UnknownEvent { .. } => "unknown_event",
            Ignored::FailedCall { .. } => "failed_call",
            Ignored::NotAudited { .. } => "not_audited",
        }
    }

    pub fn source(&self) -> Source {
        match self {
            Ignored::Malformed { .. } => Source::Other,
            Ignored::UnknownEvent { source, .. }
            | Ignored::FailedCall { source, .. }
            | Ignored::NotAudited { source, .. } => *source,
        }
    }

    /// The event name as a bounded label: a known name, or `other`.
    pub fn event_name_label(&self) -> &'static str {
        match self {
            Ignored::FailedCall { event_name, .. } | Ignored::NotAudited { event_name, .. } => {
                event_name
            }
            Ignored::Malformed { .. } | Ignored::UnknownEvent { .. } => "other",
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    source: Option<String>,
    account: Option<String>,
    region: Option<String>,
    time: Option<String>,
    detail: Option<Detail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    event_source: Option<String>,
    event_name: Option<String>,
    aws_region: Option<String>,
    recipient_account_id: Option<String>,
    error_code: Option<String>,
    request_parameters: Option<serde_json::Value>,
}

/// Reads one message body. `audited` says whether a target is one this daemon scans.
pub fn classify(body: &str, audited: &dyn Fn(&Target) -> bool) -> Result<Change, Ignored> {
    let malformed = |reason: &str| Ignored::Malformed {
        reason: reason.to_string(),
    };
    let envelope: Envelope = serde_json::from_str(body)
        .map_err(|e| malformed(&format!("not an EventBridge event (JSON): {e}")))?;
    let detail = envelope
        .detail
        .ok_or_else(|| malformed("the event has no detail"))?;
    if envelope.detail_type.as_deref() != Some(CLOUDTRAIL_DETAIL_TYPE) {
        return Err(malformed(
            "detail-type is not \"AWS API Call via CloudTrail\"",
        ));
    }
    let service = envelope
        .source
        .as_deref()
        .or(detail.event_source.as_deref().and_then(|s| match s {
            "ec2.amazonaws.com" => Some("aws.ec2"),
            "iam.amazonaws.com" => Some("aws.iam"),
            _ => None,
        }));
    let source = match service {
        Some("aws.ec2") => Source::Ec2,
        Some("aws.iam") => Source::Iam,
        _ => Source::Other,
    };
    let name = detail
        .event_name
        .ok_or_else(|| malformed("the event has no detail.eventName"))?;
    let known = match source {
        Source::Ec2 => EC2_EVENTS,
        Source::Iam => IAM_EVENTS,
        Source::Other => &[],
    };
    let Some(event_name) = known.iter().copied().find(|n| *n == name) else {
        return Err(Ignored::UnknownEvent {
            source,
            event_name: name,
        });
    };
    let account = detail
        .recipient_account_id
        .or(envelope.account)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| malformed("no 12-digit detail.recipientAccountId or account"))?;
    let region = match source {
        Source::Iam => GLOBAL_REGION.to_string(),
        _ => detail
            .aws_region
            .or(envelope.region)
            .filter(|r| !r.is_empty() && r.len() < 32 && !r.contains(char::is_whitespace))
            .ok_or_else(|| malformed("no detail.awsRegion or region"))?,
    };
    let target = Target {
        account_id: account,
        region,
    };
    if detail.error_code.is_some() {
        return Err(Ignored::FailedCall { source, event_name });
    }
    if !audited(&target) {
        return Err(Ignored::NotAudited {
            source,
            event_name,
            target,
        });
    }
    let time = envelope
        .time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let vpc_id = detail
        .request_parameters
        .as_ref()
        .and_then(|p| p.get("vpcId"))
        .and_then(|v| v.as_str())
        .filter(|v| v.starts_with("vpc-"))
        .map(str::to_string);
    Ok(Change {
        target,
        source,
        event_name,
        time,
        vpc_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, name: &str, account: &str, region: &str) -> String {
        serde_json::json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "AWS API Call via CloudTrail",
            "source": source,
            "time": "2026-12-05T04:00:00Z",
            "region": region,
            "resources": [],
            "detail": {
                "eventSource": format!("{}.amazonaws.com", source.trim_start_matches("aws.")),
                "eventName": name,
                "awsRegion": region,
                "recipientAccountId": account,
                "requestParameters": {"vpcId": "vpc-0abc", "routeTableId": "rtb-1"}
            }
        })
        .to_string()
    }

    fn all(_: &Target) -> bool {
        true
    }

    #[test]
    fn an_ec2_change_targets_its_account_and_region() {
        let change = classify(
            &event("aws.ec2", "DeleteRoute", "123456789012", "eu-west-1"),
            &all,
        )
        .unwrap();
        assert_eq!(change.target, Target::new("123456789012", "eu-west-1"));
        assert_eq!(change.source, Source::Ec2);
        assert_eq!(change.event_name, "DeleteRoute");
        assert_eq!(change.vpc_id.as_deref(), Some("vpc-0abc"));
        assert_eq!(
            change.time.unwrap().to_rfc3339(),
            "2026-12-05T04:00:00+00:00"
        );
    }

    #[test]
    fn an_iam_change_targets_the_accounts_global_scope() {
        let change = classify(
            &event("aws.iam", "PutRolePolicy", "123456789012", "us-east-1"),
            &all,
        )
        .unwrap();
        assert_eq!(change.target, Target::new("123456789012", "global"));
        assert!(change.target.is_global());
    }

    #[test]
    fn the_envelope_account_is_the_fallback_for_a_missing_recipient_account() {
        let mut body: serde_json::Value = serde_json::from_str(&event(
            "aws.ec2",
            "CreateRoute",
            "123456789012",
            "us-east-1",
        ))
        .unwrap();
        body["detail"]
            .as_object_mut()
            .unwrap()
            .remove("recipientAccountId");
        body["account"] = "210987654321".into();
        let change = classify(&body.to_string(), &all).unwrap();
        assert_eq!(change.target.account_id, "210987654321");
    }

    #[test]
    fn unknown_unaudited_failed_and_malformed_are_told_apart() {
        let unknown = classify(
            &event("aws.ec2", "RunInstances", "123456789012", "us-east-1"),
            &all,
        )
        .unwrap_err();
        assert_eq!(unknown.outcome(), "unknown_event");
        assert_eq!(unknown.event_name_label(), "other", "names stay bounded");
        let other = classify(
            &event("aws.s3", "PutBucketPolicy", "123456789012", "us-east-1"),
            &all,
        )
        .unwrap_err();
        assert_eq!(other.outcome(), "unknown_event");
        assert_eq!(other.source(), Source::Other);

        let only_eu = |t: &Target| t.region == "eu-west-1";
        let not_audited = classify(
            &event("aws.ec2", "CreateRoute", "123456789012", "us-east-1"),
            &only_eu,
        )
        .unwrap_err();
        assert_eq!(not_audited.outcome(), "not_audited");
        assert_eq!(not_audited.event_name_label(), "CreateRoute");

        let mut failed: serde_json::Value = serde_json::from_str(&event(
            "aws.ec2",
            "CreateRoute",
            "123456789012",
            "us-east-1",
        ))
        .unwrap();
        failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
        assert_eq!(
            classify(&failed.to_string(), &all).unwrap_err().outcome(),
            "failed_call"
        );

        for body in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#,
            r#"{"detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","detail":{"eventName":"CreateRoute","awsRegion":"us-east-1"}}"#,
            r#"{"detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","detail":{"eventName":"CreateRoute","awsRegion":"us-east-1","recipientAccountId":"12345"}}"#,
            r#"{"detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","detail":{"eventName":"CreateRoute","recipientAccountId":"123456789012"}}"#,
        ] {
            let ignored = classify(body, &all).unwrap_err();
            assert_eq!(ignored.outcome(), "malformed", "{body}");
        }
    }
}
