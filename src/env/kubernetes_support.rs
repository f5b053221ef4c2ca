//! The Kubernetes version policy of the environments' EKS clusters: a minor version past
//! its end of standard support on EKS is refused, one within [`WARN_DAYS`] of it is a
//! warning, and the tiers' clusters differ by at most one minor (what runs in prod was run
//! in dev or staging first, and every cluster is one EKS upgrade from the next).
//!
//! The dates are a table in code, [`EKS_STANDARD_SUPPORT`], from the Amazon EKS Kubernetes
//! release calendar ([`SOURCE`]): a new minor needs its row before an environment may use
//! it. Past standard support EKS keeps a version 12 more months in extended support, at
//! six times the cluster-hour price, then upgrades it by itself.

use std::time::{SystemTime, UNIX_EPOCH};

/// Where [`EKS_STANDARD_SUPPORT`] comes from.
pub const SOURCE: &str = "Amazon EKS Kubernetes release calendar, https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html (read 2026-12-04)";

/// Days before the end of standard support from which a version is a warning.
pub const WARN_DAYS: i64 = 90;

/// A calendar date (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day, 1..=31.
    pub day: u32,
}

impl Date {
    /// A date; `const` for the table.
    pub const fn new(year: i32, month: u32, day: u32) -> Date {
        Date { year, month, day }
    }

    /// Days since 1970-01-01 (proleptic Gregorian; Howard Hinnant's `days_from_civil`).
    pub fn days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // The ranges above keep month in 1..=12 and day in 1..=31; years fit i32 for any
        // clock this runs on.
        Date::new(
            i32::try_from(year).unwrap_or(i32::MAX),
            u32::try_from(month).unwrap_or(1),
            u32::try_from(day).unwrap_or(1),
        )
    }

    /// Today, from the system clock (UTC).
    pub fn today() -> Date {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Date::from_days(i64::try_from(secs / 86_400).unwrap_or(0))
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// One minor version's support on EKS.
#[derive(Debug, Clone, Copy)]
pub struct Support {
    /// `"1.35"`.
    pub minor: &'static str,
    /// Last day of standard support.
    pub standard_end: Date,
    /// Last day of extended support (then EKS upgrades the cluster itself).
    pub extended_end: Date,
}

/// End of standard and extended support per minor version on EKS ([`SOURCE`]).
pub const EKS_STANDARD_SUPPORT: &[Support] = &[
    Support {
        minor: "1.33",
        standard_end: Date::new(2026, 7, 29),
        extended_end: Date::new(2027, 7, 29),
    },
    Support {
        minor: "1.34",
        standard_end: Date::new(2026, 12, 2),
        extended_end: Date::new(2027, 12, 2),
    },
    Support {
        minor: "1.35",
        standard_end: Date::new(2027, 3, 27),
        extended_end: Date::new(2028, 3, 27),
    },
];

/// Where a version stands on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// In standard support for more than [`WARN_DAYS`].
    Supported,
    /// Standard support ends within [`WARN_DAYS`] (a warning).
    EndsSoon(Date),
    /// Past its end of standard support (an error).
    Ended(Date),
    /// Not in the table (an error: keel cannot vouch for it).
    Unknown,
}

/// The status of `minor` on `today`.
pub fn status(minor: &str, today: Date) -> Status {
    let Some(row) = EKS_STANDARD_SUPPORT.iter().find(|s| s.minor == minor) else {
        return Status::Unknown;
    };
    let left = row.standard_end.days() - today.days();
    if left < 0 {
        Status::Ended(row.standard_end)
    } else if left <= WARN_DAYS {
        Status::EndsSoon(row.standard_end)
    } else {
        Status::Supported
    }
}

