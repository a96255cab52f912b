//! Synthetic snapshots for the benchmarks: `vpcs` data-plane VPCs in one account and region,
//! each laid out like a real BYOC data plane (3 AZs, a public and a private subnet per AZ,
//! an IGW, a NAT per AZ, a route table per private subnet, an S3 gateway endpoint and three
//! interface endpoints behind one security group).
//!
//! Every tenth VPC has drifted (small, nearly full private subnets, DNS hostnames off, no
//! ecr.dkr endpoint), so the finding path is exercised as well as the clean path.
//!
//! All VPCs sit in one region on purpose: that is the worst case for any join that is not
//! indexed by VPC, since a per-VPC scan over the region's subnets or route tables would then
//! grow with the square of the size.

use vpc_auditor::snapshot::{
    AvailabilityZone, GatewayAttachment, IngressRule, InternetGateway, NatGateway, RegionSnapshot,
    Route, RouteTable, RouteTableAssociation, SecurityGroup, Snapshot, Subnet, Vpc, VpcEndpoint,
    SNAPSHOT_SCHEMA_VERSION,
};

pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-east-1";
const AZS: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// Subnets per synthetic VPC: a public and a private one in each AZ.
pub const SUBNETS_PER_VPC: usize = 6;

fn route(destination: &str, target: &str) -> Route {
    Route {
        destination_cidr: Some(destination.into()),
        target: Some(target.into()),
        state: Some("active".into()),
        ..Default::default()
    }
}

fn association(subnet: Option<&str>, main: bool) -> RouteTableAssociation {
    RouteTableAssociation {
        main,
        subnet_id: subnet.map(str::to_string),
    }
}

