//! Address space: the first free block of a given size inside a VPC's CIDRs, and the
//! secondary CIDR a VPC can add. The rules name these blocks in their remediation, and
//! `crate::plan` picks the same ones, so advice and plan agree.

use ipnetwork::Ipv4Network;

use crate::snapshot::{RegionSnapshot, Vpc};

/// Every IPv4 CIDR of the VPC, the primary first.
pub fn vpc_cidrs(vpc: &Vpc) -> Vec<Ipv4Network> {
    let mut out: Vec<Ipv4Network> = Vec::new();
    for c in vpc.cidr_block.iter().chain(vpc.cidr_blocks.iter()) {
        if let Ok(net) = c.parse::<Ipv4Network>() {
            if !out.contains(&net) {
                out.push(net);
            }
        }
    }
    out
}

/// The IPv4 blocks of the VPC's subnets.
pub fn used_by_subnets(region: &RegionSnapshot, vpc_id: &str) -> Vec<Ipv4Network> {
    region
        .subnets
        .iter()
        .filter(|s| s.vpc_id == vpc_id)
        .filter_map(|s| s.cidr_block.as_deref()?.parse().ok())
        .collect()
}

/// A secondary CIDR of `/prefix` AWS would accept for `vpc`: the first one in the private
/// range (RFC 1918) of its primary CIDR that no VPC of the region uses. AWS takes VPC
/// CIDRs from /16 to /28; `None` outside that, or when the primary is not RFC 1918.
pub fn secondary_cidr(region: &RegionSnapshot, vpc: &Vpc, prefix: u8) -> Option<Ipv4Network> {
    if !(16..=28).contains(&prefix) {
        return None;
    }
    let primary: Ipv4Network = vpc.cidr_block.as_deref()?.parse().ok()?;
    let range = rfc1918_range(&primary)?;
    let taken: Vec<Ipv4Network> = region
        .vpcs
        .iter()
        .chain(region.skipped_vpcs.iter())
        .flat_map(vpc_cidrs)
        .collect();
    free_block(&[range], &taken, prefix)
}

/// True when the two networks share an address.
pub fn overlaps(a: &Ipv4Network, b: &Ipv4Network) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// The first block of `/prefix`, aligned, inside one of `within`, overlapping none of
/// `used`. `None` when there is none (or `prefix` is smaller than every `within`).
pub fn free_block(within: &[Ipv4Network], used: &[Ipv4Network], prefix: u8) -> Option<Ipv4Network> {
    if prefix > 28 {
        return None;
    }
    for outer in within {
        if prefix < outer.prefix() {
            continue;
        }
        let step = 1u64 << (32 - u32::from(prefix));
        let start = u64::from(u32::from(outer.network()));
        let end = start + u64::from(outer.size());
        let mut at = start;
        while at + step <= end {
            let candidate = Ipv4Network::new((at as u32).into(), prefix).ok()?;
            match used.iter().find(|u| overlaps(u, &candidate)) {
                None => return Some(candidate),
                // Skip past the used block (it may be larger than the candidate).
                Some(u) => {
                    let u_end = u64::from(u32::from(u.network())) + u64::from(u.size());
                    at = (at + step).max(u_end);
                    // Re-align to the block size.
                    at = at.div_ceil(step) * step;
                }
            }
        }
    }
    None
}

/// The private range (RFC 1918) holding `net`, from which AWS lets a VPC add a secondary
/// CIDR of the same kind.
pub fn rfc1918_range(net: &Ipv4Network) -> Option<Ipv4Network> {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        .iter()
        .map(|r| r.parse::<Ipv4Network>().expect("a valid range"))
        .find(|r| r.contains(net.network()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Network {
        s.parse().unwrap()
    }

    #[test]
    fn first_free_block_skips_used_space() {
        let vpc = [n("10.0.0.0/16")];
        let used = [n("10.0.0.0/24"), n("10.0.64.0/18")];
        assert_eq!(free_block(&vpc, &used, 18), Some(n("10.0.128.0/18")));
        assert_eq!(free_block(&vpc, &used, 24), Some(n("10.0.1.0/24")));
    }

    #[test]
    fn no_slash_18_inside_a_slash_24() {
        assert_eq!(free_block(&[n("10.0.0.0/24")], &[], 18), None);
        assert_eq!(
            free_block(&[n("10.0.0.0/24")], &[n("10.0.0.0/25")], 26),
            Some(n("10.0.0.128/26"))
        );
        let full = [n("10.0.0.0/25"), n("10.0.0.128/25")];
        assert_eq!(free_block(&[n("10.0.0.0/24")], &full, 28), None);
    }

    #[test]
    fn private_ranges() {
        assert_eq!(rfc1918_range(&n("10.9.0.0/24")), Some(n("10.0.0.0/8")));
        assert_eq!(rfc1918_range(&n("172.31.0.0/16")), Some(n("172.16.0.0/12")));
        assert_eq!(rfc1918_range(&n("100.64.0.0/16")), None);
    }
}
