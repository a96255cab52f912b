//! VPC endpoint rules: the S3 gateway endpoint on every private route table, and the
//! required interface endpoints (logs, ecr.dkr, ec2) present, available, in every private
//! AZ, with Private DNS on and security groups that admit the VPC.
//!
//! Service names carry the region: `com.amazonaws.<region>.<service>`. An endpoint only
//! counts as present when its state is `available`; one in `pendingAcceptance`, `pending`
//! or `failed` does not carry traffic yet, and is named in the finding's details. When
//! several available endpoints serve one service, the AZ, Private DNS and security group
//! rules judge the one that works (Private DNS on, AWS allows it on only one); the
//! redundant ones are named in a note, never a finding.
//!
//! A security group "admits the VPC" when the union of its ingress rules that allow TCP on
//! the port (or all traffic) covers each of the VPC's IPv4 CIDR blocks: two /17 rules cover
//! a /16. A rule whose source is a managed prefix list counts as the list's entries
//! (collected with GetManagedPrefixListEntries). Rules that reference another security
//! group, or a prefix list whose entries could not be read, admit something the snapshot
//! cannot resolve to addresses: when the resolved rules fall short and such rules exist, the
//! finding says the admission cannot be verified, at low, rather than failing.

use std::collections::BTreeSet;

use serde_json::json;

use crate::snapshot::{IngressRule, VpcEndpoint};

use super::catalogue;
use super::pack::{EndpointSecurityGroup, GatewayEndpoint, InterfaceEndpoints, SubnetRole};
use super::topology::{RegionTopology, VpcView};
use super::{Rule, Sink};

pub const S3_GATEWAY: Rule<GatewayEndpoint> = (catalogue::ENDPOINT_S3_GATEWAY, s3_gateway);
pub const INTERFACE_REQUIRED: Rule<InterfaceEndpoints> =
    (catalogue::ENDPOINT_INTERFACE_REQUIRED, interface_required);
pub const INTERFACE_AZ_COVERAGE: Rule<InterfaceEndpoints> = (
    catalogue::ENDPOINT_INTERFACE_AZ_COVERAGE,
    interface_az_coverage,
);
pub const PRIVATE_DNS: Rule<InterfaceEndpoints> = (catalogue::ENDPOINT_PRIVATE_DNS, private_dns);
pub const SECURITY_GROUP: Rule<EndpointSecurityGroup> =
    (catalogue::ENDPOINT_SECURITY_GROUP, security_group);

/// The full service name of `service` in `region`.
pub fn service_name(region: &str, service: &str) -> String {
    format!("com.amazonaws.{region}.{service}")
}

fn is_type(endpoint: &VpcEndpoint, kind: &str) -> bool {
    endpoint
        .endpoint_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(kind))
}

fn is_available(endpoint: &VpcEndpoint) -> bool {
    endpoint
        .state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("available"))
}

/// The interface endpoints of the VPC for the listed services, with the short service name.
fn interface_endpoints<'a>(
    view: &'a VpcView,
    region: &str,
    services: &'a [String],
) -> impl Iterator<Item = (&'a str, &'a VpcEndpoint)> + 'a {
    let names: Vec<(String, &'a str)> = services
        .iter()
        .map(|s| (service_name(region, s), s.as_str()))
        .collect();
    view.endpoints
        .iter()
        .copied()
        .filter(|e| is_type(e, "Interface"))
        .filter_map(move |e| {
            names
                .iter()
                .find(|(full, _)| *full == e.service_name)
                .map(|(_, short)| (*short, e))
        })
}

