//! The VPC picture: one audited VPC drawn as a self-contained SVG (no script, no external
//! asset), for the `--format html` report and the daemon's status page.
//!
//! Availability zones are columns. Each column holds, top to bottom, the public subnets, the
//! NAT gateways placed in that zone, the private subnets (with a line from each to the NAT
//! gateway its default route targets) and one chip per interface endpoint saying whether
//! the endpoint has a subnet in that zone. The internet gateway sits above the columns, the
//! gateway endpoints (S3) below them. Whether a subnet is public or private is the rule
//! engine's own answer ([`RegionTopology`]), so the picture and the findings cannot disagree.
//!
//! Every element a finding is about gets a red outline and a badge, and links to the
//! finding's row (`href` chosen by the caller, e.g. `#finding-3`). What is missing is drawn
//! as a dashed red gap with a label ("AZ us-east-1c: no NAT", "ecr.dkr: missing in AZ
//! us-east-1b", "no S3 gateway endpoint"). A finding that no element stands for is shown
//! as a pill in the header, so none is lost. Elements carry `data-kind` and `data-id` (or
//! `data-gap`, `data-az`, `data-service`) attributes for tests and a `<title>` tooltip.
//!
//! The drawing is bounded: at most [`MAX_AZ_COLUMNS`] columns, [`MAX_PER_CELL`] subnets or
//! NAT gateways per cell and [`MAX_ENDPOINT_ROWS`] endpoint rows; the rest is counted in a
//! "+N more" note. Every value from the account goes through [`escape`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::export::html::escape;
use crate::finding::{Finding, ResourceType};
use crate::rules::catalogue;
use crate::rules::pack::SubnetRole;
use crate::rules::topology::{RegionTopology, SubnetView, VpcView};
use crate::snapshot::{NatGateway, RegionSnapshot, VpcEndpoint};

/// At most this many AZ columns are drawn.
pub const MAX_AZ_COLUMNS: usize = 8;
/// At most this many subnets (or NAT gateways) are drawn in one cell of a column.
pub const MAX_PER_CELL: usize = 6;
/// At most this many interface endpoint rows are drawn.
pub const MAX_ENDPOINT_ROWS: usize = 16;

/// A finding and where its row is, e.g. `#finding-3`.
#[derive(Debug, Clone)]
pub struct FindingLink<'a> {
    pub finding: &'a Finding,
    pub href: String,
}

const MARGIN: f64 = 16.0;
const COLUMN_WIDTH: f64 = 250.0;
const COLUMN_GAP: f64 = 16.0;
const BOX_GAP: f64 = 8.0;
const PUBLIC_HEIGHT: f64 = 44.0;
const NAT_HEIGHT: f64 = 40.0;
const PRIVATE_HEIGHT: f64 = 60.0;
const CHIP_HEIGHT: f64 = 22.0;
const ROUTE_GAP: f64 = 34.0;
const LABEL_HEIGHT: f64 = 16.0;
/// Characters that fit on one line of a box, at the 11px font.
const BOX_CHARS: usize = 38;

const RED: &str = "#c62828";
const GAP_FILL: &str = "#fff0f0";

/// Draws one VPC of `topo` with `findings` (those of other VPCs are ignored).
pub fn render(topo: &RegionTopology, view: &VpcView, findings: &[FindingLink]) -> String {
    let account = &topo.region.account_id;
    let region = &topo.region.region;
    let findings: Vec<&FindingLink> = findings
        .iter()
        .filter(|l| {
            l.finding.vpc_id.as_deref() == Some(view.vpc.id.as_str())
                && l.finding.account_id == *account
                && l.finding.region == *region
        })
        .collect();
    let mut picture = Picture::new(topo, view, findings);
    picture.draw()
}

/// One column of the drawing: an AZ and what is in it.
struct Column<'v, 'a> {
    az: String,
    /// True for an AZ of the region that the VPC does not use, drawn for `vpc.az_count`.
    unused: bool,
    public: Vec<&'v SubnetView<'a>>,
    private: Vec<&'v SubnetView<'a>>,
    nats: Vec<&'a NatGateway>,
}

/// An interface endpoint row: an endpoint, or a required service that has none.
struct EndpointRow<'a> {
    service: String,
    endpoint: Option<&'a VpcEndpoint>,
    /// AZs (of private subnets) the endpoint has a subnet in.
    covered: BTreeSet<String>,
}

struct Picture<'t, 'v, 'a> {
    topo: &'t RegionTopology<'a>,
    view: &'v VpcView<'a>,
    findings: Vec<&'t FindingLink<'t>>,
    /// Which findings some element stands for; the rest go to the header.
    drawn: Vec<bool>,
    /// Where each box was drawn, by element id, for the route lines: (x, y, width, height).
    boxes: BTreeMap<String, (f64, f64, f64, f64)>,
}

