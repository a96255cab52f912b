//! The picture's layout: the columns (one per AZ) and endpoint rows of one VPC, the sizes
//! they are drawn at, and the [`Picture`] being drawn with the findings it has yet to place.
//! Facts about resources that decide what is drawn (a live NAT gateway, a gateway endpoint,
//! an AZ a finding names) are here too.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

pub(super) const MARGIN: f64 = 16.0;
pub(super) const COLUMN_WIDTH: f64 = 250.0;
pub(super) const COLUMN_GAP: f64 = 16.0;
pub(super) const BOX_GAP: f64 = 8.0;
pub(super) const PUBLIC_HEIGHT: f64 = 44.0;
pub(super) const NAT_HEIGHT: f64 = 40.0;
pub(super) const PRIVATE_HEIGHT: f64 = 60.0;
pub(super) const CHIP_HEIGHT: f64 = 22.0;
pub(super) const ROUTE_GAP: f64 = 34.0;
pub(super) const LABEL_HEIGHT: f64 = 16.0;
/// Characters that fit on one line of a box, at the 11px font.
pub(super) const BOX_CHARS: usize = 38;

/// One column of the drawing: an AZ and what is in it.
pub(super) struct Column<'v, 'a> {
    pub(super) az: String,
    /// True for an AZ of the region that the VPC does not use, drawn for `vpc.az_count`.
    pub(super) unused: bool,
    pub(super) public: Vec<&'v SubnetView<'a>>,
    pub(super) private: Vec<&'v SubnetView<'a>>,
    pub(super) nats: Vec<&'a NatGateway>,
}

/// An interface endpoint row: an endpoint, or a required service that has none.
pub(super) struct EndpointRow<'a> {
    pub(super) service: String,
    pub(super) endpoint: Option<&'a VpcEndpoint>,
    /// AZs (of private subnets) the endpoint has a subnet in.
    pub(super) covered: BTreeSet<String>,
}

pub(super) struct Picture<'t, 'v, 'a> {
    pub(super) topo: &'t RegionTopology<'a>,
    pub(super) view: &'v VpcView<'a>,
    pub(super) findings: Vec<&'t FindingLink<'t>>,
    /// Which findings some element stands for; the rest go to the header.
    pub(super) drawn: Vec<bool>,
    /// Where each box was drawn, by element id, for the route lines: (x, y, width, height).
    pub(super) boxes: BTreeMap<String, (f64, f64, f64, f64)>,
}

impl<'t, 'v, 'a> Picture<'t, 'v, 'a> {
    pub(super) fn new(
        topo: &'t RegionTopology<'a>,
        view: &'v VpcView<'a>,
        findings: Vec<&'t FindingLink<'t>>,
    ) -> Self {
        let drawn = vec![false; findings.len()];
        Picture {
            topo,
            view,
            findings,
            drawn,
            boxes: BTreeMap::new(),
        }
    }

    /// The findings matching `pred`, marked as drawn.
    pub(super) fn take(&mut self, pred: impl Fn(&Finding) -> bool) -> Vec<&'t FindingLink<'t>> {
        let mut out = Vec::new();
        for (i, link) in self.findings.iter().enumerate() {
            if pred(link.finding) {
                self.drawn[i] = true;
                out.push(*link);
            }
        }
        out
    }

    pub(super) fn on_resource(&mut self, kind: ResourceType, id: &str) -> Vec<&'t FindingLink<'t>> {
        self.take(|f| f.resource_type == kind && f.resource_id == id)
    }

    pub(super) fn region(&self) -> &str {
        &self.topo.region.region
    }

