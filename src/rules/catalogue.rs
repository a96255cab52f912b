//! The rule catalogue: every rule's stable id, default severity, resource type, what it
//! checks and why, in one table that the report, `docs/rules.md` and the metrics all read.
//!
//! Ids are a public interface: reports, metric labels and alert rules use them, so an id is
//! never renamed.

use crate::finding::{ResourceType, Severity};

/// The static description of one rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: &'static str,
    pub default_severity: Severity,
    pub resource_type: ResourceType,
    /// What the rule checks, in one line.
    pub checks: &'static str,
    /// Why the vendors ask for it.
    pub rationale: &'static str,
}

pub const VPC_AZ_COUNT: &str = "vpc.az_count";
pub const VPC_CIDR_SIZE: &str = "vpc.cidr_size";
pub const VPC_IGW_ATTACHED: &str = "vpc.igw_attached";
pub const VPC_DNS_ATTRIBUTES: &str = "vpc.dns_attributes";
pub const VPC_PUBLIC_SUBNET_PER_AZ: &str = "vpc.public_subnet_per_az";
pub const VPC_PRIVATE_SUBNET_PER_AZ: &str = "vpc.private_subnet_per_az";
pub const SUBNET_PRIVATE_SIZE: &str = "subnet.private_size";
pub const SUBNET_PUBLIC_SIZE: &str = "subnet.public_size";
pub const SUBNET_PRIVATE_EGRESS: &str = "subnet.private_egress";
pub const SUBNET_IP_CAPACITY: &str = "subnet.ip_capacity";
pub const VPC_CORPORATE_EGRESS: &str = "vpc.corporate_egress";
pub const DATA_PLANE_VPC_MISSING: &str = "data_plane.vpc_missing";
pub const DATA_PLANE_SUBNET_MISSING: &str = "data_plane.subnet_missing";
pub const DATA_PLANE_ONE_PER_AZ: &str = "data_plane.one_per_az";
pub const NAT_IN_PUBLIC_SUBNET: &str = "nat.in_public_subnet";
pub const NAT_SAME_AZ: &str = "nat.same_az";
pub const ENDPOINT_S3_GATEWAY: &str = "endpoint.s3_gateway";
pub const ENDPOINT_INTERFACE_REQUIRED: &str = "endpoint.interface_required";
pub const ENDPOINT_INTERFACE_AZ_COVERAGE: &str = "endpoint.interface_az_coverage";
pub const ENDPOINT_PRIVATE_DNS: &str = "endpoint.private_dns";
pub const ENDPOINT_SECURITY_GROUP: &str = "endpoint.security_group";
pub const IAM_ROLE_MISSING: &str = "iam.role_missing";
pub const IAM_POLICY_MISSING_PERMISSIONS: &str = "iam.policy_missing_permissions";
pub const IAM_POLICY_EXCESS_PERMISSIONS: &str = "iam.policy_excess_permissions";
pub const IAM_TRUST_POLICY_DRIFT: &str = "iam.trust_policy_drift";
pub const ECR_CROSS_ACCOUNT_PULL: &str = "ecr.cross_account_pull";
pub const SECRETS_REGION: &str = "secrets.region";
pub const SECRETS_MISSING: &str = "secrets.missing";
pub const IAM_PINNED_ROLE_DRIFT: &str = "iam.pinned_role_drift";
pub const IAM_CUSTOM_ROLE_POLICY: &str = "iam.custom_role_policy";
pub const IAM_CUSTOM_ROLE_TRUST: &str = "iam.custom_role_trust";
pub const IAM_FEATURE_POLICY_MISSING: &str = "iam.feature_policy_missing";
pub const IAM_VPC_SCOPE_RECOMMENDED: &str = "iam.vpc_scope_recommended";
pub const SUPPRESSION_EXPIRED: &str = "suppression.expired";

const fn rule(
    id: &'static str,
    default_severity: Severity,
    resource_type: ResourceType,
    checks: &'static str,
    rationale: &'static str,
) -> RuleInfo {
    RuleInfo {
        id,
        default_severity,
        resource_type,
        checks,
        rationale,
    }
}

use ResourceType::{
    EcrRepository, IamRole, NatGateway, Secret, Subnet, Suppression, Vpc, VpcEndpoint,
};
use Severity::{Critical, High, Info, Low, Medium};