impl<'t, 'v, 'a> Picture<'t, 'v, 'a> {
    fn new(
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
    fn take(&mut self, pred: impl Fn(&Finding) -> bool) -> Vec<&'t FindingLink<'t>> {
        let mut out = Vec::new();
        for (i, link) in self.findings.iter().enumerate() {
            if pred(link.finding) {
                self.drawn[i] = true;
                out.push(*link);
            }
        }
        out
    }

    fn on_resource(&mut self, kind: ResourceType, id: &str) -> Vec<&'t FindingLink<'t>> {
        self.take(|f| f.resource_type == kind && f.resource_id == id)
    }

    fn region(&self) -> &str {
        &self.topo.region.region
    }

    fn columns(&self) -> Vec<Column<'v, 'a>> {
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

    fn endpoint_rows(&self) -> Vec<EndpointRow<'a>> {
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

    fn draw(&mut self) -> String {
        let mut columns = self.columns();
        let hidden_columns = columns.len().saturating_sub(MAX_AZ_COLUMNS);
        columns.truncate(MAX_AZ_COLUMNS);
        let mut rows = self.endpoint_rows();
        let hidden_rows = rows.len().saturating_sub(MAX_ENDPOINT_ROWS);
        rows.truncate(MAX_ENDPOINT_ROWS);

        let n = columns.len().max(1) as f64;
        let width = MARGIN * 2.0 + n * COLUMN_WIDTH + (n - 1.0) * COLUMN_GAP;
        let inner = width - 2.0 * MARGIN;
        let column_x = |i: usize| MARGIN + i as f64 * (COLUMN_WIDTH + COLUMN_GAP);
        let cell = |count: usize, height: f64| {
            let shown = count.clamp(1, MAX_PER_CELL) as f64;
            let more = if count > MAX_PER_CELL {
                LABEL_HEIGHT
            } else {
                0.0
            };
            LABEL_HEIGHT + shown * (height + BOX_GAP) + more
        };
        let public_h = columns
            .iter()
            .map(|c| cell(c.public.len(), PUBLIC_HEIGHT))
            .fold(0.0, f64::max);
        let nat_h = columns
            .iter()
            .map(|c| cell(c.nats.len(), NAT_HEIGHT))
            .fold(0.0, f64::max);
        let private_h = columns
            .iter()
            .map(|c| cell(c.private.len(), PRIVATE_HEIGHT))
            .fold(0.0, f64::max);

        // Vertical layout.
        let igw_y = 74.0;
        let igw_h = 34.0;
        let columns_y = igw_y + igw_h + 26.0;
        let public_y = columns_y + 26.0;
        let nat_y = public_y + public_h + 4.0;
        let private_y = nat_y + nat_h + ROUTE_GAP;
        let columns_end = private_y + private_h + 4.0;
        let endpoints_y = columns_end + 18.0;
        let row_h = LABEL_HEIGHT + CHIP_HEIGHT + 10.0;
        let endpoints_h = LABEL_HEIGHT
            + (rows.len().max(1) as f64) * row_h
            + if hidden_rows > 0 { LABEL_HEIGHT } else { 0.0 };
        let gateways_y = endpoints_y + endpoints_h + 12.0;
        let gateway_list: Vec<&VpcEndpoint> = {
            let mut g: Vec<&VpcEndpoint> = self
                .view
                .endpoints
                .iter()
                .copied()
                .filter(|e| is_gateway(e))
                .collect();
            g.sort_by(|a, b| a.id.cmp(&b.id));
            g
        };
        let has_s3 = gateway_list.iter().any(|e| self.is_s3(e));
        let gateway_rows = gateway_list.len() + usize::from(!has_s3);
        let gateways_h = LABEL_HEIGHT + gateway_rows as f64 * (40.0 + BOX_GAP);
        let legend_y = gateways_y + gateways_h + 8.0;
        let height = legend_y + 30.0;

        // Three layers: column backgrounds, route lines over them, boxes over the lines.
        let mut background = String::new();
        let mut lines = String::new();
        let mut body = String::new();

        // Columns: background and AZ title.
        for (i, column) in columns.iter().enumerate() {
            let x = column_x(i);
            let az = escape(&column.az);
            if column.unused {
                let links = self.take(|f| f.rule_id == catalogue::VPC_AZ_COUNT);
                let attrs = format!(
                    "data-kind=\"gap\" data-gap=\"az-unused\" data-az=\"{az}\"{}",
                    finding_attr(&links)
                );
                let title = format!("AZ {}: not used by this VPC", column.az);
                open(&mut background, &links, &attrs, &title);
                gap_rect(
                    &mut background,
                    x,
                    columns_y,
                    COLUMN_WIDTH,
                    columns_end - columns_y,
                );
                text(
                    &mut background,
                    x + 8.0,
                    columns_y + 18.0,
                    12.0,
                    "bold",
                    RED,
                    &column.az,
                );
                text(
                    &mut background,
                    x + 8.0,
                    columns_y + 40.0,
                    11.0,
                    "normal",
                    RED,
                    &format!("AZ {}: not used by this VPC", short_az(&column.az)),
                );
                close(&mut background, &links);
                badge(&mut background, x + COLUMN_WIDTH, columns_y, &links);
                continue;
            }
            let _ = write!(
                background,
                "<g data-kind=\"az\" data-az=\"{az}\"><title>AZ {az}</title>\
                 <rect x=\"{x}\" y=\"{columns_y}\" width=\"{COLUMN_WIDTH}\" height=\"{}\" rx=\"6\" \
                 fill=\"#f7f7f7\" stroke=\"#bbbbbb\"/>",
                columns_end - columns_y
            );
            text(
                &mut background,
                x + 8.0,
                columns_y + 18.0,
                12.0,
                "bold",
                "#333",
                &column.az,
            );
            background.push_str("</g>\n");
        }

        // Internet gateway(s), or the gap.
        self.draw_igw(&mut body, MARGIN, igw_y, inner, igw_h);

        // Cells.
        for (i, column) in columns.iter().enumerate().filter(|(_, c)| !c.unused) {
            let x = column_x(i) + 8.0;
            let w = COLUMN_WIDTH - 16.0;
            self.draw_public_cell(&mut body, column, x, public_y, w);
            self.draw_nat_cell(&mut body, column, x, nat_y, w);
            self.draw_private_cell(&mut body, column, x, private_y, w);
        }

        // Route lines: public subnet → IGW, private subnet → NAT.
        self.draw_routes(&mut lines, igw_y + igw_h);

        // Interface endpoints.
        let private_azs: Vec<(usize, &str)> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.private.is_empty())
            .map(|(i, c)| (i, c.az.as_str()))
            .collect();
        text(
            &mut body,
            MARGIN,
            endpoints_y + 11.0,
            12.0,
            "bold",
            "#333",
            "Interface endpoints (a chip per AZ with private subnets)",
        );
        if rows.is_empty() {
            text(
                &mut body,
                MARGIN,
                endpoints_y + LABEL_HEIGHT + 14.0,
                11.0,
                "normal",
                "#555",
                "none",
            );
        }
        for (r, row) in rows.iter().enumerate() {
            let y = endpoints_y + LABEL_HEIGHT + r as f64 * row_h;
            self.draw_endpoint_row(&mut body, row, &private_azs, &column_x, y, inner);
        }
        if hidden_rows > 0 {
            let y = endpoints_y + LABEL_HEIGHT + rows.len() as f64 * row_h + 11.0;
            more(&mut body, MARGIN, y, hidden_rows, "interface endpoints");
        }

        // Gateway endpoints (S3).
        text(
            &mut body,
            MARGIN,
            gateways_y + 11.0,
            12.0,
            "bold",
            "#333",
            "Gateway endpoints",
        );
        let mut y = gateways_y + LABEL_HEIGHT;
        if !has_s3 {
            let links = self.take(|f| f.rule_id == catalogue::ENDPOINT_S3_GATEWAY);
            let attrs = format!(
                "data-kind=\"gap\" data-gap=\"no-s3-gateway\"{}",
                finding_attr(&links)
            );
            let label = "no S3 gateway endpoint";
            open(&mut body, &links, &attrs, &tooltip(label, &links));
            gap_rect(&mut body, MARGIN, y, inner, 40.0);
            text(&mut body, MARGIN + 10.0, y + 25.0, 12.0, "bold", RED, label);
            close(&mut body, &links);
            badge(&mut body, MARGIN + inner, y, &links);
            y += 40.0 + BOX_GAP;
        }
        for endpoint in gateway_list {
            self.draw_gateway_endpoint(&mut body, endpoint, MARGIN, y, inner);
            y += 40.0 + BOX_GAP;
        }
        if hidden_columns > 0 {
            more(
                &mut body,
                MARGIN + 300.0,
                legend_y - 4.0,
                hidden_columns,
                "AZs",
            );
        }
        legend(&mut body, MARGIN, legend_y + 6.0);

        // The header last: it lists the findings that no element stands for.
        let mut header = String::new();
        self.draw_header(&mut header, MARGIN, inner);

        let id = escape(&self.view.vpc.id);
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg class=\"vpc-picture\" id=\"vpc-picture-{id}\" \
             data-kind=\"vpc-picture\" data-vpc=\"{id}\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Verdana, sans-serif\" \
             role=\"img\" aria-label=\"VPC {id}\">\n\
             <rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n"
        );
        svg.push_str(&header);
        svg.push_str(&background);
        svg.push_str(&lines);
        svg.push_str(&body);
        svg.push_str("</svg>\n");
        svg
    }

    fn is_s3(&self, endpoint: &VpcEndpoint) -> bool {
        endpoint.service_name == format!("com.amazonaws.{}.s3", self.region())
            || endpoint.service_name.ends_with(".s3")
    }

