//! Address sets: unions of IPv4 and IPv6 ranges, so that widening is judged by the addresses
//! a list of CIDRs reaches, not by its strings (`0.0.0.0/1` plus `128.0.0.0/1` is the whole
//! IPv4 internet; `10.0.0.0/24` → `10.0.0.0/8` is wider; `10.0.1.0/24` → `10.0.2.0/24`
//! reaches new addresses).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A set of addresses: sorted, disjoint, non-adjacent inclusive ranges per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrSet {
    v4: Vec<(u128, u128)>,
    v6: Vec<(u128, u128)>,
}

const V4_MAX: u128 = u32::MAX as u128;

/// Parses a CIDR (`10.0.0.0/8`, host bits allowed and ignored) or a bare address (`/32`,
/// `/128`).
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn range(net: &IpNet) -> (bool, u128, u128) {
    match net {
        IpNet::V4(n) => (
            false,
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (true, u128::from(n.network()), u128::from(n.broadcast())),
    }
}

/// Sorts and merges overlapping or adjacent ranges.
fn normalize(ranges: &mut Vec<(u128, u128)>) {
    ranges.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
    for &(s, e) in ranges.iter() {
        match out.last_mut() {
            Some(last) if last.1.checked_add(1).is_none_or(|next| s <= next) => {
                last.1 = last.1.max(e);
            }
            _ => out.push((s, e)),
        }
    }
    *ranges = out;
}

/// `a` minus `b`, both normalized.
fn minus(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    for &(mut s, e) in a {
        let mut gone = false;
        for &(bs, be) in b {
            if bs > e || be < s {
                continue;
            }
            if bs > s {
                out.push((s, bs - 1));
            }
            match be.checked_add(1) {
                Some(next) if next <= e => s = next,
                _ => {
                    gone = true;
                    break;
                }
            }
        }
        if !gone {
            out.push((s, e));
        }
    }
    out
}

/// The CIDRs that exactly cover `[start, end]` in a space of `width` bits.
fn cidrs_of(mut start: u128, end: u128, width: u32) -> Vec<(u128, u8)> {
    let host_mask = |bits: u32| {
        if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        }
    };
    let mut out = Vec::new();
    loop {
        let mut bits = start.trailing_zeros().min(width);
        while start + host_mask(bits) > end {
            bits -= 1;
        }
        // `bits <= width <= 128`, so the prefix length fits a u8.
        out.push((start, (width - bits) as u8));
        let last = start + host_mask(bits);
        if last >= end {
            return out;
        }
        start = last + 1;
    }
}

