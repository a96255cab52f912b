//! The VPC picture as a person meets it: the built binary writes the `--format html` report
//! of the demo snapshot (a compliant VPC and a broken one), and the daemon serves its status
//! page; a real headless Chromium (Debian's package, installed by
//! `scripts/setup-test-env.sh`) renders both. The screenshot must be a real image, and the
//! DOM Chromium parsed must hold the SVG elements: one column per AZ, the subnets by id, the
//! NAT gateways, the internet gateway, the endpoints, the visible gaps, and on the broken
//! VPC the finding marks, each linking to a finding row that exists.
//!
//! `UPDATE_SCREENSHOT=1 cargo test --test vpc_picture_browser` rewrites
//! `docs/vpc-picture.png`, the README's picture. Nothing leaves 127.0.0.1.

mod common;
mod daemon_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{auditor, run, stderr};
use daemon_support::Daemon;

const GOOD_VPC: &str = "vpc-0a11c0ffee0000001";
const BROKEN_VPC: &str = "vpc-0b22deadbeef00002";

/// Runs headless Chromium with `args` in a fresh profile, killing it after a minute.
/// Returns its stdout (the DOM, with `--dump-dom`).
fn chromium(args: &[&str]) -> String {
    let binary = std::env::var_os("CHROMIUM").unwrap_or_else(|| "chromium".into());
    let profile = tempfile::tempdir().expect("temp dir");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let stdout_path = out_dir.path().join("stdout");
    let stderr_path = out_dir.path().join("stderr");
    let mut child = Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {binary:?} ({e}): run scripts/setup-test-env.sh to install Chromium"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {args:?} did not finish in 90 s\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    assert!(
        status.success(),
        "chromium {args:?} exited {status}\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    stdout
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "too short for a PNG");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// Takes a screenshot of `url` and checks it is a real, non-trivial image.
fn screenshot(url: &str, path: &Path, size: &str) -> Vec<u8> {
    chromium(&[
        &format!("--screenshot={}", path.display()),
        &format!("--window-size={size}"),
        url,
    ]);
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (width, height) = png_size(&png);
    let (w, h) = size.split_once(',').unwrap();
    assert_eq!(
        (width.to_string(), height.to_string()),
        (w.into(), h.into())
    );
    // A blank page of this size compresses to a few kilobytes; drawn boxes and text don't.
    assert!(png.len() > 40_000, "screenshot is only {} bytes", png.len());
    png
}

/// The `<svg>` element drawn for `vpc` in a DOM, up to its closing tag.
fn svg_of<'d>(dom: &'d str, vpc: &str) -> &'d str {
    let marker = format!("data-vpc=\"{vpc}\"");
    let at = dom
        .match_indices("<svg")
        .map(|(i, _)| i)
        .find(|&i| dom[i..].split('>').next().unwrap_or("").contains(&marker))
        .unwrap_or_else(|| panic!("no <svg> for {vpc} in the DOM"));
    let end = dom[at..].find("</svg>").expect("closing </svg>") + at;
    &dom[at..end]
}

/// The opening tags in `svg` that carry every one of `attrs`.
fn tags<'s>(svg: &'s str, attrs: &[&str]) -> Vec<&'s str> {
    svg.split('<')
        .map(|t| t.split('>').next().unwrap_or(""))
        .filter(|t| attrs.iter().all(|a| t.contains(a)))
        .collect()
}

fn one(svg: &str, attrs: &[&str]) {
    let found = tags(svg, attrs);
    assert_eq!(
        found.len(),
        1,
        "expected one element with {attrs:?}, found {found:?}"
    );
}