    fn draw_header(&mut self, out: &mut String, x: f64, width: f64) {
        let vpc = self.view.vpc;
        let name = vpc.tags.get("Name").map(String::as_str).unwrap_or("");
        let title = if name.is_empty() {
            vpc.id.clone()
        } else {
            format!("{name} ({})", vpc.id)
        };
        let leftover: Vec<&FindingLink> = self
            .findings
            .iter()
            .zip(&self.drawn)
            .filter(|(_, drawn)| !**drawn)
            .map(|(l, _)| *l)
            .collect();
        let _ = write!(
            out,
            "<g data-kind=\"vpc\" data-id=\"{}\"{}><title>{}</title>",
            escape(&vpc.id),
            finding_attr(&leftover),
            escape(&format!(
                "VPC {title}, CIDR {}",
                vpc.cidr_block.as_deref().unwrap_or("none")
            )),
        );
        text(out, x, 22.0, 15.0, "bold", "#222", &title);
        let subtitle = format!(
            "{} · account {} · {}{} · {} finding(s)",
            vpc.cidr_blocks
                .first()
                .or(vpc.cidr_block.as_ref())
                .map(String::as_str)
                .unwrap_or("no IPv4 CIDR"),
            self.topo.region.account_id,
            self.region(),
            if vpc.is_default {
                " · default VPC"
            } else {
                ""
            },
            self.findings.len()
        );
        text_wide(out, x, 40.0, 11.0, "#555", &subtitle, width);
        // One pill per finding that no element stands for (VPC-wide ones: DNS, CIDR, ...).
        let mut px = x;
        let py = 48.0;
        for (i, link) in leftover.iter().enumerate() {
            let label = format!("! {}", link.finding.rule_id);
            let w = 14.0 + label.chars().count() as f64 * 6.6;
            if px + w > x + width - 90.0 {
                more(out, px, py + 13.0, leftover.len() - i, "VPC findings");
                break;
            }
            let _ = write!(
                out,
                "<a href=\"{}\"><g data-kind=\"finding-pill\" data-finding=\"{}\"><title>{}</title>\
                 <rect x=\"{px}\" y=\"{py}\" width=\"{w}\" height=\"18\" rx=\"9\" fill=\"{RED}\"/>",
                escape(&link.href),
                escape(anchor(&link.href)),
                escape(&format!(
                    "{} ({}): {}",
                    link.finding.rule_id, link.finding.severity, link.finding.message
                )),
            );
            text(out, px + 7.0, py + 13.0, 11.0, "bold", "#ffffff", &label);
            out.push_str("</g></a>");
            px += w + 6.0;
        }
        out.push_str("</g>\n");
    }

    fn draw_igw(&mut self, out: &mut String, x: f64, y: f64, width: f64, h: f64) {
        let links = self.take(|f| f.rule_id == catalogue::VPC_IGW_ATTACHED);
        let igws: Vec<String> = self
            .view
            .internet_gateways
            .iter()
            .filter(|i| self.view.has_attached_igw(&i.id))
            .map(|i| i.id.clone())
            .collect();
        let w = 260.0_f64.min(width);
        let bx = x + (width - w) / 2.0;
        if igws.is_empty() {
            let attrs = format!(
                "data-kind=\"gap\" data-gap=\"no-igw\"{}",
                finding_attr(&links)
            );
            let label = "no internet gateway attached";
            open(out, &links, &attrs, &tooltip(label, &links));
            gap_rect(out, bx, y, w, h);
            text(out, bx + 10.0, y + 21.0, 12.0, "bold", RED, label);
            close(out, &links);
            badge(out, bx + w, y, &links);
        } else {
            let ids = igws.join(", ");
            let attrs = format!(
                "data-kind=\"igw\" data-id=\"{}\"{}",
                escape(&ids),
                finding_attr(&links)
            );
            open(
                out,
                &links,
                &attrs,
                &tooltip(&format!("Internet gateway {ids}"), &links),
            );
            element_rect(out, bx, y, w, h, "#ececec", "#555555", &links);
            text(
                out,
                bx + 10.0,
                y + 14.0,
                11.0,
                "bold",
                "#333",
                "Internet gateway",
            );
            text(out, bx + 10.0, y + 28.0, 11.0, "normal", "#333", &ids);
            close(out, &links);
            badge(out, bx + w, y, &links);
        }
        self.boxes.insert("igw".into(), (bx, y, w, h));
    }

    fn draw_public_cell(&mut self, out: &mut String, column: &Column, x: f64, y: f64, w: f64) {
        text(out, x, y + 11.0, 10.0, "normal", "#555", "public subnets");
        let mut by = y + LABEL_HEIGHT;
        if column.public.is_empty() {
            let az = column.az.clone();
            let links =
                self.take(|f| f.rule_id == catalogue::VPC_PUBLIC_SUBNET_PER_AZ && lacks_az(f, &az));
            let label = format!("AZ {}: no public subnet", short_az(&column.az));
            gap(
                out,
                x,
                by,
                w,
                PUBLIC_HEIGHT,
                "no-public-subnet",
                &column.az,
                &label,
                &links,
            );
        }
        for subnet in column.public.iter().take(MAX_PER_CELL) {
            self.draw_subnet(out, subnet, x, by, w, PUBLIC_HEIGHT);
            by += PUBLIC_HEIGHT + BOX_GAP;
        }
        if column.public.len() > MAX_PER_CELL {
            more(
                out,
                x,
                by + 10.0,
                column.public.len() - MAX_PER_CELL,
                "public subnets",
            );
        }
    }

    fn draw_nat_cell(&mut self, out: &mut String, column: &Column, x: f64, y: f64, w: f64) {
        text(out, x, y + 11.0, 10.0, "normal", "#555", "NAT gateways");
        let mut by = y + LABEL_HEIGHT;
        let live: Vec<&&NatGateway> = column.nats.iter().filter(|n| is_live(n)).collect();
        if live.is_empty() && !column.private.is_empty() {
            // Private subnets here whose egress is wrong or crosses zones explain the gap.
            let privates: BTreeSet<String> =
                column.private.iter().map(|s| s.subnet.id.clone()).collect();
            let links = self.take(|f| {
                (f.rule_id == catalogue::NAT_SAME_AZ
                    || f.rule_id == catalogue::SUBNET_PRIVATE_EGRESS)
                    && privates.contains(&f.resource_id)
            });
            let label = format!("AZ {}: no NAT", short_az(&column.az));
            gap(
                out, x, by, w, NAT_HEIGHT, "no-nat", &column.az, &label, &links,
            );
            by += NAT_HEIGHT + BOX_GAP;
        }
        for nat in column.nats.iter().take(MAX_PER_CELL) {
            self.draw_nat(out, nat, x, by, w);
            by += NAT_HEIGHT + BOX_GAP;
        }
        if column.nats.len() > MAX_PER_CELL {
            more(
                out,
                x,
                by + 10.0,
                column.nats.len() - MAX_PER_CELL,
                "NAT gateways",
            );
        }
    }

    fn draw_private_cell(&mut self, out: &mut String, column: &Column, x: f64, y: f64, w: f64) {
        text(out, x, y + 11.0, 10.0, "normal", "#555", "private subnets");
        let mut by = y + LABEL_HEIGHT;
        if column.private.is_empty() {
            let az = column.az.clone();
            let links = self
                .take(|f| f.rule_id == catalogue::VPC_PRIVATE_SUBNET_PER_AZ && lacks_az(f, &az));
            let label = format!("AZ {}: no private subnet", short_az(&column.az));
            gap(
                out,
                x,
                by,
                w,
                PRIVATE_HEIGHT,
                "no-private-subnet",
                &column.az,
                &label,
                &links,
            );
        }
        for subnet in column.private.iter().take(MAX_PER_CELL) {
            self.draw_subnet(out, subnet, x, by, w, PRIVATE_HEIGHT);
            by += PRIVATE_HEIGHT + BOX_GAP;
        }
        if column.private.len() > MAX_PER_CELL {
            more(
                out,
                x,
                by + 10.0,
                column.private.len() - MAX_PER_CELL,
                "private subnets",
            );
        }
    }