impl AddrSet {
    /// The set of the parsable entries of `cidrs`; the unparsable ones are returned apart.
    pub fn from_strs<'a>(cidrs: impl IntoIterator<Item = &'a str>) -> (AddrSet, Vec<String>) {
        let mut set = AddrSet::default();
        let mut bad = Vec::new();
        for c in cidrs {
            match parse_net(c) {
                Some(net) => set.insert(&net),
                None => bad.push(c.to_owned()),
            }
        }
        (set, bad)
    }

    /// Adds every address of `net`.
    pub fn insert(&mut self, net: &IpNet) {
        let (v6, s, e) = range(net);
        let list = if v6 { &mut self.v6 } else { &mut self.v4 };
        list.push((s, e));
        normalize(list);
    }

    /// Every address of `self` or `other`.
    pub fn union(&self, other: &AddrSet) -> AddrSet {
        let mut out = self.clone();
        out.v4.extend_from_slice(&other.v4);
        out.v6.extend_from_slice(&other.v6);
        normalize(&mut out.v4);
        normalize(&mut out.v6);
        out
    }

    /// The addresses of `self` that are not in `other`.
    pub fn minus(&self, other: &AddrSet) -> AddrSet {
        AddrSet {
            v4: minus(&self.v4, &other.v4),
            v6: minus(&self.v6, &other.v6),
        }
    }

    /// Whether every address of `self` is in `other`.
    pub fn is_subset(&self, other: &AddrSet) -> bool {
        self.minus(other).is_empty()
    }

    /// Whether the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether the set holds every IPv4 address (`0.0.0.0/0`, however it is spelled).
    pub fn covers_ipv4_internet(&self) -> bool {
        self.v4 == [(0, V4_MAX)]
    }

    /// Whether the set holds every IPv6 address (`::/0`, however it is spelled).
    pub fn covers_ipv6_internet(&self) -> bool {
        self.v6 == [(0, u128::MAX)]
    }

    /// Whether the set holds a whole address family.
    pub fn covers_internet(&self) -> bool {
        self.covers_ipv4_internet() || self.covers_ipv6_internet()
    }

    /// Number of IPv4 addresses.
    pub fn ipv4_count(&self) -> u128 {
        self.v4.iter().map(|(s, e)| e - s + 1).sum()
    }

    /// The fewest CIDRs that cover exactly this set, IPv4 first.
    pub fn cidrs(&self) -> Vec<IpNet> {
        let mut out = Vec::new();
        for &(s, e) in &self.v4 {
            for (start, len) in cidrs_of(s, e, 32) {
                // An IPv4 range: `start <= u32::MAX` and `len <= 32`, so neither fails.
                if let Ok(addr) = u32::try_from(start)
                    && let Ok(n) = Ipv4Net::new(addr.into(), len)
                {
                    out.push(IpNet::V4(n));
                }
            }
        }
        for &(s, e) in &self.v6 {
            for (start, len) in cidrs_of(s, e, 128) {
                if let Ok(n) = Ipv6Net::new(start.into(), len) {
                    out.push(IpNet::V6(n));
                }
            }
        }
        out
    }

    /// Up to `max` CIDRs of the set, then how many more, for a message.
    pub fn describe(&self, max: usize) -> String {
        let all = self.cidrs();
        let mut s = all
            .iter()
            .take(max)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if all.len() > max {
            s.push_str(&format!(" and {} more", all.len() - max));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cidrs: &[&str]) -> AddrSet {
        let (s, bad) = AddrSet::from_strs(cidrs.iter().copied());
        assert!(bad.is_empty(), "{bad:?}");
        s
    }

    #[test]
    fn two_halves_are_the_whole_internet() {
        assert!(set(&["0.0.0.0/1", "128.0.0.0/1"]).covers_ipv4_internet());
        assert!(set(&["0.0.0.0/0"]).covers_ipv4_internet());
        assert!(!set(&["0.0.0.0/1", "128.0.0.0/2"]).covers_ipv4_internet());
        assert!(set(&["::/1", "8000::/1"]).covers_ipv6_internet());
        assert_eq!(set(&["0.0.0.0/1", "128.0.0.0/1"]).describe(4), "0.0.0.0/0");
    }

    #[test]
    fn subsets_compare_addresses_not_strings() {
        assert!(set(&["10.0.1.0/24"]).is_subset(&set(&["10.0.0.0/8"])));
        assert!(!set(&["10.0.0.0/8"]).is_subset(&set(&["10.0.1.0/24"])));
        assert!(!set(&["10.0.2.0/24"]).is_subset(&set(&["10.0.1.0/24"])));
        assert!(set(&["10.0.0.0/25", "10.0.0.128/25"]).is_subset(&set(&["10.0.0.0/24"])));
        assert!(set(&["10.0.0.0/24"]).is_subset(&set(&["10.0.0.0/25", "10.0.0.128/25"])));
        assert!(set(&["10.0.0.7"]).is_subset(&set(&["10.0.0.0/29"])));
        assert!(!set(&["::1/128"]).is_subset(&set(&["0.0.0.0/0"])));
        assert_eq!(set(&["10.0.0.0/24"]).ipv4_count(), 256);
    }

    #[test]
    fn minus_splits_ranges_and_cidrs_cover_them_exactly() {
        let rest = set(&["10.0.0.0/8"]).minus(&set(&["10.1.0.0/16"]));
        assert_eq!(rest.ipv4_count(), (1 << 24) - (1 << 16));
        assert_eq!(
            rest.describe(10),
            "10.0.0.0/16, 10.2.0.0/15, 10.4.0.0/14, 10.8.0.0/13, 10.16.0.0/12, 10.32.0.0/11, 10.64.0.0/10, 10.128.0.0/9"
        );
        assert!(set(&["0.0.0.0/0"]).minus(&set(&["0.0.0.0/0"])).is_empty());
        let all6 = set(&["::/0"]).minus(&set(&["::/1"]));
        assert_eq!(all6.describe(2), "8000::/1");
        assert_eq!(set(&["::/0"]).describe(1), "::/0");
        let (_, bad) = AddrSet::from_strs(["nope", "10.0.0.0/33"]);
        assert_eq!(bad, ["nope", "10.0.0.0/33"]);
    }
}
