//! The Kubernetes version policy of the environments' EKS clusters: a minor version past
//! its end of standard support on EKS is refused unless the environment opted in to
//! extended support (`kubernetes.support: extended`: then a warning that states the cost),
//! one past extended support is always refused, one within [`WARN_DAYS`] of the end of
//! standard support is a warning, and the tiers' clusters differ by at most one minor
//! (what runs in prod was run in dev or staging first). A cluster moves one minor up per
//! change and never down ([`step_problem`]; `keel diff` and `keel preflight` check it).
//!
//! The dates are a table in code, [`EKS_STANDARD_SUPPORT`], from the Amazon EKS Kubernetes
//! release calendar ([`SOURCE`]): a new minor needs its row before an environment may use
//! it. Past standard support EKS keeps a version 12 more months in extended support, at
//! six times the cluster-hour price, then upgrades it by itself. The day the table is read
//! on is [`today`]: the clock, or `KEEL_TODAY` (tests pin it).

use std::time::{SystemTime, UNIX_EPOCH};

use super::file::KubernetesSupport;

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

    /// The date of `text` written `YYYY-MM-DD` (a real calendar day), else `None`.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if parts.next().is_some() || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
            return None;
        }
        let date = Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        // 2026-02-30 counts as 2026-03-02: only a day that round-trips exists.
        (date.month >= 1 && date.day >= 1 && Date::from_days(date.days()) == date).then_some(date)
    }

    /// Today, from the system clock (UTC); see [`today`] for the date checks use.
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
    /// Past its end of standard support (the date), still in extended support: an error
    /// unless the environment opted in to extended support, then a warning with the cost.
    Ended(Date),
    /// Past its end of extended support (the date): EKS upgrades the cluster itself; always
    /// an error.
    Retired(Date),
    /// Not in the table (an error: keel cannot vouch for it).
    Unknown,
}

/// The status of `minor` on `today`.
pub fn status(minor: &str, today: Date) -> Status {
    let Some(row) = row(minor) else {
        return Status::Unknown;
    };
    let left = row.standard_end.days() - today.days();
    if today > row.extended_end {
        Status::Retired(row.extended_end)
    } else if left < 0 {
        Status::Ended(row.standard_end)
    } else if left <= WARN_DAYS {
        Status::EndsSoon(row.standard_end)
    } else {
        Status::Supported
    }
}

fn row(minor: &str) -> Option<&'static Support> {
    EKS_STANDARD_SUPPORT.iter().find(|s| s.minor == minor)
}

/// The cluster-hour prices of standard and extended support (us-east-1 list prices from
/// [`crate::cost::prices`]; EKS charges the same in every commercial region), and what they
/// come to in a month.
fn prices() -> String {
    let p = &crate::cost::prices::US_EAST_1;
    let month = crate::cost::prices::HOURS_PER_MONTH;
    format!(
        "${:.2} instead of ${:.2} per cluster-hour ({} instead of {} a month)",
        p.eks_cluster_extended_hourly,
        p.eks_cluster_hourly,
        crate::cost::usd(p.eks_cluster_extended_hourly * month),
        crate::cost::usd(p.eks_cluster_hourly * month),
    )
}

/// The next minor after `minor` (`1.34` → `1.35`), if it parses.
fn next_minor(minor: &str) -> Option<String> {
    minor_number(minor).map(|n| format!("1.{}", n + 1))
}