/// One VPC and everything in it, appended to `region`.
fn push_vpc(region: &mut RegionSnapshot, index: usize) {
    let drifted = index % 10 == 0;
    let vpc_id = format!("vpc-{index:017x}");
    // The CIDR only matters within a VPC, so VPCs may share one.
    let second_octet = index % 256;
    let vpc_cidr = format!("10.{second_octet}.0.0/16");
    let mut tags = vpc_auditor::snapshot::Tags::new();
    tags.insert("Name".into(), format!("data-plane-{index}"));
    region.vpcs.push(Vpc {
        id: vpc_id.clone(),
        cidr_block: Some(vpc_cidr.clone()),
        cidr_blocks: vec![vpc_cidr.clone()],
        is_default: false,
        tags,
        enable_dns_support: Some(true),
        enable_dns_hostnames: Some(!drifted),
    });
    let igw_id = format!("igw-{index:017x}");
    region.internet_gateways.push(InternetGateway {
        id: igw_id.clone(),
        attachments: vec![GatewayAttachment {
            vpc_id: vpc_id.clone(),
            state: Some("available".into()),
        }],
    });
    let sg_id = format!("sg-{index:017x}");
    region.security_groups.push(SecurityGroup {
        id: sg_id.clone(),
        vpc_id: Some(vpc_id.clone()),
        ingress: vec![IngressRule {
            protocol: "tcp".into(),
            from_port: Some(443),
            to_port: Some(443),
            ipv4_ranges: vec![vpc_cidr.clone()],
            ..Default::default()
        }],
    });

    let mut public_associations = Vec::new();
    let mut private_subnets = Vec::new();
    let mut private_tables = Vec::new();
    for (az_index, az) in AZS.iter().enumerate() {
        let public_id = format!("subnet-{index:015x}p{az_index}");
        let private_id = format!("subnet-{index:015x}q{az_index}");
        region.subnets.push(Subnet {
            id: public_id.clone(),
            vpc_id: vpc_id.clone(),
            availability_zone: (*az).into(),
            cidr_block: Some(format!("10.{second_octet}.{}.0/28", 200 + az_index)),
            available_ip_address_count: Some(11),
            ..Default::default()
        });
        let (private_cidr, private_free) = if drifted {
            (format!("10.{second_octet}.{az_index}.0/24"), Some(20))
        } else {
            (
                format!("10.{second_octet}.{}.0/18", az_index * 64),
                Some(16_000),
            )
        };
        region.subnets.push(Subnet {
            id: private_id.clone(),
            vpc_id: vpc_id.clone(),
            availability_zone: (*az).into(),
            cidr_block: Some(private_cidr),
            available_ip_address_count: private_free,
            ..Default::default()
        });
        let nat_id = format!("nat-{index:015x}n{az_index}");
        region.nat_gateways.push(NatGateway {
            id: nat_id.clone(),
            vpc_id: Some(vpc_id.clone()),
            subnet_id: Some(public_id.clone()),
            state: Some("available".into()),
            connectivity_type: Some("public".into()),
        });
        let table_id = format!("rtb-{index:015x}q{az_index}");
        region.route_tables.push(RouteTable {
            id: table_id.clone(),
            vpc_id: vpc_id.clone(),
            associations: vec![association(Some(private_id.as_str()), false)],
            routes: vec![route(&vpc_cidr, "local"), route("0.0.0.0/0", &nat_id)],
        });
        public_associations.push(association(Some(public_id.as_str()), false));
        private_subnets.push(private_id);
        private_tables.push(table_id);
    }
    region.route_tables.push(RouteTable {
        id: format!("rtb-{index:015x}pp"),
        vpc_id: vpc_id.clone(),
        associations: public_associations,
        routes: vec![route(&vpc_cidr, "local"), route("0.0.0.0/0", &igw_id)],
    });
    region.route_tables.push(RouteTable {
        id: format!("rtb-{index:015x}mm"),
        vpc_id: vpc_id.clone(),
        associations: vec![association(None, true)],
        routes: vec![route(&vpc_cidr, "local")],
    });

    region.vpc_endpoints.push(VpcEndpoint {
        id: format!("vpce-{index:015x}s3"),
        vpc_id: vpc_id.clone(),
        service_name: format!("com.amazonaws.{REGION}.s3"),
        endpoint_type: Some("Gateway".into()),
        state: Some("available".into()),
        route_table_ids: private_tables,
        ..Default::default()
    });
    let services: &[&str] = if drifted {
        &["logs", "ec2"]
    } else {
        &["logs", "ecr.dkr", "ec2"]
    };
    for service in services {
        region.vpc_endpoints.push(VpcEndpoint {
            id: format!("vpce-{index:015x}{}", service.replace('.', "")),
            vpc_id: vpc_id.clone(),
            service_name: format!("com.amazonaws.{REGION}.{service}"),
            endpoint_type: Some("Interface".into()),
            state: Some("available".into()),
            subnet_ids: private_subnets.clone(),
            security_group_ids: vec![sg_id.clone()],
            private_dns_enabled: Some(true),
            ..Default::default()
        });
    }
}

/// A snapshot of `vpcs` synthetic VPCs (`vpcs × 6` subnets) in one account and region.
pub fn snapshot(vpcs: usize) -> Snapshot {
    let mut region = RegionSnapshot {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
        availability_zones: AZS
            .iter()
            .enumerate()
            .map(|(i, name)| AvailabilityZone {
                name: (*name).into(),
                zone_id: Some(format!("use1-az{}", i + 1)),
                state: Some("available".into()),
                zone_type: Some("availability-zone".into()),
            })
            .collect(),
        ..Default::default()
    };
    for index in 0..vpcs {
        push_vpc(&mut region, index);
    }
    Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        collected_at: Some("2026-01-01T00:00:00Z".into()),
        regions: vec![region],
        ..Default::default()
    }
}

/// The shipped union-byoc pack without its IAM role expectations: the VPC rules alone, as
/// the synthetic snapshots hold no IAM.
pub fn vpc_pack() -> vpc_auditor::rules::pack::RulePack {
    vpc_auditor::rules::pack::RulePack {
        roles: Vec::new(),
        ..vpc_auditor::rules::pack::RulePack::embedded(&|_| None).expect("the embedded pack loads")
    }
}