/// The `finding-N` ids an element's `data-findings` names.
fn finding_ids(tag: &str) -> Vec<String> {
    let Some(start) = tag.find("data-findings=\"") else {
        return Vec::new();
    };
    let rest = &tag[start + "data-findings=\"".len()..];
    rest[..rest.find('"').unwrap()]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Checks the pictures of both demo VPCs in a DOM Chromium produced: every element, the
/// gaps of the broken VPC, and that each finding mark links to a row that exists.
fn check_demo_pictures(dom: &str) {
    assert!(!dom.contains("<script"), "the page has no script");

    let good = svg_of(dom, GOOD_VPC);
    for az in ["us-east-1a", "us-east-1b", "us-east-1c"] {
        one(good, &["data-kind=\"az\"", &format!("data-az=\"{az}\"")]);
    }
    for letter in ["a", "b", "c"] {
        one(
            good,
            &[
                "data-kind=\"subnet\"",
                &format!("data-id=\"subnet-pub-{letter}\""),
                "data-role=\"public\"",
            ],
        );
        one(
            good,
            &[
                "data-kind=\"subnet\"",
                &format!("data-id=\"subnet-priv-{letter}\""),
                "data-role=\"private\"",
            ],
        );
        one(
            good,
            &["data-kind=\"nat\"", &format!("data-id=\"nat-{letter}\"")],
        );
        one(
            good,
            &[
                "data-kind=\"route\"",
                &format!("data-from=\"subnet-priv-{letter}\""),
                &format!("data-to=\"nat-{letter}\""),
            ],
        );
    }
    one(
        good,
        &["data-kind=\"igw\"", "data-id=\"igw-0a11c0ffee0000001\""],
    );
    one(
        good,
        &["data-kind=\"gateway-endpoint\"", "data-id=\"vpce-s3\""],
    );
    for service in ["logs", "ecr.dkr", "ec2"] {
        one(
            good,
            &[
                "data-kind=\"endpoint\"",
                &format!("data-service=\"{service}\""),
            ],
        );
        assert_eq!(
            tags(
                good,
                &[
                    "data-kind=\"endpoint-az\"",
                    &format!("data-service=\"{service}\"")
                ]
            )
            .len(),
            3,
            "{service} covers the three AZs"
        );
    }
    assert!(
        tags(good, &["data-kind=\"gap\""]).is_empty(),
        "the compliant VPC has no gap"
    );
    assert!(
        !good.contains("data-findings"),
        "the compliant VPC has no finding mark"
    );

    let broken = svg_of(dom, BROKEN_VPC);
    one(broken, &["data-kind=\"az\"", "data-az=\"us-east-1a\""]);
    one(broken, &["data-kind=\"az\"", "data-az=\"us-east-1b\""]);
    // Only two AZs used: the third is drawn as a gap for vpc.az_count.
    one(
        broken,
        &["data-gap=\"az-unused\"", "data-az=\"us-east-1c\""],
    );
    for id in [
        "subnet-stg-pub-a",
        "subnet-stg-pub-b",
        "subnet-stg-priv-a",
        "subnet-stg-priv-b",
    ] {
        one(
            broken,
            &["data-kind=\"subnet\"", &format!("data-id=\"{id}\"")],
        );
    }
    one(broken, &["data-kind=\"nat\"", "data-id=\"nat-stg-a\""]);
    // AZ b lost its NAT: its private subnet crosses to AZ a's.
    one(broken, &["data-gap=\"no-nat\"", "data-az=\"us-east-1b\""]);
    one(
        broken,
        &[
            "data-kind=\"route\"",
            "data-from=\"subnet-stg-priv-b\"",
            "data-to=\"nat-stg-a\"",
            "data-cross-az=\"true\"",
        ],
    );
    assert!(broken.contains("AZ b: no NAT"));
    one(
        broken,
        &["data-kind=\"igw\"", "data-id=\"igw-0b22deadbeef00002\""],
    );
    one(
        broken,
        &["data-kind=\"gateway-endpoint\"", "data-id=\"vpce-stg-s3\""],
    );
    one(
        broken,
        &["data-kind=\"endpoint\"", "data-id=\"vpce-stg-logs\""],
    );
    // No ecr.dkr endpoint at all: a gap row, and a gap in each AZ.
    one(
        broken,
        &["data-gap=\"endpoint-missing\"", "data-service=\"ecr.dkr\""],
    );
    assert_eq!(
        tags(
            broken,
            &["data-gap=\"endpoint-az\"", "data-service=\"ecr.dkr\""]
        )
        .len(),
        2
    );
    assert!(broken.contains("ecr.dkr: missing in AZ b"));

    // Marked elements: each links to finding rows that exist in the page.
    let marked: Vec<&str> = tags(broken, &["data-findings=\""]);
    assert!(marked.len() >= 5, "{marked:?}");
    let mut linked = BTreeSet::new();
    for tag in &marked {
        for id in finding_ids(tag) {
            assert!(
                dom.contains(&format!("<tr id=\"{id}\"")),
                "no row {id} for {tag}"
            );
            linked.insert(id);
        }
    }
    for id in &linked {
        assert!(
            dom.contains(&format!("href=\"#{id}\"")),
            "nothing links to {id}"
        );
    }
    // The marked elements include the subnets, the NAT gap, the endpoint and the logs
    // endpoint's Private DNS finding.
    for attrs in [
        &["data-kind=\"subnet\"", "data-id=\"subnet-stg-priv-b\""][..],
        &["data-gap=\"no-nat\""][..],
        &["data-kind=\"endpoint\"", "data-id=\"vpce-stg-logs\""][..],
        &["data-gap=\"endpoint-missing\""][..],
    ] {
        let found = tags(broken, attrs);
        assert!(
            found.iter().any(|t| t.contains("data-findings=\"finding-")),
            "{attrs:?} is not marked: {found:?}"
        );
    }
    assert!(broken.contains("finding-badge"));
    assert!(broken.contains("<title>"));
}

#[test]
fn the_html_report_pictures_render_in_chromium() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("report.html");
    let out = run(auditor()
        .args(["--once", "--demo", "--format", "html", "--output"])
        .arg(&report));
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings: exit 1\n{}",
        stderr(&out)
    );
    let html = std::fs::read_to_string(&report).expect("report written");
    // Self-contained: no script, no external asset, no link off the page.
    assert!(!html.contains("<script") && !html.contains("src=\""));
    assert!(!html.contains("http://") && !html.contains("https://"));
    let url = format!("file://{}", report.display());

    // (1) What a person sees.
    screenshot(&url, &dir.path().join("report.png"), "1400,2000");
    // The broken VPC's picture alone, cut from the report: the README's picture.
    let start = html
        .find(&format!("<h3 id=\"vpc-{BROKEN_VPC}\""))
        .expect("the broken VPC's heading");
    let end = start + html[start..].find("</div>").expect("its picture") + "</div>".len();
    let alone = dir.path().join("broken.html");
    std::fs::write(
        &alone,
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{{margin:8px;\
             font-family:system-ui,sans-serif}}</style></head><body>{}</body></html>",
            &html[start..end]
        ),
    )
    .expect("write broken.html");
    let png = screenshot(
        &format!("file://{}", alone.display()),
        &dir.path().join("broken.png"),
        "860,800",
    );
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/vpc-picture.png");
        std::fs::write(&docs, &png).expect("write docs/vpc-picture.png");
    }

    // (2) What the browser parsed.
    let dom = chromium(&["--dump-dom", &url]);
    assert!(dom.contains("<h2>VPCs</h2>"), "{dom}");
    check_demo_pictures(&dom);
}

#[test]
fn the_daemon_status_page_pictures_render_in_chromium() {
    let daemon = Daemon::start(&["--demo"]);
    daemon.wait_ready();
    let (status, page) = daemon.get("/");
    assert_eq!(status, 200);
    assert!(page.contains(&format!("data-vpc=\"{GOOD_VPC}\"")), "{page}");
    assert!(page.contains(&format!("data-vpc=\"{BROKEN_VPC}\"")));

    let url = format!("http://127.0.0.1:{}/", daemon.port);
    let dir = tempfile::tempdir().expect("temp dir");
    screenshot(&url, &dir.path().join("status.png"), "1400,2000");
    let dom = chromium(&["--dump-dom", &url]);
    check_demo_pictures(&dom);
}