    fn draw_subnet(&mut self, out: &mut String, s: &SubnetView, x: f64, y: f64, w: f64, h: f64) {
        let id = &s.subnet.id;
        let links = self.on_resource(ResourceType::Subnet, id);
        let role = s.role.as_str();
        let cidr = s.subnet.cidr_block.as_deref().unwrap_or("no IPv4 CIDR");
        let route = match (s.default_route, s.default_target()) {
            (_, Some(target)) => format!("0.0.0.0/0 → {target}"),
            (Some(_), None) => "0.0.0.0/0 blackholed".to_string(),
            (None, None) => "no default route".to_string(),
        };
        let table = s
            .route_table
            .map(|t| {
                if s.uses_main_route_table {
                    format!("{} (main)", t.id)
                } else {
                    t.id.clone()
                }
            })
            .unwrap_or_else(|| "no route table".into());
        let free = s
            .subnet
            .available_ip_address_count
            .map(|n| format!(", {n} IPs free"))
            .unwrap_or_default();
        let attrs = format!(
            "data-kind=\"subnet\" data-id=\"{}\" data-role=\"{role}\" data-az=\"{}\"{}",
            escape(id),
            escape(s.az()),
            finding_attr(&links)
        );
        let summary = format!(
            "{role} subnet {id} in {}: {cidr}{free}; route table {table}; {route}; role from {}",
            s.az(),
            s.role_source.as_str()
        );
        open(out, &links, &attrs, &tooltip(&summary, &links));
        let (fill, stroke) = match s.role {
            SubnetRole::Public => ("#e3f4e1", "#3a8a3a"),
            SubnetRole::Private => ("#e1ecf8", "#3468a8"),
            SubnetRole::Isolated | SubnetRole::Infrastructure => ("#eeeeee", "#888888"),
        };
        element_rect(out, x, y, w, h, fill, stroke, &links);
        text(out, x + 8.0, y + 15.0, 11.0, "bold", "#222", id);
        text(
            out,
            x + 8.0,
            y + 29.0,
            11.0,
            "normal",
            "#333",
            &format!("{cidr}{free}"),
        );
        if s.role == SubnetRole::Private {
            let colour = if s.default_target().is_some_and(|t| t.starts_with("nat-")) {
                "#333"
            } else {
                RED
            };
            text(out, x + 8.0, y + 43.0, 11.0, "normal", colour, &route);
        } else {
            text(out, x + 8.0, y + 41.0, 10.0, "normal", "#555", &route);
        }
        close(out, &links);
        badge(out, x + w, y, &links);
        if s.role == SubnetRole::Private {
            self.draw_s3_chip(out, s, x + 8.0, y + h - 14.0);
        }
        self.boxes.insert(id.clone(), (x, y, w, h));
    }