/// The endpoint that serves each listed service, the one the detail rules judge: only
/// `available` endpoints carry traffic, and when several serve one service the one with
/// Private DNS on wins (AWS allows Private DNS on only one), else the first by id. The
/// others are redundant duplicates: not judged, and named in a note.
fn serving_endpoints<'a>(
    view: &'a VpcView,
    region: &str,
    services: &'a [String],
    sink: &mut Sink,
) -> Vec<(&'a str, &'a VpcEndpoint)> {
    let mut out: Vec<(&'a str, &'a VpcEndpoint)> = Vec::new();
    for service in services {
        let mut candidates: Vec<&VpcEndpoint> = interface_endpoints(view, region, services)
            .filter(|(s, e)| s == service && is_available(e))
            .map(|(_, e)| e)
            .collect();
        candidates.sort_by_key(|e| (e.private_dns_enabled != Some(true), e.id.clone()));
        if let Some((first, rest)) = candidates.split_first() {
            out.push((service.as_str(), first));
            if !rest.is_empty() {
                let ids: Vec<&str> = rest.iter().map(|e| e.id.as_str()).collect();
                sink.note(format!(
                    "VPC {}: redundant interface endpoint(s) {} also serve {}; {} is the one judged",
                    view.vpc.id,
                    ids.join(", "),
                    first.service_name,
                    first.id
                ));
            }
        }
    }
    out
}

fn s3_gateway(view: &VpcView, _: &RegionTopology, settings: &GatewayEndpoint, sink: &mut Sink) {
    sink.evaluated(&view.vpc.id);
    let vpc = &view.vpc.id;
    let service = service_name(sink.region(), &settings.service());
    let gateways: Vec<&VpcEndpoint> = view
        .endpoints
        .iter()
        .copied()
        .filter(|e| e.service_name == service && is_type(e, "Gateway"))
        .collect();
    let usable: Vec<&VpcEndpoint> = gateways
        .iter()
        .copied()
        .filter(|e| is_available(e))
        .collect();
    let private_ids: Vec<String> = view
        .subnets_with_role(SubnetRole::Private)
        .map(|s| s.subnet.id.clone())
        .collect();
    if usable.is_empty() {
        let states: Vec<_> = gateways
            .iter()
            .map(|e| json!({"id": e.id, "state": e.state}))
            .collect();
        sink.report(
            vpc,
            format!("VPC {vpc} has no available gateway endpoint for {service}"),
            format!(
                "aws ec2 create-vpc-endpoint --vpc-id {vpc} --vpc-endpoint-type Gateway \
                 --service-name {service} --route-table-ids <the private subnets' route tables>"
            ),
            json!({ "service_name": service, "unavailable_endpoints": states, "private_subnets": private_ids }),
        );
        return;
    }
    let on_tables: BTreeSet<&str> = usable
        .iter()
        .flat_map(|e| e.route_table_ids.iter().map(String::as_str))
        .collect();
    let mut missing_tables = BTreeSet::new();
    let mut uncovered_subnets = Vec::new();
    for subnet in view.subnets_with_role(SubnetRole::Private) {
        match subnet.route_table {
            Some(t) if on_tables.contains(t.id.as_str()) => {}
            Some(t) => {
                missing_tables.insert(t.id.as_str());
                uncovered_subnets.push(subnet.subnet.id.as_str());
            }
            None => uncovered_subnets.push(subnet.subnet.id.as_str()),
        }
    }
    if !uncovered_subnets.is_empty() {
        let endpoint = &usable[0].id;
        sink.report(
            vpc,
            format!(
                "S3 gateway endpoint {endpoint} is not on the route tables of private subnet(s) {}",
                uncovered_subnets.join(", ")
            ),
            format!(
                "aws ec2 modify-vpc-endpoint --vpc-endpoint-id {endpoint} --add-route-table-ids {}",
                missing_tables.iter().copied().collect::<Vec<_>>().join(" ")
            ),
            json!({
                "service_name": service,
                "vpc_endpoint_id": endpoint,
                "route_tables_missing": missing_tables,
                "private_subnets_uncovered": uncovered_subnets,
            }),
        );
    }
}