/// The error for `minor` under `support` on `today`, if any (see [`status`]). It is placed
/// at `kubernetes.version` and says what to do.
pub fn problem(minor: &str, support: KubernetesSupport, today: Date) -> Option<String> {
    let supported = || {
        EKS_STANDARD_SUPPORT
            .iter()
            .filter(|s| s.standard_end >= today)
            .map(|s| format!("{} (until {})", s.minor, s.standard_end))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let upgrade = || {
        next_minor(minor).map_or_else(String::new, |n| {
            format!("upgrade the cluster one minor (kubernetes.version: \"{n}\", with the kube_proxy add-on of {n}), ")
        })
    };
    match (status(minor, today), support) {
        (Status::Ended(end), KubernetesSupport::Standard) => Some(format!(
            "Kubernetes {minor} left EKS standard support on {end}: {}or opt in to extended support with kubernetes.support: extended (until {}, at {}); versions in standard support on {today}: {}; source: {SOURCE}",
            upgrade(),
            row(minor).map_or(end, |r| r.extended_end),
            prices(),
            supported()
        )),
        (Status::Retired(end), _) => Some(format!(
            "Kubernetes {minor} left EKS extended support on {end}, after which EKS upgrades the cluster by itself: {}one minor per change, until a version in standard support on {today}: {}; source: {SOURCE}",
            upgrade(),
            supported()
        )),
        (Status::Unknown, _) => Some(format!(
            "Kubernetes {minor} has no row in keel's EKS support table (src/env/kubernetes_support.rs): expected one of {}, or add its dates from {SOURCE}",
            supported()
        )),
        _ => None,
    }
}

/// The warning for `minor` under `support` on `today`, if any: standard support ends
/// within [`WARN_DAYS`], or the cluster runs in extended support (with its cost). The
/// caller names the file and key (`kubernetes.version`).
pub fn warning(minor: &str, support: KubernetesSupport, today: Date) -> Option<String> {
    match (status(minor, today), support) {
        (Status::EndsSoon(end), _) => Some(format!(
            "Kubernetes {minor} leaves EKS standard support on {end}, {} days from {today}: upgrade the cluster one minor before then ({SOURCE})",
            end.days() - today.days()
        )),
        (Status::Ended(end), KubernetesSupport::Extended) => Some(format!(
            "Kubernetes {minor} is in EKS extended support since {end} (kubernetes.support: extended), until {}: the cluster costs {}; upgrade it one minor{} and set kubernetes.support back to standard ({SOURCE})",
            row(minor).map_or(end, |r| r.extended_end),
            prices(),
            next_minor(minor)
                .map_or_else(String::new, |n| format!(" (kubernetes.version: \"{n}\")")),
        )),
        _ => None,
    }
}

/// The date a check of support runs on: a date pinned in this process ([`pin_today`]),
/// else `KEEL_TODAY` ([`TODAY_VARIABLE`], `YYYY-MM-DD`) when it is set, else the system
/// clock (UTC). Tests pin it, so that a check of the repository's environments does not
/// start failing on a later day; a value that is no date is an error, never ignored.
pub fn today() -> Result<Date, String> {
    if let Some(d) = PINNED.get() {
        return Ok(*d);
    }
    today_from(std::env::var(TODAY_VARIABLE), Date::today)
}

/// [`today`] from the variable's value and the clock.
fn today_from(
    variable: Result<String, std::env::VarError>,
    clock: impl FnOnce() -> Date,
) -> Result<Date, String> {
    match variable {
        Ok(v) => Date::parse(&v).ok_or_else(|| {
            format!("{TODAY_VARIABLE} is set to {v:?}: expected a date as YYYY-MM-DD (the day support of Kubernetes versions is judged on), or unset it to use the clock")
        }),
        Err(std::env::VarError::NotPresent) => Ok(clock()),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "{TODAY_VARIABLE} is not UTF-8: expected a date as YYYY-MM-DD, or unset it to use the clock"
        )),
    }
}

/// The day the repository's environment files were last judged against the table: tests
/// pin [`today`] to it (and set `KEEL_TODAY` to it for the binary), so they pass on any
/// later day. Move it forward when the table or the files' versions change.
pub const TESTED_ON: Date = Date::new(2026, 12, 4);

/// The date [`pin_today`] fixed, if any.
static PINNED: std::sync::OnceLock<Date> = std::sync::OnceLock::new();

/// Fixes the date [`today`] returns in this process, over `KEEL_TODAY` and the clock: for
/// tests that run keel in process (a test that starts the binary sets `KEEL_TODAY`). The
/// first pin wins; keel itself never pins.
pub fn pin_today(date: Date) {
    let _ = PINNED.set(date);
}

/// The environment variable that overrides the clock for [`today`].
pub const TODAY_VARIABLE: &str = "KEEL_TODAY";

/// The minor number of `"1.35"` (35).
fn minor_number(version: &str) -> Option<u32> {
    version.strip_prefix("1.")?.parse().ok()
}

