//! SVG primitives the drawing is made of: marked elements (outline, badge, tooltip, link),
//! dashed gaps for what is missing, text, truncation and the legend. Every value from the
//! account goes through `escape`.

use std::fmt::Write;

use super::*;

pub(super) const RED: &str = "#c62828";
pub(super) const GAP_FILL: &str = "#fff0f0";

/// The fragment of an href (`#finding-3` → `finding-3`).
pub(super) fn anchor(href: &str) -> &str {
    href.rsplit('#').next().unwrap_or(href)
}

/// ` data-findings="finding-1 finding-4"` for marked elements; empty otherwise.
pub(super) fn finding_attr(links: &[&FindingLink]) -> String {
    if links.is_empty() {
        return String::new();
    }
    let ids: Vec<&str> = links.iter().map(|l| anchor(&l.href)).collect();
    format!(" data-findings=\"{}\"", escape(&ids.join(" ")))
}

/// The tooltip: the element, then each finding on it.
pub(super) fn tooltip(summary: &str, links: &[&FindingLink]) -> String {
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
pub(super) fn open(out: &mut String, links: &[&FindingLink], attrs: &str, title: &str) {
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

pub(super) fn close(out: &mut String, links: &[&FindingLink]) {
    out.push_str("</g>");
    if !links.is_empty() {
        out.push_str("</a>");
    }
    out.push('\n');
}

#[allow(clippy::too_many_arguments)]
pub(super) fn element_rect(
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

pub(super) fn gap_rect(out: &mut String, x: f64, y: f64, w: f64, h: f64) {
    let _ = write!(
        out,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"5\" fill=\"{GAP_FILL}\" \
         stroke=\"{RED}\" stroke-width=\"2\" stroke-dasharray=\"7 4\"/>"
    );
}

/// A missing thing: a dashed red box with a label, linked to its findings.
#[allow(clippy::too_many_arguments)]
pub(super) fn gap(
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
pub(super) fn badge(out: &mut String, right: f64, top: f64, links: &[&FindingLink]) {
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

pub(super) fn more(out: &mut String, x: f64, y: f64, count: usize, what: &str) {
    let _ = write!(
        out,
        "<text data-kind=\"more\" x=\"{x}\" y=\"{y}\" font-size=\"10\" fill=\"#555\">\
         +{count} more {what} not drawn</text>"
    );
}

/// One line of text, cut to fit a box (the full value is in the element's tooltip).
pub(super) fn text(
    out: &mut String,
    x: f64,
    y: f64,
    size: f64,
    weight: &str,
    fill: &str,
    value: &str,
) {
    let limit = if size >= 12.0 { 80 } else { BOX_CHARS };
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y}\" font-size=\"{size}\" font-weight=\"{weight}\" fill=\"{fill}\">{}</text>",
        escape(&truncate(value, limit))
    );
}

/// Like [`text`], for a line as wide as `width`.
pub(super) fn text_wide(
    out: &mut String,
    x: f64,
    y: f64,
    size: f64,
    fill: &str,
    value: &str,
    width: f64,
) {
    let limit = ((width / (size * 0.6)) as usize).max(8);
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y}\" font-size=\"{size}\" fill=\"{fill}\">{}</text>",
        escape(&truncate(value, limit))
    );
}

pub(super) fn truncate(value: &str, limit: usize) -> String {
    if value.chars().count() <= limit {
        value.to_string()
    } else {
        let mut cut: String = value.chars().take(limit.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

pub(super) fn legend(out: &mut String, x: f64, y: f64) {
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