fn interface_required(
    view: &VpcView,
    _: &RegionTopology,
    settings: &InterfaceEndpoints,
    sink: &mut Sink,
) {
    sink.evaluated(&view.vpc.id);
    let vpc = &view.vpc.id;
    let services = settings.services();
    let region = sink.region().to_string();
    let found: Vec<(&str, &VpcEndpoint)> = interface_endpoints(view, &region, &services).collect();
    let mut missing = Vec::new();
    let mut unavailable = Vec::new();
    for service in &services {
        let of_service: Vec<&VpcEndpoint> = found
            .iter()
            .filter(|(s, _)| s == service)
            .map(|(_, e)| *e)
            .collect();
        if !of_service.iter().any(|e| is_available(e)) {
            missing.push(service_name(&region, service));
            for e in of_service {
                unavailable
                    .push(json!({ "id": e.id, "service_name": e.service_name, "state": e.state }));
            }
        }
    }
    if missing.is_empty() {
        return;
    }
    // One subnet per AZ (EC2 refuses two in one zone): the one with the most free IPs.
    let mut per_az: std::collections::BTreeMap<&str, &crate::rules::topology::SubnetView> =
        Default::default();
    for s in view.subnets_with_role(SubnetRole::Private) {
        let free = |v: &crate::rules::topology::SubnetView| {
            v.subnet.available_ip_address_count.unwrap_or(0)
        };
        let better = per_az.get(s.az()).is_none_or(|b| {
            (free(s), std::cmp::Reverse(&s.subnet.id)) > (free(b), std::cmp::Reverse(&b.subnet.id))
        });
        if better {
            per_az.insert(s.az(), s);
        }
    }
    let private_subnets: Vec<&str> = per_az.values().map(|s| s.subnet.id.as_str()).collect();
    let subnets = if private_subnets.is_empty() {
        "SUBNETS (the VPC has no private subnet: one per AZ)".to_string()
    } else {
        private_subnets.join(" ")
    };
    let commands: Vec<String> = missing
        .iter()
        .map(|service| {
            format!(
                "aws ec2 create-vpc-endpoint --vpc-id {vpc} --vpc-endpoint-type Interface \
                 --service-name {service} --subnet-ids {subnets} --security-group-ids SG \
                 --private-dns-enabled (SG: a security group admitting TCP 443 from the VPC's CIDRs; \
                 --format fix-script creates one)"
            )
        })
        .collect();
    sink.report(
        vpc,
        format!(
            "VPC {vpc} lacks available interface endpoints for {}",
            missing.join(", ")
        ),
        commands.join("\n"),
        json!({ "missing_services": missing, "unavailable_endpoints": unavailable }),
    );
}

fn interface_az_coverage(
    view: &VpcView,
    topo: &RegionTopology,
    settings: &InterfaceEndpoints,
    sink: &mut Sink,
) {
    let private_azs: BTreeSet<&str> = view
        .subnets_with_role(SubnetRole::Private)
        .map(|s| s.az())
        .collect();
    let services = settings.services();
    let region = sink.region().to_string();
    for (_, endpoint) in serving_endpoints(view, &region, &services, sink) {
        sink.evaluated(&endpoint.id);
        let covered: BTreeSet<&str> = endpoint
            .subnet_ids
            .iter()
            .filter_map(|id| topo.subnet(id))
            .map(|s| s.az())
            .collect();
        let lacking: Vec<&str> = private_azs.difference(&covered).copied().collect();
        if lacking.is_empty() {
            continue;
        }
        let id = &endpoint.id;
        let add: Vec<&str> = lacking
            .iter()
            .filter_map(|az| {
                view.subnets_with_role(SubnetRole::Private)
                    .find(|s| s.az() == *az)
            })
            .map(|s| s.subnet.id.as_str())
            .collect();
        sink.report(
            id,
            format!(
                "Interface endpoint {id} ({}) has no subnet in {}",
                endpoint.service_name,
                lacking.join(", ")
            ),
            format!(
                "aws ec2 modify-vpc-endpoint --vpc-endpoint-id {id} --add-subnet-ids {}",
                add.join(" ")
            ),
            json!({
                "service_name": endpoint.service_name,
                "availability_zones_lacking": lacking,
                "availability_zones_covered": covered,
            }),
        );
    }
}

