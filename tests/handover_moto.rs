//! The guide's handover list (issue 18, requirement 6) against a real AWS API (moto): a
//! Union-shaped VPC and the `union-ai-admin` role are built through the SDK, and the real
//! binary's report must hand over exactly their ids, one subnet per zone, in the same run
//! that judged them.

mod common;

use common::scenario::{self, BuiltVpc, Layout};
use common::{auditor, create_role, json_report, run, temp_file, Moto, REGION};
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";

fn ids(built: &BuiltVpc, class: &str) -> Vec<String> {
    ['a', 'b', 'c']
        .iter()
        .map(|z| built.id(&format!("subnet-{class}-{z}")).to_string())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

/// The sheets of the report about `vpc`.
fn sheets_of<'r>(report: &'r Value, vpc: &str) -> Vec<&'r Value> {
    report["handover"]
        .as_array()
        .map(|list| list.iter().filter(|s| s["vpc_id"] == vpc).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_hands_over_the_declared_and_the_derived_data_plane() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let iam = moto.iam().await;
    let prod = scenario::build(&ec2, "handover-prod", &Layout::compliant()).await;
    // An isolated database subnet: not part of the handover in either mode.
    let database = scenario::create_subnet(
        &ec2,
        &prod.vpc_id,
        'a',
        "10.0.250.0/26",
        "handover-prod-database-a",
    )
    .await;
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::479331373192:root"},
            "Action": "sts:AssumeRole"
        }]
    });
    create_role(&iam, "union-ai-admin", &trust, &[]).await;
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/union-ai-admin");

    // 1. Declared: the sheet is the declaration, placed in its zones.
    let public = ids(&prod, "public");
    let private = ids(&prod, "private");
    let config = format!(
        "regions: [{REGION}]\nscope:\n  exclude_default_vpc: true\ndata_planes:\n  - name: union-prod\n    \
         pack: union-byoc\n    region: {REGION}\n    vpc_id: {}\n    public_subnet_ids: [{}]\n    \
         private_subnet_ids: [{}]\n",
        prod.vpc_id,
        public.join(", "),
        private.join(", ")
    );
    let (_dir, path) = temp_file("declared.yaml", &config);
    let out = run(&mut moto.once_json(Some(&path)));
    let report = json_report(&out);
    let sheets = sheets_of(&report, &prod.vpc_id);
    assert_eq!(sheets.len(), 1, "{}", report["handover"]);
    let sheet = sheets[0];
    assert_eq!(sheet["data_plane"], "union-prod");
    assert_eq!(sheet["vendor"], "Union.ai");
    assert_eq!(strings(&sheet["role_arns"]), vec![role_arn.clone()]);
    assert_eq!(strings(&sheet["public_subnet_ids"]), public);
    assert_eq!(strings(&sheet["private_subnet_ids"]), private);
    assert_eq!(sheet["gaps"], json!([]), "{sheet}");
    let zones: Vec<&str> = sheet["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["availability_zone"].as_str().unwrap())
        .collect();
    assert_eq!(zones, ["us-east-1a", "us-east-1b", "us-east-1c"]);
    // The role has none of the vendor's policy: its findings count on the sheet.
    let role_findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["resource_id"] == role_arn.as_str() && f["suppressed"].is_null())
        .count();
    let open: u64 = sheet["open_findings"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(role_findings > 0);
    assert!(open >= role_findings as u64, "{sheet}");

    // The same run's text report prints the lines to copy.
    let out = run(auditor()
        .args([
            "--once",
            "--format",
            "table",
            "--endpoint-url",
            &moto.endpoint(),
            "--config",
        ])
        .arg(&path));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("Handover to Union.ai (union-byoc)"),
        "{printed}"
    );
    assert!(printed.contains("VPC ID") && printed.contains(&prod.vpc_id));
    assert!(printed.contains(&public.join(", ")), "{printed}");
    assert!(printed.contains(&role_arn));
    for (format, heading) in [
        ("markdown", "### Handover"),
        ("html", "<h2 id=\"handover\">Handover</h2>"),
    ] {
        let out = run(auditor()
            .args([
                "--once",
                "--format",
                format,
                "--endpoint-url",
                &moto.endpoint(),
                "--config",
            ])
            .arg(&path));
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(page.contains(heading), "{format}: {page}");
        assert!(
            page.contains(&public.join(", ")) && page.contains(&role_arn),
            "{format}: {page}"
        );
    }

    // 2. Not declared: derived from the subnet classes. A second public subnet in zone b
    //    makes that zone ambiguous: it is left out of the list to copy and named as a gap.
    let second = scenario::create_subnet(
        &ec2,
        &prod.vpc_id,
        'b',
        "10.0.200.0/28",
        "handover-prod-public-b2",
    )
    .await;
    let config = format!("regions: [{REGION}]\nscope:\n  exclude_default_vpc: true\n");
    let (_dir2, path) = temp_file("derived.yaml", &config);
    let report = json_report(&run(&mut moto.once_json(Some(&path))));
    let sheets = sheets_of(&report, &prod.vpc_id);
    assert_eq!(sheets.len(), 1, "{}", report["handover"]);
    let sheet = sheets[0];
    assert!(sheet["data_plane"].is_null());
    assert_eq!(
        strings(&sheet["public_subnet_ids"]),
        vec![public[0].clone(), public[2].clone()]
    );
    assert_eq!(strings(&sheet["private_subnet_ids"]), private);
    let gaps = strings(&sheet["gaps"]);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(
        gaps[0].starts_with("us-east-1b: 2 public subnets")
            && gaps[0].contains(&public[1])
            && gaps[0].contains(&second),
        "{gaps:?}"
    );
    let everything = sheet.to_string();
    assert!(!everything.contains(&database), "{everything}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_role_and_a_vanished_vpc_are_gaps_not_guesses() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let prod = scenario::build(&ec2, "handover-gaps", &Layout::compliant()).await;
    let config = format!(
        "regions: [{REGION}]\nscope:\n  exclude_default_vpc: true\ndata_planes:\n  - name: union-prod\n    \
         pack: union-byoc\n    region: {REGION}\n    vpc_id: {}\n    public_subnet_ids: [{}]\n    \
         private_subnet_ids: [{}]\n  - name: union-old\n    pack: union-byoc\n    region: {REGION}\n    \
         vpc_id: vpc-0000000000dead001\n    public_subnet_ids: [subnet-0dead01]\n    \
         private_subnet_ids: [subnet-0dead02]\n",
        prod.vpc_id,
        ids(&prod, "public").join(", "),
        ids(&prod, "private").join(", ")
    );
    let (_dir, path) = temp_file("gaps.yaml", &config);
    let report = json_report(&run(&mut moto.once_json(Some(&path))));
    let sheet = sheets_of(&report, &prod.vpc_id)[0];
    // No union-ai-admin role in the account: no ARN is invented.
    assert_eq!(sheet["role_arns"], json!([]));
    let gaps = strings(&sheet["gaps"]);
    assert!(
        gaps.iter()
            .any(|g| g.starts_with("role ARN: no role union-ai-admin in account 123456789012")),
        "{gaps:?}"
    );
    let old = sheets_of(&report, "vpc-0000000000dead001");
    assert_eq!(old.len(), 1, "{}", report["handover"]);
    assert_eq!(old[0]["public_subnet_ids"], json!([]));
    assert_eq!(
        strings(&old[0]["gaps"]),
        vec!["nothing verified: VPC vpc-0000000000dead001 does not exist in us-east-1 (data_plane.vpc_missing)"]
    );
}