/// The error for `minor` on `today`, if any (see [`status`]).
pub fn problem(minor: &str, today: Date) -> Option<String> {
    let supported = || {
        EKS_STANDARD_SUPPORT
            .iter()
            .filter(|s| s.standard_end >= today)
            .map(|s| format!("{} (until {})", s.minor, s.standard_end))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match status(minor, today) {
        Status::Ended(end) => Some(format!(
            "Kubernetes {minor} left EKS standard support on {end} (extended support costs six times the cluster-hour price, and EKS upgrades the cluster itself when it ends): expected a version in standard support on {today}: {}; source: {SOURCE}",
            supported()
        )),
        Status::Unknown => Some(format!(
            "Kubernetes {minor} has no row in keel's EKS support table (src/env/kubernetes_support.rs): expected one of {}, or add its dates from {SOURCE}",
            supported()
        )),
        Status::Supported | Status::EndsSoon(_) => None,
    }
}

/// The warning for `minor` on `today`, if its standard support ends within [`WARN_DAYS`].
pub fn warning(minor: &str, today: Date) -> Option<String> {
    match status(minor, today) {
        Status::EndsSoon(end) => Some(format!(
            "Kubernetes {minor} leaves EKS standard support on {end}, {} days from {today}: upgrade the cluster one minor before then ({SOURCE})",
            end.days() - today.days()
        )),
        _ => None,
    }
}

/// The minor number of `"1.35"` (35).
fn minor_number(version: &str) -> Option<u32> {
    version.strip_prefix("1.")?.parse().ok()
}

/// The error when the clusters of the tiers differ by more than one minor: `versions` are
/// (environment, tier, version) of every environment with a cluster.
pub fn skew_problem(versions: &[(&str, super::Tier, &str)]) -> Option<String> {
    let numbered: Vec<(&str, super::Tier, &str, u32)> = versions
        .iter()
        .filter_map(|(env, tier, v)| minor_number(v).map(|n| (*env, *tier, *v, n)))
        .collect();
    let low = numbered.iter().min_by_key(|(.., n)| *n)?;
    let high = numbered.iter().max_by_key(|(.., n)| *n)?;
    (high.3 - low.3 > 1).then(|| {
        format!(
            "the environments' clusters differ by {} minor versions ({} runs Kubernetes {}, {} runs {}): expected at most one minor between tiers, so each cluster is one EKS upgrade from the next and prod runs what dev or staging ran",
            high.3 - low.3,
            low.0,
            low.2,
            high.0,
            high.2
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Tier;

    const TODAY: Date = Date::new(2026, 12, 4);

    #[test]
    fn dates_round_trip_and_count_days() {
        assert_eq!(Date::new(1970, 1, 1).days(), 0);
        assert_eq!(
            Date::new(2026, 12, 4).days() - Date::new(2026, 12, 2).days(),
            2
        );
        assert_eq!(
            Date::new(2027, 3, 1).days() - Date::new(2027, 2, 28).days(),
            1
        );
        for d in [0, 59, 365, 20_000, 20_791, 21_000] {
            assert_eq!(Date::from_days(d).days(), d);
        }
        assert_eq!(Date::from_days(20_791).to_string(), "2026-12-04");
    }

    #[test]
    fn the_versions_of_2026_12_04() {
        // 1.33 and 1.34 are past standard support; 1.35 is in it until 2027-03-27, 113
        // days away; 1.36 has no row.
        assert_eq!(status("1.33", TODAY), Status::Ended(Date::new(2026, 7, 29)));
        assert_eq!(status("1.34", TODAY), Status::Ended(Date::new(2026, 12, 2)));
        assert_eq!(status("1.35", TODAY), Status::Supported);
        assert_eq!(status("1.36", TODAY), Status::Unknown);
        assert!(
            problem("1.34", TODAY)
                .unwrap()
                .contains("1.35 (until 2027-03-27)")
        );
        assert!(problem("1.35", TODAY).is_none());
    }

    #[test]
    fn a_warning_90_days_before_the_end_then_an_error() {
        let end = Date::new(2027, 3, 27);
        let warn_from = Date::from_days(end.days() - WARN_DAYS);
        assert_eq!(warn_from, Date::new(2026, 12, 27));
        let day_before = Date::from_days(warn_from.days() - 1);
        assert_eq!(warning("1.35", day_before), None);
        assert!(warning("1.35", warn_from).unwrap().contains("90 days"));
        assert_eq!(problem("1.35", end), None);
        assert!(problem("1.35", Date::from_days(end.days() + 1)).is_some());
    }

    #[test]
    fn tiers_differ_by_at_most_one_minor() {
        let failing = [
            ("dev", Tier::Dev, "1.35"),
            ("staging", Tier::Staging, "1.34"),
            ("prod", Tier::Prod, "1.33"),
        ];
        let message = skew_problem(&failing).unwrap();
        assert!(
            message
                .contains("differ by 2 minor versions (prod runs Kubernetes 1.33, dev runs 1.35)")
        );
        let passing = [
            ("dev", Tier::Dev, "1.35"),
            ("staging", Tier::Staging, "1.35"),
            ("prod", Tier::Prod, "1.34"),
        ];
        assert_eq!(skew_problem(&passing), None);
        assert_eq!(skew_problem(&[]), None);
    }
}
