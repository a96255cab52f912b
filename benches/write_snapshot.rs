//! Writes a synthetic snapshot file for the daemon's memory benchmark in `scripts/bench.sh`:
//! `cargo bench --bench write_snapshot -- <VPCS> <FILE>` (6 subnets per VPC). Not a timing
//! benchmark; without arguments (a plain `cargo bench`) it does nothing.

// Each bench uses a different part of the shared generator.
#[allow(dead_code)]
#[path = "support/synthetic.rs"]
mod synthetic;

fn main() {
    // cargo bench appends `--bench`; only the positional arguments matter here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [vpcs, out] = args.as_slice() else {
        println!("write_snapshot: no <VPCS> <FILE> given, nothing to write");
        return;
    };
    let vpcs: usize = vpcs.parse().expect("<VPCS> is a number");
    let snapshot = synthetic::snapshot(vpcs);
    std::fs::write(out, snapshot.to_json_pretty()).expect("the snapshot file is writable");
    println!(
        "write_snapshot: {out}: {vpcs} VPCs, {} subnets",
        snapshot.regions[0].subnets.len()
    );
}
