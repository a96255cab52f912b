//! Sharding: which accounts this replica audits when several replicas split an AWS
//! Organization between them, as kube-state-metrics splits objects. Each account belongs to
//! exactly one shard, by a stable hash of its id (64-bit FNV-1a) modulo the number of
//! shards, so every replica decides the same without talking to the others, and an
//! account moves only when the number of shards changes.
//!
//! The shard index can be given, or taken from the ordinal of a StatefulSet pod's name
//! (`vpc-auditor-2` is shard 2). Pure logic: the pod name is passed in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// This replica's shard: `index` of `total` (0-based). `Shard::WHOLE` audits everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl Shard {
    /// One shard holding every account: no sharding.
    pub const WHOLE: Shard = Shard { index: 0, total: 1 };

    /// `index` of `total`; `total` must be at least 1 and `index` below it.
    pub fn new(index: u32, total: u32) -> Result<Shard, String> {
        if total == 0 {
            return Err("total_shards must be at least 1".into());
        }
        if index >= total {
            return Err(format!(
                "shard {index} is out of range: with {total} shard(s) the index is 0 to {}",
                total - 1
            ));
        }
        Ok(Shard { index, total })
    }

    /// Whether this shard audits `account_id`.
    pub fn owns(&self, account_id: &str) -> bool {
        shard_of(account_id, self.total) == self.index
    }

    pub fn is_whole(&self) -> bool {
        self.total == 1
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.index, self.total)
    }
}

/// The shard an account belongs to among `total`.
pub fn shard_of(account_id: &str, total: u32) -> u32 {
    (fnv1a_64(account_id.as_bytes()) % u64::from(total.max(1))) as u32
}

/// 64-bit FNV-1a: small, fast, and the same on every platform and release.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// How the shard index is given: a number, or `auto` for the StatefulSet pod ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ShardIndex {
    Fixed(u32),
    /// The trailing `-N` of the pod's name (`POD_NAME`, else `HOSTNAME`).
    FromPodOrdinal,
}

impl FromStr for ShardIndex {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(ShardIndex::FromPodOrdinal);
        }
        s.parse::<u32>().map(ShardIndex::Fixed).map_err(|_| {
            format!("expected a shard number (0, 1, ...) or `auto` (the StatefulSet pod ordinal), found {s:?}")
        })
    }
}

impl TryFrom<String> for ShardIndex {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ShardIndex> for String {
    fn from(index: ShardIndex) -> String {
        match index {
            ShardIndex::Fixed(n) => n.to_string(),
            ShardIndex::FromPodOrdinal => "auto".into(),
        }
    }
}

impl ShardIndex {
    /// The index, reading the pod name for `auto` from `pod_name` (the caller passes
    /// `POD_NAME` or `HOSTNAME`).
    pub fn resolve(self, pod_name: Option<&str>) -> Result<u32, String> {
        match self {
            ShardIndex::Fixed(n) => Ok(n),
            ShardIndex::FromPodOrdinal => {
                let name = pod_name.filter(|n| !n.is_empty()).ok_or(
                    "shard `auto` needs the pod's name in POD_NAME or HOSTNAME (a StatefulSet sets HOSTNAME)",
                )?;
                pod_ordinal(name).ok_or_else(|| {
                    format!(
                        "shard `auto`: pod name {name:?} does not end in -N, as a StatefulSet pod's does"
                    )
                })
            }
        }
    }
}

/// The ordinal of a StatefulSet pod name: `vpc-auditor-12` → 12.
pub fn pod_ordinal(name: &str) -> Option<u32> {
    let (_, ordinal) = name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ordinal.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite (Fowler, Noll, Vo).
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn every_account_belongs_to_exactly_one_shard_and_shards_are_balanced() {
        let accounts: Vec<String> = (0..3000u64)
            .map(|i| format!("{:012}", 100_000_000_000 + i * 7919))
            .collect();
        for total in [1, 2, 3, 7] {
            let shards: Vec<Shard> = (0..total).map(|i| Shard::new(i, total).unwrap()).collect();
            let mut per_shard = vec![0usize; total as usize];
            for account in &accounts {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(account)).collect();
                assert_eq!(owners.len(), 1, "{account} with {total} shards");
                per_shard[owners[0].index as usize] += 1;
            }
            let fair = accounts.len() / total as usize;
            for n in per_shard {
                assert!(n > fair * 8 / 10 && n < fair * 12 / 10, "{n} vs {fair}");
            }
        }
    }

    #[test]
    fn shard_bounds_are_checked() {
        assert!(Shard::new(0, 0).is_err());
        assert!(Shard::new(2, 2).unwrap_err().contains("0 to 1"));
        assert!(Shard::WHOLE.owns("123456789012"));
    }

    #[test]
    fn auto_takes_the_statefulset_ordinal() {
        assert_eq!(pod_ordinal("vpc-auditor-2"), Some(2));
        assert_eq!(pod_ordinal("vpc-auditor-12"), Some(12));
        assert_eq!(pod_ordinal("vpc-auditor"), None);
        assert_eq!(pod_ordinal("vpc-auditor-7f9c"), None);
        let auto: ShardIndex = "auto".parse().unwrap();
        assert_eq!(auto.resolve(Some("auditor-3")), Ok(3));
        assert!(auto.resolve(None).unwrap_err().contains("POD_NAME"));
        assert!(auto.resolve(Some("auditor")).unwrap_err().contains("-N"));
        assert_eq!("4".parse::<ShardIndex>(), Ok(ShardIndex::Fixed(4)));
        assert!("four".parse::<ShardIndex>().is_err());
    }
}