    /// The S3 chip on a private subnet: is its route table on an S3 gateway endpoint?
    /// Drawn only when the VPC has one (otherwise the "no S3 gateway endpoint" gap says it).
    fn draw_s3_chip(&mut self, out: &mut String, s: &SubnetView, x: f64, y: f64) {
        let gateways: Vec<&VpcEndpoint> = self
            .view
            .endpoints
            .iter()
            .copied()
            .filter(|e| is_gateway(e) && self.is_s3(e))
            .collect();
        if gateways.is_empty() {
            return;
        }
        let table = s.route_table.map(|t| t.id.as_str());
        let on = table.is_some_and(|t| {
            gateways
                .iter()
                .any(|e| e.route_table_ids.iter().any(|r| r == t))
        });
        let id = escape(&s.subnet.id);
        if on {
            let _ = write!(
                out,
                "<g data-kind=\"s3-route\" data-subnet=\"{id}\"><title>S3 traffic of {id} goes \
                 through the gateway endpoint</title><rect x=\"{x}\" y=\"{y}\" width=\"44\" \
                 height=\"12\" rx=\"3\" fill=\"#d9f0d9\" stroke=\"#3a8a3a\"/>"
            );
            text(out, x + 4.0, y + 10.0, 9.0, "normal", "#1d5e1d", "S3 ✓");
            out.push_str("</g>");
        } else {
            let subnet = s.subnet.id.clone();
            let links = self.take(|f| {
                f.rule_id == catalogue::ENDPOINT_S3_GATEWAY
                    && f.details
                        .get("private_subnets_uncovered")
                        .and_then(|v| v.as_array())
                        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(subnet.as_str())))
            });
            let attrs = format!(
                "data-kind=\"gap\" data-gap=\"no-s3-route\" data-subnet=\"{id}\"{}",
                finding_attr(&links)
            );
            open(
                out,
                &links,
                &attrs,
                &tooltip(
                    &format!(
                        "{}: route table not on the S3 gateway endpoint",
                        s.subnet.id
                    ),
                    &links,
                ),
            );
            let _ = write!(
                out,
                "<rect x=\"{x}\" y=\"{y}\" width=\"80\" height=\"12\" rx=\"3\" fill=\"{GAP_FILL}\" \
                 stroke=\"{RED}\" stroke-dasharray=\"3 2\"/>"
            );
            text(out, x + 4.0, y + 10.0, 9.0, "bold", RED, "no S3 route");
            close(out, &links);
        }
    }

    fn draw_nat(&mut self, out: &mut String, nat: &NatGateway, x: f64, y: f64, w: f64) {
        let links = self.on_resource(ResourceType::NatGateway, &nat.id);
        let state = nat.state.as_deref().unwrap_or("unknown state");
        let subnet = nat.subnet_id.as_deref().unwrap_or("no subnet");
        let in_role = nat
            .subnet_id
            .as_deref()
            .and_then(|s| self.topo.subnet(s))
            .map(|s| s.role.as_str())
            .unwrap_or("unknown");
        let attrs = format!(
            "data-kind=\"nat\" data-id=\"{}\" data-state=\"{}\"{}",
            escape(&nat.id),
            escape(state),
            finding_attr(&links)
        );
        let summary = format!(
            "NAT gateway {} ({state}, {} connectivity) in {in_role} subnet {subnet}",
            nat.id,
            nat.connectivity_type.as_deref().unwrap_or("public")
        );
        open(out, &links, &attrs, &tooltip(&summary, &links));
        let stroke = if is_live(nat) { "#b07a00" } else { RED };
        element_rect(out, x, y, w, NAT_HEIGHT, "#fff3d6", stroke, &links);
        text(
            out,
            x + 8.0,
            y + 15.0,
            11.0,
            "bold",
            "#222",
            &format!("NAT {}", nat.id),
        );
        text(
            out,
            x + 8.0,
            y + 30.0,
            10.0,
            "normal",
            "#555",
            &format!("{state} · in {subnet}"),
        );
        close(out, &links);
        badge(out, x + w, y, &links);
        self.boxes.insert(nat.id.clone(), (x, y, w, NAT_HEIGHT));
    }

    fn draw_routes(&mut self, out: &mut String, igw_bottom: f64) {
        let igw = self.boxes.get("igw").copied();
        let mut subnets: Vec<&SubnetView> = self.view.subnets.iter().collect();
        subnets.sort_by(|a, b| a.subnet.id.cmp(&b.subnet.id));
        for s in subnets {
            let Some(&(x, y, w, _)) = self.boxes.get(&s.subnet.id) else {
                continue;
            };
            let from = escape(&s.subnet.id);
            let Some(target) = s.default_target() else {
                continue;
            };
            let to = escape(target);
            if s.role == SubnetRole::Public && s.routes_to_igw() {
                if let Some((ix, _, iw, _)) = igw {
                    let _ = writeln!(
                        out,
                        "<line data-kind=\"route\" data-from=\"{from}\" data-to=\"{to}\" \
                         x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{igw_bottom}\" stroke=\"#8a8a8a\" \
                         stroke-width=\"1.2\"><title>{from} → {to}</title></line>",
                        x + w / 2.0,
                        ix + iw / 2.0,
                    );
                }
            } else if s.role == SubnetRole::Private {
                let Some(&(nx, ny, nw, nh)) = self.boxes.get(target) else {
                    continue;
                };
                let cross = self
                    .topo
                    .nat_gateway(target)
                    .and_then(|n| n.subnet_id.as_deref())
                    .and_then(|id| self.topo.subnet(id))
                    .is_some_and(|n| n.az() != s.az());
                let (stroke, dash, note) = if cross {
                    (RED, " stroke-dasharray=\"6 3\"", " (crosses AZs)")
                } else {
                    ("#b07a00", "", "")
                };
                let _ = writeln!(
                    out,
                    "<line data-kind=\"route\" data-from=\"{from}\" data-to=\"{to}\" \
                     data-cross-az=\"{cross}\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{}\" \
                     stroke=\"{stroke}\" stroke-width=\"2\"{dash}><title>{from} → {to}{note}\
                     </title></line>",
                    x + w / 2.0,
                    nx + nw / 2.0,
                    ny + nh,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn draw_endpoint_row(
        &mut self,
        out: &mut String,
        row: &EndpointRow,
        private_azs: &[(usize, &str)],
        column_x: &dyn Fn(usize) -> f64,
        y: f64,
        width: f64,
    ) {
        let service = &row.service;
        let row_h = LABEL_HEIGHT + CHIP_HEIGHT + 6.0;
        match row.endpoint {
            Some(endpoint) => {
                let links = self.on_resource(ResourceType::VpcEndpoint, &endpoint.id);
                let state = endpoint.state.as_deref().unwrap_or("unknown state");
                let dns = match endpoint.private_dns_enabled {
                    Some(true) => "Private DNS on",
                    Some(false) => "Private DNS off",
                    None => "Private DNS unknown",
                };
                let attrs = format!(
                    "data-kind=\"endpoint\" data-id=\"{}\" data-service=\"{}\" data-state=\"{}\"{}",
                    escape(&endpoint.id),
                    escape(service),
                    escape(state),
                    finding_attr(&links)
                );
                let summary = format!(
                    "Interface endpoint {} for {} ({state}, {dns}), subnets {}",
                    endpoint.id,
                    endpoint.service_name,
                    endpoint.subnet_ids.join(", ")
                );
                open(out, &links, &attrs, &tooltip(&summary, &links));
                element_rect(out, MARGIN, y, width, row_h, "#efe6f7", "#7b4fa3", &links);
                text_wide(
                    out,
                    MARGIN + 8.0,
                    y + 13.0,
                    11.0,
                    "#222",
                    &format!("{service} · {} · {state} · {dns}", endpoint.id),
                    width - 100.0,
                );
                close(out, &links);
                badge(out, MARGIN + width, y, &links);
            }
            None => {
                let links = self.take(|f| {
                    f.rule_id == catalogue::ENDPOINT_INTERFACE_REQUIRED
                        && f.details
                            .get("missing_services")
                            .and_then(|v| v.as_array())
                            .is_some_and(|a| {
                                a.iter().any(|v| {
                                    v.as_str()
                                        .is_some_and(|s| s.ends_with(&format!(".{service}")))
                                })
                            })
                });
                let attrs = format!(
                    "data-kind=\"gap\" data-gap=\"endpoint-missing\" data-service=\"{}\"{}",
                    escape(service),
                    finding_attr(&links)
                );
                let label = format!("{service}: no interface endpoint");
                open(out, &links, &attrs, &tooltip(&label, &links));
                gap_rect(out, MARGIN, y, width, row_h);
                text(out, MARGIN + 8.0, y + 13.0, 11.0, "bold", RED, &label);
                close(out, &links);
                badge(out, MARGIN + width, y, &links);
            }
        }
        // One chip per AZ with private subnets.
        let coverage_links: Vec<&FindingLink> = match row.endpoint {
            Some(e) => {
                let id = e.id.clone();
                self.take(|f| {
                    f.rule_id == catalogue::ENDPOINT_INTERFACE_AZ_COVERAGE && f.resource_id == id
                })
            }
            None => Vec::new(),
        };
        for (i, az) in private_azs {
            let x = column_x(*i) + 8.0;
            let cy = y + LABEL_HEIGHT + 1.0;
            let w = COLUMN_WIDTH - 16.0;
            if row.covered.contains(*az) {
                let _ = write!(
                    out,
                    "<g data-kind=\"endpoint-az\" data-service=\"{}\" data-az=\"{}\"><title>{} \
                     has a subnet in {}</title><rect x=\"{x}\" y=\"{cy}\" width=\"{w}\" \
                     height=\"{CHIP_HEIGHT}\" rx=\"4\" fill=\"#ffffff\" stroke=\"#7b4fa3\"/>",
                    escape(service),
                    escape(az),
                    escape(service),
                    escape(az),
                );
                text(
                    out,
                    x + 8.0,
                    cy + 15.0,
                    11.0,
                    "normal",
                    "#4a2a6a",
                    &format!("{service} ✓"),
                );
                out.push_str("</g>\n");
            } else {
                let links: Vec<&FindingLink> = if row.endpoint.is_some() {
                    coverage_links.clone()
                } else {
                    self.findings
                        .iter()
                        .copied()
                        .filter(|l| l.finding.rule_id == catalogue::ENDPOINT_INTERFACE_REQUIRED)
                        .collect()
                };
                let label = format!("{service}: missing in AZ {}", short_az(az));
                let attrs = format!(
                    "data-kind=\"gap\" data-gap=\"endpoint-az\" data-service=\"{}\" data-az=\"{}\"{}",
                    escape(service),
                    escape(az),
                    finding_attr(&links)
                );
                open(out, &links, &attrs, &tooltip(&label, &links));
                gap_rect(out, x, cy, w, CHIP_HEIGHT);
                text(out, x + 8.0, cy + 15.0, 11.0, "bold", RED, &label);
                close(out, &links);
            }
        }
    }

    fn draw_gateway_endpoint(
        &mut self,
        out: &mut String,
        endpoint: &VpcEndpoint,
        x: f64,
        y: f64,
        w: f64,
    ) {
        let mut links = self.on_resource(ResourceType::VpcEndpoint, &endpoint.id);
        if self.is_s3(endpoint) {
            // The VPC-level S3 finding (not on every private route table) belongs here too.
            links.extend(self.take(|f| f.rule_id == catalogue::ENDPOINT_S3_GATEWAY));
        }
        let prefix = format!("com.amazonaws.{}.", self.region());
        let service = endpoint
            .service_name
            .strip_prefix(&prefix)
            .unwrap_or(&endpoint.service_name);
        let state = endpoint.state.as_deref().unwrap_or("unknown state");
        // Which private subnets use the route tables the endpoint is on.
        let on: BTreeSet<&str> = endpoint
            .route_table_ids
            .iter()
            .map(String::as_str)
            .collect();
        let subnets: Vec<&str> = self
            .view
            .subnets
            .iter()
            .filter(|s| s.route_table.is_some_and(|t| on.contains(t.id.as_str())))
            .map(|s| s.subnet.id.as_str())
            .collect();
        let attrs = format!(
            "data-kind=\"gateway-endpoint\" data-id=\"{}\" data-service=\"{}\" \
             data-route-tables=\"{}\"{}",
            escape(&endpoint.id),
            escape(service),
            escape(&endpoint.route_table_ids.join(" ")),
            finding_attr(&links)
        );
        let summary = format!(
            "Gateway endpoint {} for {} ({state}) on route tables {}; subnets using them: {}",
            endpoint.id,
            endpoint.service_name,
            if on.is_empty() {
                "none".to_string()
            } else {
                endpoint.route_table_ids.join(", ")
            },
            if subnets.is_empty() {
                "none".to_string()
            } else {
                subnets.join(", ")
            }
        );
        open(out, &links, &attrs, &tooltip(&summary, &links));
        element_rect(out, x, y, w, 40.0, "#e8f1ea", "#2f6d3f", &links);
        text_wide(
            out,
            x + 8.0,
            y + 15.0,
            11.0,
            "#222",
            &format!("{service} gateway endpoint {} · {state}", endpoint.id),
            w - 100.0,
        );
        let tables = if on.is_empty() {
            "on no route table".to_string()
        } else {
            format!("on {}", endpoint.route_table_ids.join(", "))
        };
        text_wide(out, x + 8.0, y + 31.0, 10.0, "#333", &tables, w - 16.0);
        close(out, &links);
        badge(out, x + w, y, &links);
    }
}

fn is_gateway(endpoint: &VpcEndpoint) -> bool {
    endpoint
        .endpoint_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("gateway"))
}

fn is_available(endpoint: &VpcEndpoint) -> bool {
    endpoint
        .state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("available"))
}

fn is_live(nat: &NatGateway) -> bool {
    !matches!(
        nat.state.as_deref(),
        Some("deleted" | "deleting" | "failed")
    )
}

/// True when a per-AZ finding names `az` among the zones lacking (or gives no list).
fn lacks_az(finding: &Finding, az: &str) -> bool {
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
fn short_az(az: &str) -> &str {
    match az.char_indices().last() {
        Some((i, c))
            if c.is_ascii_alphabetic() && az[..i].ends_with(|d: char| d.is_ascii_digit()) =>
        {
            &az[i..]
        }
        _ => az,
    }
}

/// The fragment of an href (`#finding-3` → `finding-3`).
fn anchor(href: &str) -> &str {
    href.rsplit('#').next().unwrap_or(href)
}

/// ` data-findings="finding-1 finding-4"` for marked elements; empty otherwise.
fn finding_attr(links: &[&FindingLink]) -> String {
    if links.is_empty() {
        return String::new();
    }
    let ids: Vec<&str> = links.iter().map(|l| anchor(&l.href)).collect();
    format!(" data-findings=\"{}\"", escape(&ids.join(" ")))
}

/// The tooltip: the element, then each finding on it.
fn tooltip(summary: &str, links: &[&FindingLink]) -> String {
    let mut text = summary.to_string();
    for link in links {
        text.push_str(&format!(
            "\n{} {}: {}",
            link.finding.severity, link.finding.rule_id, link.finding.message
        ));
    }
    text
}

/// Opens an element: a link to its first finding when it has any, then the group.
fn open(out: &mut String, links: &[&FindingLink], attrs: &str, title: &str) {
    if let Some(first) = links.first() {
        let _ = write!(out, "<a href=\"{}\">", escape(&first.href));
    }
    let marked = if links.is_empty() {
        ""
    } else {
        " class=\"has-finding\""
    };
    let _ = write!(out, "<g {attrs}{marked}><title>{}</title>", escape(title));
}

fn close(out: &mut String, links: &[&FindingLink]) {
    out.push_str("</g>");
    if !links.is_empty() {
        out.push_str("</a>");
    }
    out.push('\n');
}

#[allow(clippy::too_many_arguments)]
fn element_rect(
    out: &mut String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    fill: &str,
    stroke: &str,
    links: &[&FindingLink],
) {
    let (stroke, width) = if links.is_empty() {
        (stroke, 1.2)
    } else {
        (RED, 3.0)
    };
    let _ = write!(
        out,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"5\" fill=\"{fill}\" \
         stroke=\"{stroke}\" stroke-width=\"{width}\"/>"
    );
}

fn gap_rect(out: &mut String, x: f64, y: f64, w: f64, h: f64) {
    let _ = write!(
        out,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"5\" fill=\"{GAP_FILL}\" \
         stroke=\"{RED}\" stroke-width=\"2\" stroke-dasharray=\"7 4\"/>"
    );
}

/// A missing thing: a dashed red box with a label, linked to its findings.
#[allow(clippy::too_many_arguments)]
fn gap(
    out: &mut String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    kind: &str,
    az: &str,
    label: &str,
    links: &[&FindingLink],
) {
    let attrs = format!(
        "data-kind=\"gap\" data-gap=\"{kind}\" data-az=\"{}\"{}",
        escape(az),
        finding_attr(links)
    );
    open(out, links, &attrs, &tooltip(label, links));
    gap_rect(out, x, y, w, h);
    text(out, x + 10.0, y + h / 2.0 + 4.0, 12.0, "bold", RED, label);
    close(out, links);
    badge(out, x + w, y, links);
}

/// The finding badges at a box's top-right corner: one red disc per finding (at most four)
/// with its severity's initial, each linking to its finding. Drawn after the element, since
/// a link cannot hold another.
fn badge(out: &mut String, right: f64, top: f64, links: &[&FindingLink]) {
    for (i, link) in links.iter().take(4).enumerate() {
        let (cx, cy) = (right - 2.0 - i as f64 * 20.0, top + 2.0);
        let initial = link
            .finding
            .severity
            .as_str()
            .chars()
            .next()
            .unwrap_or('!')
            .to_ascii_uppercase();
        let _ = write!(
            out,
            "<a href=\"{}\"><g data-kind=\"finding-badge\" data-finding=\"{}\"><title>{}</title>\
             <circle cx=\"{cx}\" cy=\"{cy}\" r=\"9\" fill=\"{RED}\" stroke=\"#ffffff\" \
             stroke-width=\"1.5\"/><text x=\"{cx}\" y=\"{}\" font-size=\"11\" font-weight=\"bold\" \
             fill=\"#ffffff\" text-anchor=\"middle\">{initial}</text></g></a>",
            escape(&link.href),
            escape(anchor(&link.href)),
            escape(&format!(
                "{} {}: {}",
                link.finding.severity, link.finding.rule_id, link.finding.message
            )),
            cy + 4.0,
        );
    }
}

fn more(out: &mut String, x: f64, y: f64, count: usize, what: &str) {
    let _ = write!(
        out,
        "<text data-kind=\"more\" x=\"{x}\" y=\"{y}\" font-size=\"10\" fill=\"#555\">\
         +{count} more {what} not drawn</text>"
    );
}

/// One line of text, cut to fit a box (the full value is in the element's tooltip).
fn text(out: &mut String, x: f64, y: f64, size: f64, weight: &str, fill: &str, value: &str) {
    let limit = if size >= 12.0 { 80 } else { BOX_CHARS };
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y}\" font-size=\"{size}\" font-weight=\"{weight}\" fill=\"{fill}\">{}</text>",
        escape(&truncate(value, limit))
    );
}