/// Every rule vpc-auditor knows, in report order.
#[rustfmt::skip]
pub const CATALOGUE: &[RuleInfo] = &[
    rule(VPC_AZ_COUNT, High, Vpc,
        "The VPC's subnets span at least `min_azs` availability zones.",
        "The data plane spreads nodes over zones; the vendor recommends a minimum of 3."),
    rule(VPC_CIDR_SIZE, Medium, Vpc,
        "The VPC's largest IPv4 CIDR, primary or secondary, is at least as large as `max_prefix_length` (/16).",
        "One IP is allocated per pod with most CNIs; a /16 leaves room for /18 private subnets in every zone."),
    rule(VPC_IGW_ATTACHED, High, Vpc,
        "An internet gateway is attached and at least one subnet routes 0.0.0.0/0 to it.",
        "Public subnets need an internet gateway, and NAT gateways reach the internet through it."),
    rule(VPC_DNS_ATTRIBUTES, High, Vpc,
        "`enableDnsSupport` and `enableDnsHostnames` are both on.",
        "Private DNS on interface endpoints only works when both attributes are enabled."),
    rule(VPC_PUBLIC_SUBNET_PER_AZ, Medium, Vpc,
        "Every AZ the VPC uses has a public subnet routed to the internet gateway.",
        "Load balancers and NAT gateways live in a public subnet in each zone."),
    rule(VPC_PRIVATE_SUBNET_PER_AZ, Medium, Vpc,
        "Every AZ the VPC uses has a private subnet.",
        "Worker nodes and pods run in a private subnet in each zone."),
    rule(SUBNET_PRIVATE_SIZE, Medium, Subnet,
        "A private subnet is at least as large as `max_prefix_length` (/18).",
        "With most CNIs one IP is allocated per pod; small subnets limit how many pods can start when projects scale."),
    rule(SUBNET_PUBLIC_SIZE, Info, Subnet,
        "A public subnet is no larger than `max_prefix_length` (/28) needs it to be.",
        "Public subnets only hold load balancers and NAT gateways; the vendor recommends /28."),
    rule(SUBNET_PRIVATE_EGRESS, High, Subnet,
        "A private subnet's 0.0.0.0/0 route reaches the internet: a public NAT gateway that exists and is available, or a transit gateway, virtual private gateway, Cloud WAN, NAT instance or firewall endpoint (private NAT gateways, blackholes, missing routes and unknown targets fail).",
        "The guide asks for \"A private subnet\" with \"A NAT gateway setup for internet access\" (image pulls, the control plane)."),
    rule(VPC_CORPORATE_EGRESS, Low, Vpc,
        "Private subnets that leave through a transit gateway, virtual private gateway, Cloud WAN, NAT instance or firewall endpoint instead of a NAT gateway, once per VPC (`accepted_egress` kinds are not reported).",
        "A deliberate corporate egress design works, but it is not the NAT gateway the vendor recommends: the vendor's traffic must be allowed through it."),
    rule(DATA_PLANE_VPC_MISSING, Critical, Vpc,
        "The VPC a declared data plane (`data_planes:`) names exists in its region.",
        "The customer handed the vendor this VPC ID; without it the data plane has nowhere to run."),
    rule(DATA_PLANE_SUBNET_MISSING, Critical, Subnet,
        "Every subnet a declared data plane names exists, in the declared VPC.",
        "The customer handed the vendor these subnet IDs; a missing one breaks node groups and load balancers."),
    rule(DATA_PLANE_ONE_PER_AZ, Medium, Vpc,
        "A declared data plane has one public and one private subnet in each of its zones, no more.",
        "The vendor's handover asks for \"Public subnet IDs (one per availability zone)\" and \"Private subnet IDs (one per availability zone)\"."),
    rule(SUBNET_IP_CAPACITY, Medium, Subnet,
        "A subnet's free IPs stay above `min_free_percent` and `min_free_ips`.",
        "When a subnet runs out of IPs, new pods and nodes fail to start."),
    rule(NAT_IN_PUBLIC_SUBNET, High, NatGateway,
        "A NAT gateway sits in a public subnet, one routed to the internet gateway.",
        "A NAT gateway in a private subnet has no path to the internet."),
    rule(NAT_SAME_AZ, Low, Subnet,
        "A private subnet's NAT gateway is in the subnet's own AZ.",
        "Cross-zone NAT costs inter-AZ data transfer and fails with the other zone."),
    rule(ENDPOINT_S3_GATEWAY, Medium, Vpc,
        "An S3 gateway endpoint exists and is on every private subnet's route table.",
        "The guide marks VPC endpoints \"(Recommended)\", \"to mitigate unnecessary NAT gateway network traffic\": medium."),
    rule(ENDPOINT_INTERFACE_REQUIRED, Medium, Vpc,
        "Interface endpoints exist for every required service (logs, ecr.dkr, ec2).",
        "The guide marks VPC endpoints \"(Recommended)\", \"to mitigate unnecessary NAT gateway network traffic\": medium."),
    rule(ENDPOINT_INTERFACE_AZ_COVERAGE, Medium, VpcEndpoint,
        "Each required interface endpoint has a subnet in every AZ that has private subnets.",
        "The vendor asks that the endpoint's subnets include all the VPC's availability zones."),
    rule(ENDPOINT_PRIVATE_DNS, Medium, VpcEndpoint,
        "Each required interface endpoint has Private DNS enabled.",
        "Private DNS gives out-of-the-box compatibility with the data plane services."),
    rule(ENDPOINT_SECURITY_GROUP, Medium, VpcEndpoint,
        "Each required interface endpoint's security groups admit TCP `port` (443) from the VPC CIDR.",
        "The vendor asks that the endpoint's security groups allow traffic from within the VPC."),
    rule(IAM_ROLE_MISSING, Critical, IamRole,
        "A role named by a rule pack exists.",
        "The vendor's control plane assumes this role to manage the data plane."),
    rule(IAM_POLICY_MISSING_PERMISSIONS, High, IamRole,
        "The role's policies grant every permission of the vendor's current policy.",
        "A stale role breaks the features that need the newer permissions."),
    rule(IAM_POLICY_EXCESS_PERMISSIONS, High, IamRole,
        "The role grants nothing beyond the vendor's current policy.",
        "Extra grants on a cross-account role widen what a third party can do in the account."),
    rule(IAM_TRUST_POLICY_DRIFT, Critical, IamRole,
        "The trust policy admits exactly the expected principals under the expected conditions.",
        "A trust policy opened to another principal, or missing its ExternalId, hands the account to someone else."),
    rule(ECR_CROSS_ACCOUNT_PULL, High, EcrRepository,
        "Each repository of a declared cross-account registry (`cross_account_ecr:`) exists and its policy lets the data plane's account pull: ecr:BatchCheckLayerAvailability, ecr:GetDownloadUrlForLayer and ecr:BatchGetImage, with no Deny or condition in the way.",
        "Union's \"Enabling AWS ECR\": for images in another account \"you will have to configure that ECR instance to permit access from your data plane\"; without the pull actions task pods cannot start."),
    rule(SECRETS_REGION, High, Secret,
        "Every Secrets Manager secret the declared roles' custom policies grant (`secrets_manager:`) is in the data plane's region.",
        "Union's \"Enabling AWS Secrets Manager\": \"Secrets must be defined within the same region as your Union.ai data plane.\""),
    rule(SECRETS_MISSING, Medium, Secret,
        "Every Secrets Manager resource those policies grant matches a secret that exists (ListSecrets in the data plane's region: names and ARNs only, never values).",
        "The guide's policy \"must match the ARNs of the secrets in your environment that you want to grant access to\"; a grant that matches no secret gives task code nothing to read."),
    rule(IAM_PINNED_ROLE_DRIFT, High, IamRole,
        "A role the pack pins (trust, inline and attached policies, permissions boundary, tags) has not changed since it was pinned (at first sight, from a file, or by `--repin`).",
        "The vendor says of its own role: \"You should not alter any settings associated with `<AdminFlyteRole>`\"."),
    rule(IAM_CUSTOM_ROLE_POLICY, High, IamRole,
        "A custom role trusted through an OIDC provider for `system:serviceaccount:<project>-<domain>:default` has the `required_policy` (`userflyterole`) attached.",
        "\"Also, attach the policy called `userflyterole` to `<CustomRole>` (this will ensure that `<CustomRole>` has all the default permissions needed to allow tasks to run).\""),
    rule(IAM_CUSTOM_ROLE_TRUST, High, IamRole,
        "Such a custom role's trust names an OIDC provider that exists in the account, and its `Condition` is StringEquals on that provider's `sub`, listing only project-domain service accounts.",
        "The guide replaces the trust's `Condition` with `StringEquals` on `oidc.eks.<Suffix>:sub` listing `system:serviceaccount:<Project>-<Domain>:default`: anything wider lets other pods assume the role."),
    rule(IAM_FEATURE_POLICY_MISSING, High, IamRole,
        "For each optional feature switched on (`features:`), the feature's role grants everything the feature's policies grant.",
        "Teradata: \"Use AWS Session Manager to connect. To enable this, [...] attach the session-manager.json policy to the IAM role\"; a load balancer needs AWS Certificate Manager and Route 53 permissions."),
    rule(IAM_VPC_SCOPE_RECOMMENDED, Info, IamRole,
        "Recommendation, not drift: EC2 mutations a role's policy allows on `*` could be confined to the designated VPC with the `ec2:Vpc` condition key (the finding carries the resulting policy).",
        "PostgresML: \"create and destroy AWS EC2, EBS and AMI resources inside the designated VPC\", but its VPCSetupPolicy grants EC2 mutations on every resource; this goes beyond the vendor's guide."),
    rule(SUPPRESSION_EXPIRED, Info, Suppression,
        "A suppression in the config is past its `expires` date; it no longer suppresses.",
        "An accepted risk should be reviewed when it lapses, not silently start failing the audit."),
];

/// Looks a rule up by id.
pub fn rule_info(id: &str) -> Option<&'static RuleInfo> {
    CATALOGUE.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_are_unique_and_lowercase_dotted() {
        let ids: BTreeSet<_> = CATALOGUE.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), CATALOGUE.len());
        for id in ids {
            assert!(id.contains('.') && id == id.to_lowercase(), "{id}");
        }
    }

    #[test]
    fn every_id_constant_is_in_the_catalogue() {
        for id in [
            VPC_AZ_COUNT,
            NAT_SAME_AZ,
            ENDPOINT_SECURITY_GROUP,
            IAM_TRUST_POLICY_DRIFT,
            SUPPRESSION_EXPIRED,
        ] {
            assert!(rule_info(id).is_some(), "{id}");
        }
    }
}
