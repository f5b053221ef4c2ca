//! The connection limits that configuration may change ([`ServeLimits`]): each one has a
//! contract variable, a flag (which wins over the variable), a range, and its default in
//! [`ServeLimits::default`].

use std::ops::RangeInclusive;
use std::time::Duration;

use keel_workload_contract::{self as contract, EnvVar};

use crate::server::ServeLimits;

/// One configurable limit of [`ServeLimits`].
#[derive(Debug)]
pub struct Limit {
    /// The contract variable that sets it.
    pub var: &'static EnvVar,
    /// The flag that sets it, over the variable.
    pub flag: &'static str,
    /// Accepted values.
    pub range: RangeInclusive<u64>,
    /// Unit of the values, plural (`bytes`, `seconds`, ...).
    pub unit: &'static str,
    get: fn(&ServeLimits) -> u64,
    set: fn(&mut ServeLimits, u64),
}

/// Every configurable limit, in the contract's order.
pub const LIMITS: [Limit; 6] = [
    Limit {
        var: &contract::HTTP_MAX_CONNECTIONS,
        flag: "--max-connections",
        range: 1..=65_536,
        unit: "connections",
        get: |l| l.max_connections as u64,
        set: |l, n| l.max_connections = n as usize,
    },
    Limit {
        var: &contract::METRICS_MAX_CONNECTIONS,
        flag: "--max-metrics-connections",
        range: 1..=4_096,
        unit: "connections",
        get: |l| l.max_metrics_connections as u64,
        set: |l, n| l.max_metrics_connections = n as usize,
    },
    Limit {
        var: &contract::HTTP_MAX_HEADER_BYTES,
        flag: "--max-header-bytes",
        // hyper needs room for a request line and a few headers; 1 MiB is far beyond any
        // bearer token.
        range: 1_024..=1 << 20,
        unit: "bytes",
        get: |l| l.max_header_bytes as u64,
        set: |l, n| l.max_header_bytes = n as usize,
    },
    Limit {
        var: &contract::HTTP_MAX_UNFINISHED_HEADS,
        flag: "--max-unfinished-heads",
        range: 1..=65_536,
        unit: "connections",
        get: |l| l.max_unfinished_heads as u64,
        set: |l, n| l.max_unfinished_heads = n as usize,
    },
    Limit {
        var: &contract::HTTP_SHED_AFTER_MS,
        flag: "--shed-after-ms",
        range: 100..=60_000,
        unit: "milliseconds",
        get: |l| l.shed_after.as_millis() as u64,
        set: |l, n| l.shed_after = Duration::from_millis(n),
    },
    Limit {
        var: &contract::HTTP_HEADER_READ_TIMEOUT_SECS,
        flag: "--header-read-timeout-secs",
        range: 1..=300,
        unit: "seconds",
        get: |l| l.header_read_timeout.as_secs(),
        set: |l, n| l.header_read_timeout = Duration::from_secs(n),
    },
];

/// Limits are equal when they set the same variable.
impl PartialEq for Limit {
    fn eq(&self, other: &Self) -> bool {
        self.var.name == other.var.name
    }
}

impl Eq for Limit {}

impl Limit {
    /// The value of `text`, or what is expected instead.
    pub fn parse(&self, text: &str) -> Result<u64, String> {
        match text.trim().parse::<u64>() {
            Ok(n) if self.range.contains(&n) => Ok(n),
            _ => Err(format!(
                "a whole number of {} from {} to {}",
                self.unit,
                self.range.start(),
                self.range.end()
            )),
        }
    }

    /// The value in `limits`.
    pub fn get(&self, limits: &ServeLimits) -> u64 {
        (self.get)(limits)
    }

    /// Sets the value in `limits` (one [`Limit::parse`] accepted).
    pub fn set(&self, limits: &mut ServeLimits, value: u64) {
        (self.set)(limits, value);
    }

    /// The limit a flag sets, if it is one of them.
    pub fn of_flag(flag: &str) -> Option<&'static Limit> {
        LIMITS.iter().find(|l| l.flag == flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each variable's description states the default the binary uses, and each default
    /// is accepted by its own range.
    #[test]
    fn descriptions_state_the_defaults() {
        let defaults = ServeLimits::default();
        for limit in &LIMITS {
            let n = limit.get(&defaults);
            assert!(limit.range.contains(&n), "{}", limit.var.name);
            assert!(
                limit.var.description.contains(&format!("({n} when unset)")),
                "{}: {}",
                limit.var.name,
                limit.var.description
            );
            assert!(contract::ENV_VARS.contains(limit.var));
            let mut set = defaults;
            limit.set(&mut set, *limit.range.end());
            assert_eq!(limit.get(&set), *limit.range.end(), "{}", limit.var.name);
        }
    }

    #[test]
    fn values_outside_the_range_are_refused_with_what_is_expected() {
        let header = Limit::of_flag("--max-header-bytes").expect("a limit");
        assert_eq!(header.parse(" 4096 "), Ok(4096));
        for bad in ["", "512", "2000000", "16k", "-1"] {
            assert_eq!(
                header.parse(bad),
                Err("a whole number of bytes from 1024 to 1048576".into()),
                "{bad:?}"
            );
        }
        assert!(Limit::of_flag("--bogus").is_none());
    }
}
