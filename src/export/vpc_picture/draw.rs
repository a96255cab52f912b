//! Drawing: the [`Picture`] methods that write each element of the SVG (header, internet
//! gateway, subnets, NAT gateways, route lines, endpoint rows), marking the ones findings are
//! about.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::*;

impl<'t, 'v, 'a> Picture<'t, 'v, 'a> {
    pub(super) fn draw(&mut self) -> String {
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

    pub(super) fn is_s3(&self, endpoint: &VpcEndpoint) -> bool {
        endpoint.service_name == format!("com.amazonaws.{}.s3", self.region())
            || endpoint.service_name.ends_with(".s3")
    }

    pub(super) fn draw_header(&mut self, out: &mut String, x: f64, width: f64) {
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

    pub(super) fn draw_igw(&mut self, out: &mut String, x: f64, y: f64, width: f64, h: f64) {
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

    pub(super) fn draw_public_cell(
        &mut self,
        out: &mut String,
        column: &Column,
        x: f64,
        y: f64,
        w: f64,
    ) {
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

    pub(super) fn draw_nat_cell(
        &mut self,
        out: &mut String,
        column: &Column,
        x: f64,
        y: f64,
        w: f64,
    ) {
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

    pub(super) fn draw_private_cell(
        &mut self,
        out: &mut String,
        column: &Column,
        x: f64,
        y: f64,
        w: f64,
    ) {
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

    pub(super) fn draw_subnet(
        &mut self,
        out: &mut String,
        s: &SubnetView,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
    ) {
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
    pub(super) fn draw_s3_chip(&mut self, out: &mut String, s: &SubnetView, x: f64, y: f64) {
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

    pub(super) fn draw_nat(&mut self, out: &mut String, nat: &NatGateway, x: f64, y: f64, w: f64) {
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

    pub(super) fn draw_routes(&mut self, out: &mut String, igw_bottom: f64) {
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
    pub(super) fn draw_endpoint_row(
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

    pub(super) fn draw_gateway_endpoint(
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