/// The problem with moving one cluster from minor `from` to minor `to` (`"1.33"`), with
/// the way there: EKS upgrades a cluster one minor per update and never downgrades it, so
/// an apply that skips a minor or goes down fails. `None` for the same version, one minor
/// up, or a version that does not parse (the schema refuses those).
pub fn step_problem(from: &str, to: &str) -> Option<String> {
    let (a, b) = (minor_number(from)?, minor_number(to)?);
    if b < a {
        Some(format!(
            "Kubernetes {from} -> {to} is a downgrade, which EKS cannot do: keep kubernetes.version at \"{from}\" (a lower version needs a new cluster)"
        ))
    } else if b > a + 1 {
        let minor = |n: u32| format!("1.{n}");
        let skipped: Vec<String> = (a + 1..b).map(minor).collect();
        let steps: Vec<String> = (a + 1..=b).map(minor).collect();
        Some(format!(
            "Kubernetes {from} -> {to} skips {}: EKS upgrades a cluster one minor per update, so apply one change per minor: {} (each with the kube_proxy add-on of its minor)",
            skipped.join(" and "),
            steps.join(", then ")
        ))
    } else {
        None
    }
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
    const STANDARD: KubernetesSupport = KubernetesSupport::Standard;
    const EXTENDED: KubernetesSupport = KubernetesSupport::Extended;

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
    fn dates_parse_only_as_real_calendar_days() {
        assert_eq!(Date::parse("2026-12-04"), Some(TODAY));
        assert_eq!(Date::parse("2028-02-29"), Some(Date::new(2028, 2, 29)));
        for bad in [
            "",
            "2026-12-4",
            "2026-13-01",
            "2026-00-10",
            "2026-02-30",
            "2027-02-29",
            "2026-12-04x",
            "2026-12-04-01",
            "26-12-04",
            "2026/12/04",
            "+026-12-04",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keel_today_overrides_the_clock_and_must_be_a_date() {
        let clock = || Date::new(2030, 1, 1);
        let unset = Err(std::env::VarError::NotPresent);
        assert_eq!(today_from(unset, clock), Ok(Date::new(2030, 1, 1)));
        assert_eq!(today_from(Ok("2026-12-04".into()), clock), Ok(TODAY));
        let bad = today_from(Ok("04.12.2026".into()), clock).unwrap_err();
        assert_eq!(
            bad,
            "KEEL_TODAY is set to \"04.12.2026\": expected a date as YYYY-MM-DD (the day support of Kubernetes versions is judged on), or unset it to use the clock"
        );
    }

    #[test]
    fn the_versions_of_2026_12_04() {
        // 1.33 and 1.34 are past standard support, in extended support; 1.35 is in
        // standard support until 2027-03-27, 113 days away; 1.36 has no row.
        assert_eq!(status("1.33", TODAY), Status::Ended(Date::new(2026, 7, 29)));
        assert_eq!(status("1.34", TODAY), Status::Ended(Date::new(2026, 12, 2)));
        assert_eq!(status("1.35", TODAY), Status::Supported);
        assert_eq!(status("1.36", TODAY), Status::Unknown);
        let refused = problem("1.34", STANDARD, TODAY).unwrap();
        assert!(refused.contains("1.35 (until 2027-03-27)"), "{refused}");
        assert!(
            refused.contains("kubernetes.version: \"1.35\"")
                && refused.contains("kubernetes.support: extended (until 2027-12-02, at $0.60 instead of $0.10 per cluster-hour ($438.00 instead of $73.00 a month))"),
            "{refused}"
        );
        assert!(problem("1.35", STANDARD, TODAY).is_none());
    }

    #[test]
    fn extended_support_turns_the_error_into_a_warning_with_its_cost() {
        assert_eq!(problem("1.34", EXTENDED, TODAY), None);
        let w = warning("1.34", EXTENDED, TODAY).unwrap();
        assert!(
            w.starts_with("Kubernetes 1.34 is in EKS extended support since 2026-12-02 (kubernetes.support: extended), until 2027-12-02: the cluster costs $0.60 instead of $0.10 per cluster-hour ($438.00 instead of $73.00 a month); upgrade it one minor (kubernetes.version: \"1.35\")"),
            "{w}"
        );
        // Opting in changes nothing while the version is in standard support.
        assert_eq!(warning("1.35", EXTENDED, TODAY), None);
        assert_eq!(warning("1.34", STANDARD, TODAY), None);
    }

    #[test]
    fn past_extended_support_is_an_error_opted_in_or_not() {
        let end = Date::new(2027, 12, 2);
        assert_eq!(status("1.34", end), Status::Ended(Date::new(2026, 12, 2)));
        assert_eq!(problem("1.34", EXTENDED, end), None);
        let after = Date::from_days(end.days() + 1);
        assert_eq!(status("1.34", after), Status::Retired(end));
        for support in [STANDARD, EXTENDED] {
            let m = problem("1.34", support, after).unwrap();
            assert!(
                m.starts_with("Kubernetes 1.34 left EKS extended support on 2027-12-02"),
                "{m}"
            );
        }
        assert_eq!(warning("1.34", EXTENDED, after), None);
    }

    #[test]
    fn a_warning_90_days_before_the_end_then_an_error() {
        let end = Date::new(2027, 3, 27);
        let warn_from = Date::from_days(end.days() - WARN_DAYS);
        assert_eq!(warn_from, Date::new(2026, 12, 27));
        let day_before = Date::from_days(warn_from.days() - 1);
        assert_eq!(warning("1.35", STANDARD, day_before), None);
        assert!(
            warning("1.35", STANDARD, warn_from)
                .unwrap()
                .contains("90 days")
        );
        assert_eq!(problem("1.35", STANDARD, end), None);
        assert!(problem("1.35", STANDARD, Date::from_days(end.days() + 1)).is_some());
    }

    #[test]
    fn a_cluster_moves_one_minor_up_at_a_time() {
        assert_eq!(step_problem("1.33", "1.33"), None);
        assert_eq!(step_problem("1.33", "1.34"), None);
        assert_eq!(
            step_problem("1.33", "1.35").unwrap(),
            "Kubernetes 1.33 -> 1.35 skips 1.34: EKS upgrades a cluster one minor per update, so apply one change per minor: 1.34, then 1.35 (each with the kube_proxy add-on of its minor)"
        );
        assert_eq!(
            step_problem("1.35", "1.34").unwrap(),
            "Kubernetes 1.35 -> 1.34 is a downgrade, which EKS cannot do: keep kubernetes.version at \"1.35\" (a lower version needs a new cluster)"
        );
        assert_eq!(step_problem("1.33", "x"), None);
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