fn private_dns(view: &VpcView, _: &RegionTopology, settings: &InterfaceEndpoints, sink: &mut Sink) {
    let services = settings.services();
    let region = sink.region().to_string();
    for (_, endpoint) in serving_endpoints(view, &region, &services, sink) {
        sink.evaluated(&endpoint.id);
        if endpoint.private_dns_enabled == Some(true) {
            continue;
        }
        let id = &endpoint.id;
        sink.report(
            id,
            format!("Interface endpoint {id} ({}) has Private DNS off", endpoint.service_name),
            format!("aws ec2 modify-vpc-endpoint --vpc-endpoint-id {id} --private-dns-enabled"),
            json!({ "service_name": endpoint.service_name, "private_dns_enabled": endpoint.private_dns_enabled }),
        );
    }
}

fn security_group(
    view: &VpcView,
    topo: &RegionTopology,
    settings: &EndpointSecurityGroup,
    sink: &mut Sink,
) {
    let services = settings.services();
    let port = i32::from(settings.port());
    let region = sink.region().to_string();
    let vpc_cidrs: Vec<ipnetwork::Ipv4Network> = {
        let mut all: Vec<&String> = view.vpc.cidr_blocks.iter().collect();
        if let Some(primary) = &view.vpc.cidr_block {
            all.push(primary);
        }
        let mut nets: Vec<_> = all.iter().filter_map(|c| c.parse().ok()).collect();
        nets.sort();
        nets.dedup();
        nets
    };
    for (_, endpoint) in serving_endpoints(view, &region, &services, sink) {
        sink.evaluated(&endpoint.id);
        let mut unknown_groups = Vec::new();
        let rules: Vec<&IngressRule> = endpoint
            .security_group_ids
            .iter()
            .filter_map(|id| {
                let group = topo.security_group(id);
                if group.is_none() {
                    unknown_groups.push(id.as_str());
                }
                group
            })
            .flat_map(|g| g.ingress.iter())
            .filter(|r| admits_port(r, port))
            .collect();
        // The union of the rules' IPv4 ranges, a managed prefix list counting as its
        // entries, must cover each VPC CIDR: two /17 rules cover a /16.
        let resolved = |id: &String| {
            topo.region
                .prefix_lists
                .iter()
                .find(|l| &l.id == id && l.error.is_none())
        };
        let ranges: Vec<ipnetwork::Ipv4Network> = rules
            .iter()
            .flat_map(|r| {
                r.ipv4_ranges.iter().chain(
                    r.prefix_list_ids
                        .iter()
                        .filter_map(resolved)
                        .flat_map(|l| l.cidrs.iter()),
                )
            })
            .filter_map(|c| c.parse().ok())
            .collect();
        let not_admitted: Vec<String> = vpc_cidrs
            .iter()
            .filter(|vpc_net| !union_covers(&ranges, vpc_net))
            .map(|n| n.to_string())
            .collect();
        // Sources the snapshot cannot resolve to addresses: another security group's
        // members, a managed prefix list whose entries were not (or could not be) read.
        let unverifiable: Vec<&str> = rules
            .iter()
            .flat_map(|r| {
                r.source_security_group_ids
                    .iter()
                    .chain(r.prefix_list_ids.iter().filter(|id| resolved(id).is_none()))
            })
            .map(String::as_str)
            .collect();
        if !not_admitted.is_empty() && !unverifiable.is_empty() && unknown_groups.is_empty() {
            let id = &endpoint.id;
            sink.report_at(
                crate::finding::Severity::Low,
                id,
                format!(
                    "Interface endpoint {id} ({}): whether its security groups admit TCP {port} from {} cannot be verified: they admit {}",
                    endpoint.service_name,
                    not_admitted.join(", "),
                    unverifiable.join(", ")
                ),
                format!(
                    "Check that {} cover the VPC, or admit the VPC CIDR itself: aws ec2 authorize-security-group-ingress --group-id {} --protocol tcp --port {port} --cidr {}",
                    unverifiable.join(", "),
                    endpoint.security_group_ids.first().map(String::as_str).unwrap_or("<sg>"),
                    not_admitted[0]
                ),
                json!({
                    "service_name": endpoint.service_name,
                    "security_group_ids": endpoint.security_group_ids,
                    "unverifiable_sources": unverifiable,
                    "vpc_cidrs_not_admitted_by_cidr": not_admitted,
                    "port": port,
                    "unverifiable": true,
                }),
            );
            continue;
        }
        if !not_admitted.is_empty() || vpc_cidrs.is_empty() {
            let id = &endpoint.id;
            let group = endpoint
                .security_group_ids
                .first()
                .map(String::as_str)
                .unwrap_or("<sg>");
            let commands: Vec<String> = not_admitted
                .iter()
                .map(|cidr| {
                    format!(
                        "aws ec2 authorize-security-group-ingress --group-id {group} --protocol tcp --port {port} --cidr {cidr}"
                    )
                })
                .collect();
            sink.report(
                id,
                format!(
                    "Interface endpoint {id} ({}): its security groups do not admit TCP {port} from {}",
                    endpoint.service_name,
                    if not_admitted.is_empty() { "the VPC".to_string() } else { not_admitted.join(", ") }
                ),
                commands.join("\n"),
                json!({
                    "service_name": endpoint.service_name,
                    "security_group_ids": endpoint.security_group_ids,
                    "unknown_security_groups": unknown_groups,
                    "vpc_cidrs_not_admitted": not_admitted,
                    "port": port,
                }),
            );
        }
    }
}

