//! EC2: the network of one account-region, and the regions an account has enabled.
//!
//! [`read_region`] is what a region's collection reads from EC2: one function per resource
//! type, each making one paginated call for the whole region (all at once) and converting
//! the SDK's types into the snapshot's plain structs; then the VPCs in scope get their DNS
//! attributes. DescribeVpcAttribute is the one per-VPC call (AWS has no bulk form); those
//! calls run concurrently, a bounded number at a time. [`enabled_regions`] is the plan's
//! read for `regions: all` (DescribeRegions).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::types as ec2;
use aws_sdk_ec2::Client;
use futures::{StreamExt, TryStreamExt};

use crate::config::accounts::RateLimit;
use crate::snapshot::{
    AvailabilityZone, EndpointInterface, GatewayAttachment, IngressRule, InternetGateway,
    NatGateway, PrefixList, RegionSnapshot, Route, RouteTable, RouteTableAssociation,
    SecurityGroup, Subnet, Tags, TransitGatewayAttachment, Vpc, VpcEndpoint,
};

use super::client::{limited_http_client, ApiCallCounter, PageGuard, WholeXmlResponse};
use super::CollectError;

/// An EC2 client for `account` in the region of `config`, under `rate` (EC2 meters per
/// account and region), its calls counted by `counter`.
pub fn client(
    config: &SdkConfig,
    account: &str,
    rate: RateLimit,
    counter: &ApiCallCounter,
) -> Client {
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    Client::from_conf(
        aws_sdk_ec2::config::Builder::from(config)
            .http_client(limited_http_client("ec2", account, &region, rate))
            .interceptor(counter.clone())
            .interceptor(WholeXmlResponse)
            .build(),
    )
}

/// Reads the region's network into `out`: every listing at once, then the DNS attributes
/// of the VPCs `in_scope` keeps (the others are dropped before any per-VPC call, the
/// default VPCs that `skipped` names kept in `skipped_vpcs` for the reports). The first
/// failure fails the whole read; `out` is then not to be used.
pub async fn read_region(
    client: &Client,
    max_pages: u32,
    attribute_concurrency: usize,
    in_scope: impl Fn(&Vpc) -> bool,
    skipped: impl Fn(&Vpc) -> bool,
    out: &mut RegionSnapshot,
) -> Result<(), CollectError> {
    let pages = max_pages;
    let (
        azs,
        vpcs,
        subnets,
        route_tables,
        igws,
        nats,
        endpoints,
        groups,
        tgw_attachments,
        gwlb_enis,
    ) = tokio::try_join!(
        availability_zones(client),
        vpcs(client, pages),
        subnets(client, pages),
        route_tables(client, pages),
        internet_gateways(client, pages),
        nat_gateways(client, pages),
        vpc_endpoints(client, pages),
        security_groups(client, pages),
        transit_gateway_attachments(client, pages),
        gwlb_endpoint_interfaces(client, pages),
    )?;
    out.skipped_vpcs = vpcs.iter().filter(|v| skipped(v)).cloned().collect();
    let mut vpcs: Vec<_> = vpcs.into_iter().filter(|v| in_scope(v)).collect();
    vpc_dns_attributes(client, &mut vpcs, attribute_concurrency).await?;

    out.availability_zones = azs;
    out.vpcs = vpcs;
    out.subnets = subnets;
    out.route_tables = route_tables;
    out.internet_gateways = igws;
    out.nat_gateways = nats;
    out.vpc_endpoints = endpoints;
    out.security_groups = groups;
    out.transit_gateway_attachments = tgw_attachments;
    out.gwlb_endpoint_interfaces = gwlb_enis;
    Ok(())
}

/// The regions enabled in the client's account (DescribeRegions), sorted.
pub async fn enabled_regions(client: &Client) -> Result<Vec<String>, CollectError> {
    const OP: &str = "ec2:DescribeRegions";
    let answer = client
        .describe_regions()
        .send()
        .await
        .map_err(|e| CollectError::aws(OP, e))?;
    let mut regions: Vec<String> = answer
        .regions()
        .iter()
        .filter(|r| {
            // Without AllRegions, AWS lists enabled regions only; opt-in status guards
            // against an answer that includes disabled ones anyway.
            r.opt_in_status().is_none_or(|s| s != "not-opted-in")
        })
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    if regions.is_empty() {
        return Err(CollectError::Malformed {
            operation: OP,
            message: "no region is enabled in the account".into(),
        });
    }
    regions.sort();
    Ok(regions)
}