/// Like [`text`], for a line as wide as `width`.
fn text_wide(out: &mut String, x: f64, y: f64, size: f64, fill: &str, value: &str, width: f64) {
    let limit = ((width / (size * 0.6)) as usize).max(8);
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y}\" font-size=\"{size}\" fill=\"{fill}\">{}</text>",
        escape(&truncate(value, limit))
    );
}

fn truncate(value: &str, limit: usize) -> String {
    if value.chars().count() <= limit {
        value.to_string()
    } else {
        let mut cut: String = value.chars().take(limit.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn legend(out: &mut String, x: f64, y: f64) {
    let items: [(&str, &str, &str, bool); 6] = [
        ("public subnet", "#e3f4e1", "#3a8a3a", false),
        ("private subnet", "#e1ecf8", "#3468a8", false),
        ("NAT gateway", "#fff3d6", "#b07a00", false),
        ("endpoint", "#efe6f7", "#7b4fa3", false),
        ("missing", GAP_FILL, RED, true),
        ("has a finding (click)", "#ffffff", RED, false),
    ];
    out.push_str("<g data-kind=\"legend\">");
    let mut lx = x;
    for (label, fill, stroke, dashed) in items {
        let dash = if dashed {
            " stroke-dasharray=\"4 2\""
        } else {
            ""
        };
        let width = if label.starts_with("has") { 3.0 } else { 1.2 };
        let _ = write!(
            out,
            "<rect x=\"{lx}\" y=\"{y}\" width=\"18\" height=\"12\" rx=\"2\" fill=\"{fill}\" \
             stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/>"
        );
        text(out, lx + 24.0, y + 10.0, 10.0, "normal", "#333", label);
        lx += 34.0 + label.len() as f64 * 6.0;
    }
    out.push_str("</g>\n");
}

/// Draws the VPCs of `region` whose ids are in `vpc_ids`, in the region's order, at most
/// `limit` of them: `(vpc id, svg)`. The region's topology is indexed once, and each VPC
/// gets only its own findings. A region whose collection failed draws nothing: its
/// resource lists are not the state of the region.
pub fn render_region(
    region: &RegionSnapshot,
    vpc_ids: &BTreeSet<&str>,
    findings: &[FindingLink],
    limit: usize,
) -> Vec<(String, String)> {
    if region.error.is_some() || limit == 0 {
        return Vec::new();
    }
    let mut by_vpc: BTreeMap<&str, Vec<FindingLink>> = BTreeMap::new();
    for link in findings {
        if let Some(vpc) = link.finding.vpc_id.as_deref() {
            if vpc_ids.contains(vpc) {
                by_vpc.entry(vpc).or_default().push(link.clone());
            }
        }
    }
    let topo = RegionTopology::build(region);
    topo.vpcs
        .iter()
        .filter(|v| vpc_ids.contains(v.vpc.id.as_str()))
        .take(limit)
        .map(|view| {
            let links = by_vpc
                .get(view.vpc.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            (view.vpc.id.clone(), render(&topo, view, links))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::run;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::Snapshot;

    /// The picture of the snapshot's first VPC, with the findings evaluation gives it,
    /// each linked as `#finding-N`; and those findings.
    fn picture(snapshot: &Snapshot) -> (String, Vec<Finding>) {
        let findings = run(snapshot).findings;
        let links: Vec<FindingLink> = findings
            .iter()
            .enumerate()
            .map(|(i, finding)| FindingLink {
                finding,
                href: format!("#finding-{i}"),
            })
            .collect();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let svg = render(&topo, &topo.vpcs[0], &links);
        (svg, findings)
    }

    /// The opening tags (`<g ...>`) that carry every one of `attrs`.
    fn elements<'s>(svg: &'s str, attrs: &[&str]) -> Vec<&'s str> {
        svg.split('<')
            .filter(|tag| attrs.iter().all(|a| tag.contains(a)))
            .collect()
    }

    fn index_of(findings: &[Finding], rule: &str, resource: &str) -> usize {
        findings
            .iter()
            .position(|f| f.rule_id == rule && f.resource_id == resource)
            .unwrap_or_else(|| panic!("no {rule} finding on {resource}: {findings:#?}"))
    }

    #[test]
    fn compliant_vpc_draws_every_element_unmarked_and_no_gap() {
        let (svg, findings) = picture(&compliant_vpc().build());
        assert!(findings.is_empty(), "{findings:#?}");
        assert!(svg.starts_with("<svg class=\"vpc-picture\""));
        for az in ["us-east-1a", "us-east-1b", "us-east-1c"] {
            assert_eq!(
                elements(&svg, &["data-kind=\"az\"", &format!("data-az=\"{az}\"")]).len(),
                1,
                "{az}"
            );
        }
        for letter in ["a", "b", "c"] {
            let public = format!("data-id=\"subnet-pub-{letter}\"");
            let private = format!("data-id=\"subnet-priv-{letter}\"");
            assert_eq!(
                elements(
                    &svg,
                    &["data-kind=\"subnet\"", &public, "data-role=\"public\""]
                )
                .len(),
                1
            );
            assert_eq!(
                elements(
                    &svg,
                    &["data-kind=\"subnet\"", &private, "data-role=\"private\""]
                )
                .len(),
                1
            );
            assert_eq!(
                elements(
                    &svg,
                    &["data-kind=\"nat\"", &format!("data-id=\"nat-{letter}\"")]
                )
                .len(),
                1
            );
            // The private subnet's route to its own AZ's NAT gateway.
            assert_eq!(
                elements(
                    &svg,
                    &[
                        "line data-kind=\"route\"",
                        &format!("data-from=\"subnet-priv-{letter}\""),
                        &format!("data-to=\"nat-{letter}\""),
                        "data-cross-az=\"false\""
                    ]
                )
                .len(),
                1
            );
        }
        assert_eq!(elements(&svg, &["data-kind=\"igw\"", "igw-good"]).len(), 1);
        assert_eq!(
            elements(
                &svg,
                &["data-kind=\"gateway-endpoint\"", "data-id=\"vpce-s3\""]
            )
            .len(),
            1
        );
        assert_eq!(elements(&svg, &["data-kind=\"s3-route\""]).len(), 3);
        for service in ["logs", "ecr.dkr", "ec2"] {
            let attr = format!("data-service=\"{service}\"");
            assert_eq!(elements(&svg, &["data-kind=\"endpoint\"", &attr]).len(), 1);
            assert_eq!(
                elements(&svg, &["data-kind=\"endpoint-az\"", &attr]).len(),
                3
            );
        }
        assert!(elements(&svg, &["data-kind=\"gap\""]).is_empty(), "{svg}");
        assert!(!svg.contains("data-findings"));
        assert!(!svg.contains("finding-badge"));
    }

    #[test]
    fn missing_nat_in_az_c_is_a_no_nat_gap_in_column_c_linked_to_the_finding() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.nat_gateways.retain(|n| n.id != "nat-c");
                let table = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-c")
                    .unwrap();
                table.routes[1].target = Some("nat-b".into());
            })
            .build();
        let (svg, findings) = picture(&snapshot);
        let same_az = index_of(&findings, "nat.same_az", "subnet-priv-c");
        let gaps = elements(&svg, &["data-gap=\"no-nat\"", "data-az=\"us-east-1c\""]);
        assert_eq!(gaps.len(), 1, "{svg}");
        assert!(gaps[0].contains(&format!("data-findings=\"finding-{same_az}\"")));
        assert!(svg.contains(&format!(
            "<a href=\"#finding-{same_az}\"><g data-kind=\"gap\" data-gap=\"no-nat\""
        )));
        assert!(svg.contains(">AZ c: no NAT</text>"), "{svg}");
        // Only column c lacks a NAT.
        assert_eq!(elements(&svg, &["data-gap=\"no-nat\""]).len(), 1);
        // The cross-AZ route is drawn, and the subnet itself is marked.
        assert_eq!(
            elements(
                &svg,
                &[
                    "data-from=\"subnet-priv-c\"",
                    "data-to=\"nat-b\"",
                    "data-cross-az=\"true\""
                ]
            )
            .len(),
            1
        );
        let subnet = elements(&svg, &["data-kind=\"subnet\"", "data-id=\"subnet-priv-c\""]);
        assert!(subnet[0].contains("class=\"has-finding\""), "{}", subnet[0]);
    }

    #[test]
    fn missing_s3_gateway_and_endpoint_az_are_gaps_linked_to_their_findings() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpc_endpoints.retain(|e| e.id != "vpce-s3");
                for e in r.vpc_endpoints.iter_mut().filter(|e| e.id == "vpce-ecr") {
                    e.subnet_ids.retain(|s| s != "subnet-priv-b");
                }
            })
            .build();
        let (svg, findings) = picture(&snapshot);
        let s3 = index_of(&findings, "endpoint.s3_gateway", "vpc-good");
        let coverage = index_of(&findings, "endpoint.interface_az_coverage", "vpce-ecr");
        let gap = elements(&svg, &["data-gap=\"no-s3-gateway\""]);
        assert_eq!(gap.len(), 1);
        assert!(gap[0].contains(&format!("finding-{s3}")));
        assert!(svg.contains(">no S3 gateway endpoint</text>"));
        let gap = elements(
            &svg,
            &[
                "data-gap=\"endpoint-az\"",
                "data-service=\"ecr.dkr\"",
                "data-az=\"us-east-1b\"",
            ],
        );
        assert_eq!(gap.len(), 1, "{svg}");
        assert!(gap[0].contains(&format!("finding-{coverage}")));
        assert!(svg.contains(">ecr.dkr: missing in AZ b</text>"));
        // The endpoint itself carries the finding too; its other AZs are covered.
        let endpoint = elements(&svg, &["data-kind=\"endpoint\"", "data-id=\"vpce-ecr\""]);
        assert!(endpoint[0].contains(&format!("finding-{coverage}")));
        assert_eq!(
            elements(
                &svg,
                &["data-kind=\"endpoint-az\"", "data-service=\"ecr.dkr\""]
            )
            .len(),
            2
        );
    }

    #[test]
    fn a_service_without_any_endpoint_is_a_gap_row_with_a_gap_per_az() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpc_endpoints.retain(|e| e.id != "vpce-ecr"))
            .build();
        let (svg, findings) = picture(&snapshot);
        let required = index_of(&findings, "endpoint.interface_required", "vpc-good");
        let row = elements(
            &svg,
            &["data-gap=\"endpoint-missing\"", "data-service=\"ecr.dkr\""],
        );
        assert_eq!(row.len(), 1, "{svg}");
        assert!(row[0].contains(&format!("finding-{required}")));
        assert_eq!(
            elements(
                &svg,
                &["data-gap=\"endpoint-az\"", "data-service=\"ecr.dkr\""]
            )
            .len(),
            3
        );
    }

    #[test]
    fn every_finding_of_the_vpc_is_linked_from_the_picture() {
        // Small private subnets, DNS hostnames off, a NAT in a private subnet.
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpcs[0].enable_dns_hostnames = Some(false);
                r.subnets
                    .iter_mut()
                    .filter(|s| s.id == "subnet-priv-a")
                    .for_each(|s| s.cidr_block = Some("10.0.0.0/24".into()));
                r.nat_gateways[2].subnet_id = Some("subnet-priv-c".into());
            })
            .build();
        let (svg, findings) = picture(&snapshot);
        assert!(findings.len() >= 3, "{findings:#?}");
        for (i, finding) in findings.iter().enumerate() {
            assert!(
                svg.contains(&format!("href=\"#finding-{i}\"")),
                "finding {i} ({}) not linked",
                finding.rule_id
            );
        }
        // A VPC-wide finding with no element of its own is a pill in the header.
        let dns = index_of(&findings, "vpc.dns_attributes", "vpc-good");
        assert_eq!(
            elements(
                &svg,
                &["data-kind=\"finding-pill\"", &format!("finding-{dns}")]
            )
            .len(),
            1
        );
        let nat = index_of(&findings, "nat.in_public_subnet", "nat-c");
        assert!(
            elements(&svg, &["data-kind=\"nat\"", "data-id=\"nat-c\""])[0]
                .contains(&format!("finding-{nat}"))
        );
    }

    #[test]
    fn findings_of_other_vpcs_are_not_drawn() {
        let snapshot = compliant_vpc().build();
        let mut other = run(&compliant_vpc()
            .with(|r| r.vpcs[0].enable_dns_hostnames = Some(false))
            .build())
        .findings;
        assert!(!other.is_empty());
        other
            .iter_mut()
            .for_each(|f| f.vpc_id = Some("vpc-other".into()));
        let links: Vec<FindingLink> = other
            .iter()
            .map(|finding| FindingLink {
                finding,
                href: "#x".into(),
            })
            .collect();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let svg = render(&topo, &topo.vpcs[0], &links);
        assert!(!svg.contains("href=\"#x\""));
    }

    #[test]
    fn account_text_is_escaped() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpcs[0]
                    .tags
                    .insert("Name".into(), "<script>alert('x')</script>".into());
                r.subnets[0].cidr_block = Some("\"><img src=x>".into());
            })
            .build();
        let (svg, _) = picture(&snapshot);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<img"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn many_subnets_in_one_az_are_bounded_with_a_count_of_the_rest() {
        let snapshot = compliant_vpc()
            .with(|r| {
                for i in 0..40 {
                    r.subnets.push(crate::snapshot::Subnet {
                        id: format!("subnet-extra-{i:02}"),
                        vpc_id: "vpc-good".into(),
                        availability_zone: "us-east-1a".into(),
                        cidr_block: Some(format!("10.0.{}.0/28", 210 + i)),
                        ..Default::default()
                    });
                }
            })
            .build();
        let (svg, _) = picture(&snapshot);
        let drawn = elements(&svg, &["data-kind=\"subnet\"", "data-az=\"us-east-1a\""]).len();
        // Public: subnet-pub-a; private: priv-a and the 40 extra ones (main table: no
        // default route, so private), drawn up to the cap.
        assert_eq!(drawn, 1 + MAX_PER_CELL);
        assert!(svg.contains(&format!("+{} more private subnets", 41 - MAX_PER_CELL)));
        assert!(svg.len() < 200_000, "{}", svg.len());
    }

    #[test]
    fn short_az_keeps_only_the_zone_letter() {
        assert_eq!(short_az("us-east-1c"), "c");
        assert_eq!(short_az("local-zone"), "local-zone");
        assert_eq!(short_az(""), "");
    }
}