    pub(super) fn columns(&self) -> Vec<Column<'v, 'a>> {
        let mut columns: Vec<Column> = self
            .view
            .azs()
            .into_iter()
            .map(|az| Column {
                az: az.to_string(),
                unused: false,
                public: Vec::new(),
                private: Vec::new(),
                nats: Vec::new(),
            })
            .collect();
        // With too few AZs, the region's unused AZs are drawn as gaps, up to the minimum.
        let wanted = self
            .findings
            .iter()
            .filter(|l| l.finding.rule_id == catalogue::VPC_AZ_COUNT)
            .filter_map(|l| l.finding.details.get("min_azs")?.as_u64())
            .max()
            .unwrap_or(0) as usize;
        for az in &self.topo.region.availability_zones {
            if columns.len() >= wanted {
                break;
            }
            if !columns.iter().any(|c| c.az == az.name) {
                columns.push(Column {
                    az: az.name.clone(),
                    unused: true,
                    public: Vec::new(),
                    private: Vec::new(),
                    nats: Vec::new(),
                });
            }
        }
        columns.sort_by(|a, b| a.az.cmp(&b.az));
        let mut subnets: Vec<&SubnetView> = self.view.subnets.iter().collect();
        subnets.sort_by(|a, b| a.subnet.id.cmp(&b.subnet.id));
        for subnet in subnets {
            if let Some(column) = columns.iter_mut().find(|c| c.az == subnet.az()) {
                match subnet.role {
                    SubnetRole::Public => column.public.push(subnet),
                    // Isolated and infrastructure subnets are drawn in the private row, greyed.
                    SubnetRole::Private | SubnetRole::Isolated | SubnetRole::Infrastructure => {
                        column.private.push(subnet)
                    }
                }
            }
        }
        let mut nats = self.view.nat_gateways.clone();
        nats.sort_by(|a, b| a.id.cmp(&b.id));
        for nat in nats {
            let az = nat
                .subnet_id
                .as_deref()
                .and_then(|s| self.topo.subnet(s))
                .map(|s| s.az().to_string());
            if let Some(column) = columns.iter_mut().find(|c| Some(&c.az) == az.as_ref()) {
                column.nats.push(nat);
            }
        }
        columns
    }

    pub(super) fn endpoint_rows(&self) -> Vec<EndpointRow<'a>> {
        let prefix = format!("com.amazonaws.{}.", self.region());
        let short = |name: &str| name.strip_prefix(&prefix).unwrap_or(name).to_string();
        let mut rows: Vec<EndpointRow> = self
            .view
            .endpoints
            .iter()
            .filter(|e| !is_gateway(e))
            .map(|e| EndpointRow {
                service: short(&e.service_name),
                endpoint: Some(*e),
                covered: e
                    .subnet_ids
                    .iter()
                    .filter_map(|id| self.topo.subnet(id))
                    .map(|s| s.az().to_string())
                    .collect(),
            })
            .collect();
        let missing: BTreeSet<String> = self
            .findings
            .iter()
            .filter(|l| l.finding.rule_id == catalogue::ENDPOINT_INTERFACE_REQUIRED)
            .filter_map(|l| {
                l.finding
                    .details
                    .get("missing_services")?
                    .as_array()
                    .cloned()
            })
            .flatten()
            .filter_map(|s| s.as_str().map(short))
            .collect();
        for service in missing {
            // An endpoint that exists but is not available stays drawn as itself, marked.
            if !rows
                .iter()
                .any(|r| r.service == service && r.endpoint.is_some_and(is_available))
            {
                rows.push(EndpointRow {
                    service,
                    endpoint: None,
                    covered: BTreeSet::new(),
                });
            }
        }
        rows.sort_by(|a, b| {
            (&a.service, a.endpoint.map(|e| &e.id)).cmp(&(&b.service, b.endpoint.map(|e| &e.id)))
        });
        rows
    }
}

pub(super) fn is_gateway(endpoint: &VpcEndpoint) -> bool {
    endpoint
        .endpoint_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("gateway"))
}

pub(super) fn is_available(endpoint: &VpcEndpoint) -> bool {
    endpoint
        .state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("available"))
}

pub(super) fn is_live(nat: &NatGateway) -> bool {
    !matches!(
        nat.state.as_deref(),
        Some("deleted" | "deleting" | "failed")
    )
}

/// True when a per-AZ finding names `az` among the zones lacking (or gives no list).
pub(super) fn lacks_az(finding: &Finding, az: &str) -> bool {
    match finding
        .details
        .get("availability_zones_lacking")
        .and_then(|v| v.as_array())
    {
        Some(list) => list.iter().any(|v| v.as_str() == Some(az)),
        None => true,
    }
}

/// `us-east-1c` → `c`, for short labels; anything else unchanged.
pub(super) fn short_az(az: &str) -> &str {
    match az.char_indices().last() {
        Some((i, c))
            if c.is_ascii_alphabetic() && az[..i].ends_with(|d: char| d.is_ascii_digit()) =>
        {
            &az[i..]
        }
        _ => az,
    }
}