fn tags(tags: &[ec2::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

/// Follows every page of a paginated Describe call and gathers its items, through a
/// [`PageGuard`]: a failed page fails the whole call, naming the operation, and so does a
/// pagination token that repeats or never ends. An answer without its item list at all
/// (AWS always sends the list element, empty or not) is malformed, not an empty list.
macro_rules! all_items {
    ($client:expr, $call:ident, $items:ident, $operation:expr, $max_pages:expr) => {{
        let mut guard = PageGuard::new($operation, $max_pages);
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = $client
                .$call()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| CollectError::aws($operation, e))?;
            match page.$items {
                Some(list) => items.extend(list),
                None => {
                    return Err(CollectError::Malformed {
                        operation: $operation,
                        message: format!("a page has no {} list", stringify!($items)),
                    })
                }
            }
            match guard.next(page.next_token)? {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok::<_, CollectError>(items)
    }};
}

/// A required field AWS left out: the response is not what the API promises.
fn required<T>(value: Option<T>, operation: &'static str, field: &str) -> Result<T, CollectError> {
    value.ok_or_else(|| CollectError::Malformed {
        operation,
        message: format!("a response item has no {field}"),
    })
}

pub async fn availability_zones(client: &Client) -> Result<Vec<AvailabilityZone>, CollectError> {
    const OP: &str = "ec2:DescribeAvailabilityZones";
    let out = client
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| CollectError::aws(OP, e))?;
    out.availability_zones()
        .iter()
        .map(|az| {
            Ok(AvailabilityZone {
                name: required(az.zone_name(), OP, "ZoneName")?.to_string(),
                zone_id: az.zone_id().map(str::to_string),
                zone_type: az.zone_type().map(str::to_string),
                state: az.state().map(|s| s.as_str().to_string()),
            })
        })
        .collect()
}

pub async fn vpcs(client: &Client, max_pages: u32) -> Result<Vec<Vpc>, CollectError> {
    const OP: &str = "ec2:DescribeVpcs";
    let items: Vec<ec2::Vpc> = all_items!(client, describe_vpcs, vpcs, OP, max_pages)?;
    items
        .iter()
        .map(|v| {
            let mut cidr_blocks: Vec<String> = v
                .cidr_block_association_set()
                .iter()
                .filter(|a| {
                    a.cidr_block_state()
                        .and_then(|s| s.state())
                        .is_none_or(|s| s.as_str() == "associated")
                })
                .filter_map(|a| a.cidr_block().map(str::to_string))
                .collect();
            if cidr_blocks.is_empty() {
                cidr_blocks.extend(v.cidr_block().map(str::to_string));
            }
            Ok(Vpc {
                id: required(v.vpc_id(), OP, "VpcId")?.to_string(),
                cidr_block: v.cidr_block().map(str::to_string),
                cidr_blocks,
                is_default: v.is_default().unwrap_or(false),
                tags: tags(v.tags()),
                enable_dns_support: None,
                enable_dns_hostnames: None,
            })
        })
        .collect()
}

/// Fills each VPC's DNS attributes: two DescribeVpcAttribute calls per VPC, `concurrency`
/// at a time. The first failure fails the region.
pub async fn vpc_dns_attributes(
    client: &Client,
    vpcs: &mut [Vpc],
    concurrency: usize,
) -> Result<(), CollectError> {
    const OP: &str = "ec2:DescribeVpcAttribute";
    // Owned requests, so the stream borrows nothing from `vpcs` and the future stays `Send`.
    let requests: Vec<(usize, String, ec2::VpcAttributeName)> = vpcs
        .iter()
        .enumerate()
        .flat_map(|(i, vpc)| {
            [
                ec2::VpcAttributeName::EnableDnsSupport,
                ec2::VpcAttributeName::EnableDnsHostnames,
            ]
            .map(|attr| (i, vpc.id.clone(), attr))
        })
        .collect();
    let results: Vec<(usize, ec2::VpcAttributeName, Option<bool>)> =
        futures::stream::iter(requests)
            .map(|(i, id, attr)| async move {
                let out = client
                    .describe_vpc_attribute()
                    .vpc_id(id)
                    .attribute(attr.clone())
                    .send()
                    .await
                    .map_err(|e| CollectError::aws(OP, e))?;
                let value = match attr {
                    ec2::VpcAttributeName::EnableDnsSupport => {
                        out.enable_dns_support().and_then(|v| v.value())
                    }
                    _ => out.enable_dns_hostnames().and_then(|v| v.value()),
                };
                Ok::<_, CollectError>((i, attr, value))
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
    for (i, attr, value) in results {
        let value = required(value, OP, attr.as_str())?;
        match attr {
            ec2::VpcAttributeName::EnableDnsSupport => vpcs[i].enable_dns_support = Some(value),
            _ => vpcs[i].enable_dns_hostnames = Some(value),
        }
    }
    Ok(())
}

pub async fn subnets(client: &Client, max_pages: u32) -> Result<Vec<Subnet>, CollectError> {
    const OP: &str = "ec2:DescribeSubnets";
    let items: Vec<ec2::Subnet> = all_items!(client, describe_subnets, subnets, OP, max_pages)?;
    items
        .iter()
        .map(|s| {
            Ok(Subnet {
                id: required(s.subnet_id(), OP, "SubnetId")?.to_string(),
                vpc_id: required(s.vpc_id(), OP, "VpcId")?.to_string(),
                availability_zone: required(s.availability_zone(), OP, "AvailabilityZone")?
                    .to_string(),
                cidr_block: s.cidr_block().map(str::to_string),
                ipv6_cidr_blocks: s
                    .ipv6_cidr_block_association_set()
                    .iter()
                    .filter_map(|a| a.ipv6_cidr_block().map(str::to_string))
                    .collect(),
                available_ip_address_count: s
                    .available_ip_address_count()
                    .and_then(|n| u64::try_from(n).ok()),
                tags: tags(s.tags()),
            })
        })
        .collect()
}

/// The id a route sends traffic to, whichever field AWS put it in.
fn route_target(r: &ec2::Route) -> Option<String> {
    [
        r.gateway_id(),
        r.nat_gateway_id(),
        r.transit_gateway_id(),
        r.network_interface_id(),
        r.vpc_peering_connection_id(),
        r.instance_id(),
        r.egress_only_internet_gateway_id(),
        r.carrier_gateway_id(),
        r.local_gateway_id(),
        r.core_network_arn(),
    ]
    .into_iter()
    .flatten()
    .next()
    .map(str::to_string)
}

pub async fn route_tables(
    client: &Client,
    max_pages: u32,
) -> Result<Vec<RouteTable>, CollectError> {
    const OP: &str = "ec2:DescribeRouteTables";
    let items: Vec<ec2::RouteTable> =
        all_items!(client, describe_route_tables, route_tables, OP, max_pages)?;
    items
        .iter()
        .map(|t| {
            Ok(RouteTable {
                id: required(t.route_table_id(), OP, "RouteTableId")?.to_string(),
                vpc_id: required(t.vpc_id(), OP, "VpcId")?.to_string(),
                associations: t
                    .associations()
                    .iter()
                    .filter(|a| {
                        a.association_state()
                            .and_then(|s| s.state())
                            .is_none_or(|s| s.as_str() == "associated")
                    })
                    .map(|a| RouteTableAssociation {
                        main: a.main().unwrap_or(false),
                        subnet_id: a.subnet_id().map(str::to_string),
                    })
                    .collect(),
                routes: t
                    .routes()
                    .iter()
                    .map(|r| Route {
                        destination_cidr: r.destination_cidr_block().map(str::to_string),
                        destination_ipv6_cidr: r.destination_ipv6_cidr_block().map(str::to_string),
                        destination_prefix_list_id: r
                            .destination_prefix_list_id()
                            .map(str::to_string),
                        target: route_target(r),
                        state: r.state().map(|s| s.as_str().to_string()),
                    })
                    .collect(),
            })
        })
        .collect()
}

pub async fn internet_gateways(
    client: &Client,
    max_pages: u32,
) -> Result<Vec<InternetGateway>, CollectError> {
    const OP: &str = "ec2:DescribeInternetGateways";
    let items: Vec<ec2::InternetGateway> = all_items!(
        client,
        describe_internet_gateways,
        internet_gateways,
        OP,
        max_pages
    )?;
    items
        .iter()
        .map(|g| {
            Ok(InternetGateway {
                id: required(g.internet_gateway_id(), OP, "InternetGatewayId")?.to_string(),
                attachments: g
                    .attachments()
                    .iter()
                    .filter_map(|a| {
                        Some(GatewayAttachment {
                            vpc_id: a.vpc_id()?.to_string(),
                            state: a.state().map(|s| s.as_str().to_string()),
                        })
                    })
                    .collect(),
            })
        })
        .collect()
}

pub async fn nat_gateways(
    client: &Client,
    max_pages: u32,
) -> Result<Vec<NatGateway>, CollectError> {
    const OP: &str = "ec2:DescribeNatGateways";
    let items: Vec<ec2::NatGateway> =
        all_items!(client, describe_nat_gateways, nat_gateways, OP, max_pages)?;
    items
        .iter()
        .map(|n| {
            Ok(NatGateway {
                id: required(n.nat_gateway_id(), OP, "NatGatewayId")?.to_string(),
                vpc_id: n.vpc_id().map(str::to_string),
                subnet_id: n.subnet_id().map(str::to_string),
                state: n.state().map(|s| s.as_str().to_string()),
                connectivity_type: n.connectivity_type().map(|c| c.as_str().to_string()),
            })
        })
        .collect()
}

pub async fn vpc_endpoints(
    client: &Client,
    max_pages: u32,
) -> Result<Vec<VpcEndpoint>, CollectError> {
    const OP: &str = "ec2:DescribeVpcEndpoints";
    let items: Vec<ec2::VpcEndpoint> =
        all_items!(client, describe_vpc_endpoints, vpc_endpoints, OP, max_pages)?;
    items
        .iter()
        .map(|e| {
            Ok(VpcEndpoint {
                id: required(e.vpc_endpoint_id(), OP, "VpcEndpointId")?.to_string(),
                vpc_id: required(e.vpc_id(), OP, "VpcId")?.to_string(),
                service_name: required(e.service_name(), OP, "ServiceName")?.to_string(),
                endpoint_type: e.vpc_endpoint_type().map(|t| t.as_str().to_string()),
                state: e.state().map(|s| s.as_str().to_string()),
                route_table_ids: e.route_table_ids().to_vec(),
                subnet_ids: e.subnet_ids().to_vec(),
                security_group_ids: e
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string))
                    .collect(),
                private_dns_enabled: e.private_dns_enabled(),
            })
        })
        .collect()
}

pub async fn security_groups(
    client: &Client,
    max_pages: u32,
) -> Result<Vec<SecurityGroup>, CollectError> {
    const OP: &str = "ec2:DescribeSecurityGroups";
    let items: Vec<ec2::SecurityGroup> = all_items!(
        client,
        describe_security_groups,
        security_groups,
        OP,
        max_pages
    )?;
    items
        .iter()
        .map(|g| {
            Ok(SecurityGroup {
                id: required(g.group_id(), OP, "GroupId")?.to_string(),
                vpc_id: g.vpc_id().map(str::to_string),
                ingress: g
                    .ip_permissions()
                    .iter()
                    .map(|p| IngressRule {
                        protocol: p.ip_protocol().unwrap_or("-1").to_string(),
                        from_port: p.from_port(),
                        to_port: p.to_port(),
                        ipv4_ranges: p
                            .ip_ranges()
                            .iter()
                            .filter_map(|r| r.cidr_ip().map(str::to_string))
                            .collect(),
                        ipv6_ranges: p
                            .ipv6_ranges()
                            .iter()
                            .filter_map(|r| r.cidr_ipv6().map(str::to_string))
                            .collect(),
                        source_security_group_ids: p
                            .user_id_group_pairs()
                            .iter()
                            .filter_map(|r| r.group_id().map(str::to_string))
                            .collect(),
                        prefix_list_ids: p
                            .prefix_list_ids()
                            .iter()
                            .filter_map(|r| r.prefix_list_id().map(str::to_string))
                            .collect(),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The entries of each managed prefix list in `ids` (GetManagedPrefixListEntries: one call
/// per list, more for a list of many pages), `concurrency` at a time. A list that cannot be
/// read is returned with its `error`, so the rules treat it as unverifiable, never as
/// admitting nothing or everything.
pub async fn prefix_list_entries(
    client: &Client,
    ids: Vec<String>,
    max_pages: u32,
    concurrency: usize,
) -> Vec<PrefixList> {
    const OP: &str = "ec2:GetManagedPrefixListEntries";
    let read = |id: String| async move {
        let mut guard = PageGuard::new(OP, max_pages);
        let mut cidrs = Vec::new();
        let mut token: Option<String> = None;
        let result = loop {
            let page = match client
                .get_managed_prefix_list_entries()
                .prefix_list_id(&id)
                .set_next_token(token.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) => break Err(CollectError::aws(OP, e)),
            };
            cidrs.extend(
                page.entries()
                    .iter()
                    .filter_map(|e| e.cidr().map(str::to_string)),
            );
            match guard.next(page.next_token) {
                Ok(Some(next)) => token = Some(next),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(()) => PrefixList {
                id,
                cidrs,
                error: None,
            },
            Err(e) => {
                tracing::warn!(prefix_list = %id, error = %e, "prefix list entries not read");
                PrefixList {
                    id,
                    cidrs: Vec::new(),
                    error: Some(e.to_string()),
                }
            }
        }
    };
    let mut lists: Vec<PrefixList> = futures::stream::iter(ids)
        .map(read)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    lists.sort_by(|a, b| a.id.cmp(&b.id));
    lists
}

/// Every transit gateway VPC attachment of the region: one paginated call, whatever the
/// number of VPCs.
pub async fn transit_gateway_attachments(
    client: &Client,
    max_pages: u32,
) -> Result<Vec<TransitGatewayAttachment>, CollectError> {
    const OP: &str = "ec2:DescribeTransitGatewayVpcAttachments";
    let items: Vec<ec2::TransitGatewayVpcAttachment> = all_items!(
        client,
        describe_transit_gateway_vpc_attachments,
        transit_gateway_vpc_attachments,
        OP,
        max_pages
    )?;
    items
        .iter()
        .map(|a| {
            Ok(TransitGatewayAttachment {
                id: required(
                    a.transit_gateway_attachment_id(),
                    OP,
                    "TransitGatewayAttachmentId",
                )?
                .to_string(),
                transit_gateway_id: a.transit_gateway_id().map(str::to_string),
                vpc_id: required(a.vpc_id(), OP, "VpcId")?.to_string(),
                state: a.state().map(|s| s.as_str().to_string()),
                subnet_ids: a.subnet_ids().to_vec(),
            })
        })
        .collect()
}

/// The interface type of a Gateway Load Balancer endpoint's network interface; Network
/// Firewall endpoints are Gateway Load Balancer endpoints too.
const GWLB_ENDPOINT_INTERFACE: &str = "gateway_load_balancer_endpoint";

/// The network interfaces of every Gateway Load Balancer and Network Firewall endpoint in
/// the region: one paginated DescribeNetworkInterfaces call, filtered on the server by
/// `interface-type` (and again here, in case a server ignores the filter).
pub async fn gwlb_endpoint_interfaces(
    client: &Client,
    max_pages: u32,
) -> Result<Vec<EndpointInterface>, CollectError> {
    const OP: &str = "ec2:DescribeNetworkInterfaces";
    let mut guard = PageGuard::new(OP, max_pages);
    let mut items: Vec<ec2::NetworkInterface> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .describe_network_interfaces()
            .filters(
                ec2::Filter::builder()
                    .name("interface-type")
                    .values(GWLB_ENDPOINT_INTERFACE)
                    .build(),
            )
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| CollectError::aws(OP, e))?;
        match page.network_interfaces {
            Some(list) => items.extend(list),
            None => {
                return Err(CollectError::Malformed {
                    operation: OP,
                    message: "a page has no network_interfaces list".to_string(),
                })
            }
        }
        match guard.next(page.next_token)? {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    items
        .iter()
        .filter(|n| {
            n.interface_type()
                .is_some_and(|t| t.as_str() == GWLB_ENDPOINT_INTERFACE)
        })
        .map(|n| {
            Ok(EndpointInterface {
                id: required(n.network_interface_id(), OP, "NetworkInterfaceId")?.to_string(),
                vpc_id: n.vpc_id().map(str::to_string),
                subnet_id: n.subnet_id().map(str::to_string),
                interface_type: n.interface_type().map(|t| t.as_str().to_string()),
                description: n.description().map(str::to_string),
            })
        })
        .collect()
}

/// Counts of how many items each collector returned, for logs.
pub fn summary(region: &RegionSnapshot) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("vpcs", region.vpcs.len()),
        ("subnets", region.subnets.len()),
        ("route_tables", region.route_tables.len()),
        ("internet_gateways", region.internet_gateways.len()),
        ("nat_gateways", region.nat_gateways.len()),
        ("vpc_endpoints", region.vpc_endpoints.len()),
        ("security_groups", region.security_groups.len()),
        (
            "transit_gateway_attachments",
            region.transit_gateway_attachments.len(),
        ),
        (
            "gwlb_endpoint_interfaces",
            region.gwlb_endpoint_interfaces.len(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    //! Page-following and error shapes, with the SDK's own mock client (moto ignores
    //! MaxResults on several Describe calls, so it cannot exercise pagination).

    use super::*;
    use aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput;
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
    use aws_sdk_ec2::operation::describe_subnets::{DescribeSubnetsError, DescribeSubnetsOutput};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn subnet(id: &str) -> ec2::Subnet {
        ec2::Subnet::builder()
            .subnet_id(id)
            .vpc_id("vpc-1")
            .availability_zone("us-east-1a")
            .cidr_block("10.0.0.0/24")
            .available_ip_address_count(200)
            .build()
    }

    #[tokio::test]
    async fn subnets_follow_every_page() {
        let first = mock!(Client::describe_subnets)
            .match_requests(|req| req.next_token().is_none())
            .then_output(|| {
                DescribeSubnetsOutput::builder()
                    .subnets(subnet("subnet-1"))
                    .subnets(subnet("subnet-2"))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::describe_subnets)
            .match_requests(|req| req.next_token() == Some("page-2"))
            .then_output(|| {
                DescribeSubnetsOutput::builder()
                    .subnets(subnet("subnet-3"))
                    .next_token("page-3")
                    .build()
            });
        let third = mock!(Client::describe_subnets)
            .match_requests(|req| req.next_token() == Some("page-3"))
            .then_output(|| {
                DescribeSubnetsOutput::builder()
                    .subnets(subnet("subnet-4"))
                    .build()
            });
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&first, &second, &third]);
        let subnets = subnets(&client, 1000).await.expect("all pages");
        let ids: Vec<&str> = subnets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["subnet-1", "subnet-2", "subnet-3", "subnet-4"]);
        assert_eq!(subnets[3].available_ip_address_count, Some(200));
        assert_eq!(
            (first.num_calls(), second.num_calls(), third.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn prefix_list_entries_follow_pages_and_an_unreadable_list_keeps_its_error() {
        use aws_sdk_ec2::operation::get_managed_prefix_list_entries::{
            GetManagedPrefixListEntriesError, GetManagedPrefixListEntriesOutput,
        };
        let entry = |cidr: &str| ec2::PrefixListEntry::builder().cidr(cidr).build();
        let first = mock!(Client::get_managed_prefix_list_entries)
            .match_requests(|req| {
                req.prefix_list_id() == Some("pl-corp") && req.next_token().is_none()
            })
            .then_output(move || {
                GetManagedPrefixListEntriesOutput::builder()
                    .entries(entry("10.0.0.0/17"))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::get_managed_prefix_list_entries)
            .match_requests(|req| {
                req.prefix_list_id() == Some("pl-corp") && req.next_token() == Some("page-2")
            })
            .then_output(move || {
                GetManagedPrefixListEntriesOutput::builder()
                    .entries(entry("10.0.128.0/17"))
                    .build()
            });
        let denied = mock!(Client::get_managed_prefix_list_entries)
            .match_requests(|req| req.prefix_list_id() == Some("pl-denied"))
            .then_error(|| {
                GetManagedPrefixListEntriesError::generic(
                    aws_sdk_ec2::error::ErrorMetadata::builder()
                        .code("UnauthorizedOperation")
                        .message("You are not authorized to perform this operation.")
                        .build(),
                )
            });
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&first, &second, &denied]);
        let lists =
            prefix_list_entries(&client, vec!["pl-denied".into(), "pl-corp".into()], 1000, 2).await;
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[0].id, "pl-corp");
        assert_eq!(lists[0].cidrs, ["10.0.0.0/17", "10.0.128.0/17"]);
        assert_eq!(lists[0].error, None);
        assert_eq!(lists[1].id, "pl-denied");
        assert!(lists[1].cidrs.is_empty());
        assert!(
            lists[1]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("ec2:GetManagedPrefixListEntries")),
            "{:?}",
            lists[1]
        );
    }

    #[tokio::test]
    async fn a_repeated_pagination_token_fails_the_call_instead_of_truncating_it() {
        // The SDK's paginator would stop at the repeated token and return two pages as if
        // they were the whole list.
        let first = mock!(Client::describe_subnets)
            .match_requests(|req| req.next_token().is_none())
            .then_output(|| {
                DescribeSubnetsOutput::builder()
                    .subnets(subnet("subnet-1"))
                    .next_token("same")
                    .build()
            });
        let again = mock!(Client::describe_subnets)
            .match_requests(|req| req.next_token() == Some("same"))
            .then_output(|| {
                DescribeSubnetsOutput::builder()
                    .subnets(subnet("subnet-2"))
                    .next_token("same")
                    .build()
            });
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&first, &again]);
        let err = subnets(&client, 1000).await.expect_err("repeated token");
        assert!(matches!(err, CollectError::Pagination { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "ec2:DescribeSubnets: pagination did not end: page 2 repeats the token of an \
             earlier page; the list would be incomplete"
        );
    }

    #[tokio::test]
    async fn a_pagination_token_that_never_ends_fails_after_max_pages() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let page = std::sync::Arc::new(AtomicUsize::new(0));
        let endless = mock!(Client::describe_subnets).then_output(move || {
            let n = page.fetch_add(1, Ordering::SeqCst);
            DescribeSubnetsOutput::builder()
                .subnets(subnet(&format!("subnet-{n}")))
                .next_token(format!("fresh-{n}"))
                .build()
        });
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&endless]);
        let err = subnets(&client, 5).await.expect_err("endless pages");
        assert_eq!(
            err.to_string(),
            "ec2:DescribeSubnets: pagination did not end: still more after 5 pages \
             (aws.max_pages); the list may never end"
        );
        assert_eq!(endless.num_calls(), 5);
    }

    #[tokio::test]
    async fn a_page_without_its_item_list_is_malformed_not_empty() {
        let rule = mock!(Client::describe_route_tables)
            .then_output(|| DescribeRouteTablesOutput::builder().build());
        let client = mock_client!(aws_sdk_ec2, [&rule]);
        let err = route_tables(&client, 1000).await.expect_err("no list");
        assert_eq!(
            err.to_string(),
            "ec2:DescribeRouteTables: unexpected response: a page has no route_tables list"
        );
        // An empty list is a real answer.
        let rule = mock!(Client::describe_route_tables).then_output(|| {
            DescribeRouteTablesOutput::builder()
                .set_route_tables(Some(Vec::new()))
                .build()
        });
        let client = mock_client!(aws_sdk_ec2, [&rule]);
        assert!(route_tables(&client, 1000).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn security_group_rules_survive_paging_and_conversion() {
        let page = |token: Option<&'static str>, id: &'static str, next: Option<&'static str>| {
            mock!(Client::describe_security_groups)
                .match_requests(move |req| req.next_token() == token)
                .then_output(move || {
                    DescribeSecurityGroupsOutput::builder()
                        .security_groups(
                            ec2::SecurityGroup::builder()
                                .group_id(id)
                                .vpc_id("vpc-1")
                                .ip_permissions(
                                    ec2::IpPermission::builder()
                                        .ip_protocol("tcp")
                                        .from_port(443)
                                        .to_port(443)
                                        .ip_ranges(
                                            ec2::IpRange::builder().cidr_ip("10.0.0.0/16").build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .set_next_token(next.map(str::to_string))
                        .build()
                })
        };
        let (a, b) = (page(None, "sg-a", Some("t")), page(Some("t"), "sg-b", None));
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&a, &b]);
        let groups = security_groups(&client, 1000).await.expect("all pages");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].id, "sg-b");
        assert_eq!(groups[1].ingress[0].ipv4_ranges, ["10.0.0.0/16"]);
        assert_eq!(groups[1].ingress[0].from_port, Some(443));
    }

    #[tokio::test]
    async fn access_denied_on_a_later_page_fails_the_collection_with_its_operation_and_code() {
        let first = mock!(Client::describe_subnets)
            .match_requests(|req| req.next_token().is_none())
            .then_output(|| {
                DescribeSubnetsOutput::builder()
                    .subnets(subnet("subnet-1"))
                    .next_token("2")
                    .build()
            });
        let denied = mock!(Client::describe_subnets)
            .match_requests(|req| req.next_token() == Some("2"))
            .then_error(|| {
                DescribeSubnetsError::generic(
                    aws_sdk_ec2::error::ErrorMetadata::builder()
                        .code("UnauthorizedOperation")
                        .message("You are not authorized to perform this operation.")
                        .build(),
                )
            });
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&first, &denied]);
        let err = subnets(&client, 1000)
            .await
            .expect_err("a failed page fails the whole call");
        match &err {
            CollectError::Aws {
                operation, code, ..
            } => {
                assert_eq!(*operation, "ec2:DescribeSubnets");
                assert_eq!(code.as_deref(), Some("UnauthorizedOperation"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("not authorized"), "{err}");
    }

    #[tokio::test]
    async fn item_without_its_id_is_a_malformed_response_not_a_panic() {
        let rule = mock!(Client::describe_subnets).then_output(|| {
            DescribeSubnetsOutput::builder()
                .subnets(ec2::Subnet::builder().vpc_id("vpc-1").build())
                .build()
        });
        let client = mock_client!(aws_sdk_ec2, [&rule]);
        let err = subnets(&client, 1000).await.expect_err("malformed");
        assert_eq!(
            err.to_string(),
            "ec2:DescribeSubnets: unexpected response: a response item has no SubnetId"
        );
    }

    #[tokio::test]
    async fn route_targets_are_read_from_whichever_field_holds_them() {
        let rule = mock!(Client::describe_route_tables).then_output(|| {
            DescribeRouteTablesOutput::builder()
                .route_tables(
                    ec2::RouteTable::builder()
                        .route_table_id("rtb-1")
                        .vpc_id("vpc-1")
                        .associations(ec2::RouteTableAssociation::builder().main(true).build())
                        .routes(
                            ec2::Route::builder()
                                .destination_cidr_block("0.0.0.0/0")
                                .nat_gateway_id("nat-1")
                                .state(ec2::RouteState::Blackhole)
                                .build(),
                        )
                        .routes(
                            ec2::Route::builder()
                                .destination_prefix_list_id("pl-63a5400a")
                                .gateway_id("vpce-s3")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_ec2, [&rule]);
        let tables = route_tables(&client, 1000).await.unwrap();
        assert!(tables[0].associations[0].main);
        assert_eq!(tables[0].routes[0].target.as_deref(), Some("nat-1"));
        assert_eq!(tables[0].routes[0].state.as_deref(), Some("blackhole"));
        assert_eq!(tables[0].routes[1].target.as_deref(), Some("vpce-s3"));
    }

    #[tokio::test]
    async fn firewall_endpoint_interfaces_are_asked_for_by_type_and_kept_by_type() {
        use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
        // moto cannot create Network Firewall endpoints: a canned response stands in.
        let rule = mock!(Client::describe_network_interfaces)
            .match_requests(|req| {
                req.filters().iter().any(|f| {
                    f.name() == Some("interface-type")
                        && f.values() == ["gateway_load_balancer_endpoint"]
                })
            })
            .then_output(|| {
                DescribeNetworkInterfacesOutput::builder()
                    .network_interfaces(
                        ec2::NetworkInterface::builder()
                            .network_interface_id("eni-fw")
                            .vpc_id("vpc-1")
                            .subnet_id("subnet-fw")
                            .interface_type(ec2::NetworkInterfaceType::GatewayLoadBalancerEndpoint)
                            .description("VPC Endpoint Interface vpce-0fw")
                            .build(),
                    )
                    // A server that ignored the filter: dropped here.
                    .network_interfaces(
                        ec2::NetworkInterface::builder()
                            .network_interface_id("eni-app")
                            .subnet_id("subnet-app")
                            .interface_type(ec2::NetworkInterfaceType::Interface)
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_ec2, [&rule]);
        let enis = gwlb_endpoint_interfaces(&client, 1000).await.unwrap();
        assert_eq!(enis.len(), 1);
        assert_eq!(enis[0].subnet_id.as_deref(), Some("subnet-fw"));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn transit_gateway_attachments_keep_their_subnets() {
        use aws_sdk_ec2::operation::describe_transit_gateway_vpc_attachments::DescribeTransitGatewayVpcAttachmentsOutput;
        let rule = mock!(Client::describe_transit_gateway_vpc_attachments).then_output(|| {
            DescribeTransitGatewayVpcAttachmentsOutput::builder()
                .transit_gateway_vpc_attachments(
                    ec2::TransitGatewayVpcAttachment::builder()
                        .transit_gateway_attachment_id("tgw-attach-1")
                        .transit_gateway_id("tgw-1")
                        .vpc_id("vpc-1")
                        .state(ec2::TransitGatewayAttachmentState::Available)
                        .subnet_ids("subnet-a")
                        .subnet_ids("subnet-b")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_ec2, [&rule]);
        let found = transit_gateway_attachments(&client, 1000).await.unwrap();
        assert_eq!(found[0].subnet_ids, ["subnet-a", "subnet-b"]);
        assert_eq!(found[0].state.as_deref(), Some("available"));
    }
}