/// Whether the union of `ranges` contains all of `net`.
fn union_covers(ranges: &[ipnetwork::Ipv4Network], net: &ipnetwork::Ipv4Network) -> bool {
    let span = |n: &ipnetwork::Ipv4Network| {
        let start = u64::from(u32::from(n.network()));
        (start, start + u64::from(n.size()) - 1)
    };
    let (want_start, want_end) = span(net);
    let mut spans: Vec<(u64, u64)> = ranges.iter().map(span).collect();
    spans.sort();
    // The first address not yet covered; ranges sorted by start, so a gap is final.
    let mut covered_to = want_start;
    for (start, end) in spans {
        if end < covered_to {
            continue;
        }
        if start > covered_to {
            return false;
        }
        covered_to = end + 1;
        if covered_to > want_end {
            return true;
        }
    }
    false
}

/// Whether an ingress rule allows TCP `port` (any source).
fn admits_port(rule: &IngressRule, port: i32) -> bool {
    match rule.protocol.to_ascii_lowercase().as_str() {
        "-1" | "all" => true,
        "tcp" | "6" => {
            let from = rule.from_port.unwrap_or(0);
            let to = rule.to_port.unwrap_or(65535);
            // AWS reports -1 for "all ports" on some shapes.
            (from == -1 && to == -1) || (from <= port && port <= to)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::IngressRule;

    #[test]
    fn missing_s3_gateway_endpoint_fires() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpc_endpoints.retain(|e| e.id != "vpce-s3"))
            .build();
        let found = findings_of(&snapshot, "endpoint.s3_gateway");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_id, "vpc-good");
    }

    #[test]
    fn s3_interface_endpoint_does_not_count_as_gateway() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let e = r
                    .vpc_endpoints
                    .iter_mut()
                    .find(|e| e.id == "vpce-s3")
                    .unwrap();
                e.endpoint_type = Some("Interface".into());
            })
            .build();
        assert_eq!(findings_of(&snapshot, "endpoint.s3_gateway").len(), 1);
    }

    #[test]
    fn s3_gateway_missing_one_private_route_table_names_it() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let e = r
                    .vpc_endpoints
                    .iter_mut()
                    .find(|e| e.id == "vpce-s3")
                    .unwrap();
                e.route_table_ids.retain(|t| t != "rtb-private-b");
            })
            .build();
        let found = findings_of(&snapshot, "endpoint.s3_gateway");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].details["route_tables_missing"],
            serde_json::json!(["rtb-private-b"])
        );
        assert!(found[0]
            .remediation
            .contains("--add-route-table-ids rtb-private-b"));
    }

    #[test]
    fn missing_ecr_dkr_endpoint_is_named_with_its_regional_service_name() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpc_endpoints.retain(|e| e.id != "vpce-ecr"))
            .build();
        let found = findings_of(&snapshot, "endpoint.interface_required");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].details["missing_services"],
            serde_json::json!(["com.amazonaws.us-east-1.ecr.dkr"])
        );
        assert!(found[0]
            .remediation
            .contains("subnet-priv-a subnet-priv-b subnet-priv-c"));
    }

    #[test]
    fn endpoint_for_another_regions_service_does_not_count() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let e = r
                    .vpc_endpoints
                    .iter_mut()
                    .find(|e| e.id == "vpce-logs")
                    .unwrap();
                e.service_name = "com.amazonaws.us-west-2.logs".into();
            })
            .build();
        assert_eq!(
            findings_of(&snapshot, "endpoint.interface_required").len(),
            1
        );
    }

    #[test]
    fn pending_acceptance_endpoint_is_not_present() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let e = r
                    .vpc_endpoints
                    .iter_mut()
                    .find(|e| e.id == "vpce-ec2")
                    .unwrap();
                e.state = Some("pendingAcceptance".into());
            })
            .build();
        let found = findings_of(&snapshot, "endpoint.interface_required");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].details["unavailable_endpoints"][0]["state"],
            "pendingAcceptance"
        );
    }

    #[test]
    fn endpoint_missing_an_az_fires_coverage_on_that_endpoint() {
        // Two subnets in the same AZ must not count as coverage of two AZs.
        let snapshot = compliant_vpc()
            .with(|r| {
                let e = r
                    .vpc_endpoints
                    .iter_mut()
                    .find(|e| e.id == "vpce-ecr")
                    .unwrap();
                e.subnet_ids = vec!["subnet-priv-a".into(), "subnet-pub-a".into()];
            })
            .build();
        let found = findings_of(&snapshot, "endpoint.interface_az_coverage");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_id, "vpce-ecr");
        assert_eq!(
            found[0].details["availability_zones_lacking"],
            serde_json::json!(["us-east-1b", "us-east-1c"])
        );
    }

    #[test]
    fn a_redundant_duplicate_endpoint_is_not_judged_and_an_unavailable_one_neither() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let mut dup = r
                    .vpc_endpoints
                    .iter()
                    .find(|e| e.id == "vpce-logs")
                    .unwrap()
                    .clone();
                dup.id = "vpce-logs-old".into();
                dup.private_dns_enabled = Some(false);
                dup.subnet_ids.truncate(1);
                r.vpc_endpoints.push(dup.clone());
                dup.id = "vpce-logs-failed".into();
                dup.state = Some("failed".into());
                r.vpc_endpoints.push(dup);
            })
            .build();
        let eval = run(&snapshot);
        assert_eq!(eval.findings, vec![], "only the working endpoint is judged");
        assert!(
            eval.notes.iter().any(|n| n.contains("vpce-logs-old")),
            "{:?}",
            eval.notes
        );
    }

    #[test]
    fn private_dns_off_fires() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpc_endpoints
                    .iter_mut()
                    .for_each(|e| e.private_dns_enabled = Some(false))
            })
            .build();
        // The S3 gateway endpoint is not an interface endpoint and is not judged.
        let found = findings_of(&snapshot, "endpoint.private_dns");
        assert_eq!(found.len(), 3);
    }

    #[test]
    fn security_group_admitting_only_part_of_the_vpc_fires() {
        let snapshot = compliant_vpc()
            .with(|r| r.security_groups[0].ingress[0].ipv4_ranges = vec!["10.0.0.0/18".into()])
            .build();
        let found = findings_of(&snapshot, "endpoint.security_group");
        assert_eq!(found.len(), 3);
        assert_eq!(
            found[0].details["vpc_cidrs_not_admitted"],
            serde_json::json!(["10.0.0.0/16"])
        );
    }

    #[test]
    fn security_group_on_the_wrong_port_fires_and_all_traffic_passes() {
        let wrong_port = compliant_vpc()
            .with(|r| {
                r.security_groups[0].ingress[0].from_port = Some(80);
                r.security_groups[0].ingress[0].to_port = Some(80);
            })
            .build();
        assert_eq!(findings_of(&wrong_port, "endpoint.security_group").len(), 3);
        let all_traffic = compliant_vpc()
            .with(|r| {
                r.security_groups[0].ingress = vec![IngressRule {
                    protocol: "-1".into(),
                    ipv4_ranges: vec!["10.0.0.0/8".into()],
                    ..Default::default()
                }]
            })
            .build();
        assert!(findings_of(&all_traffic, "endpoint.security_group").is_empty());
    }

    #[test]
    fn two_slash_17_rules_cover_a_slash_16_and_a_gap_does_not() {
        let split = |second: &str| {
            compliant_vpc()
                .with(|r| {
                    r.security_groups[0].ingress[0].ipv4_ranges =
                        vec!["10.0.0.0/17".into(), second.into()]
                })
                .build()
        };
        assert!(findings_of(&split("10.0.128.0/17"), "endpoint.security_group").is_empty());
        assert_eq!(
            findings_of(&split("10.0.192.0/18"), "endpoint.security_group").len(),
            3
        );
    }

    #[test]
    fn a_security_group_reference_is_unverifiable_not_failing() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let rule = &mut r.security_groups[0].ingress[0];
                rule.ipv4_ranges.clear();
                rule.source_security_group_ids = vec!["sg-nodes".into()];
            })
            .build();
        let found = findings_of(&snapshot, "endpoint.security_group");
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].severity, crate::finding::Severity::Low);
        assert_eq!(found[0].details["unverifiable"], true);
        assert!(found[0].message.contains("cannot be verified"));
    }

    #[test]
    fn a_managed_prefix_list_counts_as_its_entries() {
        let with_list = |cidrs: &[&str], error: Option<&str>| {
            compliant_vpc()
                .with(|r| {
                    let rule = &mut r.security_groups[0].ingress[0];
                    rule.ipv4_ranges.clear();
                    rule.prefix_list_ids = vec!["pl-0corp".into()];
                    r.prefix_lists.push(crate::snapshot::PrefixList {
                        id: "pl-0corp".into(),
                        cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
                        error: error.map(str::to_string),
                    });
                })
                .build()
        };
        // Two /17 entries cover the /16: admitted, no finding.
        let covering = with_list(&["10.0.0.0/17", "10.0.128.0/17"], None);
        assert!(findings_of(&covering, "endpoint.security_group").is_empty());
        // Entries that miss half the VPC: a real finding, at the rule's severity.
        let short = with_list(&["10.0.0.0/17", "192.168.0.0/16"], None);
        let found = findings_of(&short, "endpoint.security_group");
        assert_eq!(found.len(), 3);
        assert_ne!(found[0].severity, crate::finding::Severity::Low);
        assert_eq!(
            found[0].details["vpc_cidrs_not_admitted"],
            serde_json::json!(["10.0.0.0/16"])
        );
        // A list that could not be read is unverifiable, never compliant.
        let unread = with_list(&["10.0.0.0/16"], Some("UnauthorizedOperation"));
        let found = findings_of(&unread, "endpoint.security_group");
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].details["unverifiable"], true);
        assert_eq!(
            found[0].details["unverifiable_sources"],
            serde_json::json!(["pl-0corp"])
        );
        // A snapshot without the list (older, or not collected) is unverifiable too.
        let mut missing = covering.clone();
        missing.regions[0].prefix_lists.clear();
        let found = findings_of(&missing, "endpoint.security_group");
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].details["unverifiable"], true);
    }

    #[test]
    fn secondary_vpc_cidr_must_be_admitted_too() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpcs[0].cidr_blocks.push("100.64.0.0/16".into()))
            .build();
        let found = findings_of(&snapshot, "endpoint.security_group");
        assert_eq!(found.len(), 3);
        assert_eq!(
            found[0].details["vpc_cidrs_not_admitted"],
            serde_json::json!(["100.64.0.0/16"])
        );
    }

    #[test]
    fn unknown_security_group_fails_closed() {
        let snapshot = compliant_vpc().with(|r| r.security_groups.clear()).build();
        let found = findings_of(&snapshot, "endpoint.security_group");
        assert_eq!(found.len(), 3);
        assert_eq!(
            found[0].details["unknown_security_groups"],
            serde_json::json!(["sg-endpoints"])
        );
    }
}
