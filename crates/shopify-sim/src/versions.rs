//! Admin API versions: parsing `YYYY-MM` / `unstable`, the "fall forward"
//! rule, and which schema features a version has.
//!
//! Shopify releases one version per quarter, supports each for at least 12
//! months and, when asked for a version it no longer supports, serves the
//! oldest supported one instead and says so in `X-Shopify-Api-Version`
//! (fact sheet §1, docs/src/shopify/api-versions.md).

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// A fixed set of versions for reproducible tests: what
/// [`super::SimConfig::default`] serves, so a test means the same next year.
/// The `shopify-sim` binary serves [`calendar`] unless `--api-versions` pins
/// a set.
pub const DEFAULT_VERSIONS: &[&str] = &[
    "2025-01", "2025-04", "2025-07", "2025-10", "2026-01", "2026-04", "2026-07", "2026-10", "unstable",
];

/// One Admin API version. `Unstable` sorts after every stable version, which
/// is what makes feature checks like `>= 2025-10` work for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// A quarterly release, e.g. `2025-10`.
    Stable {
        /// Four-digit year.
        year: u16,
        /// 1, 4, 7 or 10.
        month: u8,
    },
    /// The `unstable` preview version.
    Unstable,
}

impl ApiVersion {
    /// Parses `YYYY-MM` (quarter months only) or `unstable`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "unstable" {
            return Some(Self::Unstable);
        }
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: u16 = y.parse().ok()?;
        let month: u8 = m.parse().ok()?;
        matches!(month, 1 | 4 | 7 | 10).then_some(Self::Stable { year, month })
    }

    const fn stable(year: u16, month: u8) -> Self {
        Self::Stable { year, month }
    }

    /// `ShopPlan.publicDisplayName` exists from 2025-07 (and `displayName` is
    /// deprecated from then on).
    pub fn has_public_display_name(self) -> bool {
        self >= Self::stable(2025, 7)
    }

    /// `filter` on webhook subscriptions and their inputs exists from 2024-07
    /// ([C] changelog "Webhook subscriptions now support filters").
    pub fn has_subscription_filter(self) -> bool {
        self >= Self::stable(2024, 7)
    }

    /// `name` on webhook subscriptions and their inputs exists from 2026-04
    /// ([C] changelog "Webhook subscriptions now support a name field").
    pub fn has_subscription_name(self) -> bool {
        self >= Self::stable(2026, 4)
    }

    /// The `appUninstall` mutation exists from 2025-07 (shopify.dev lists
    /// it from that version on; earlier schemas do not have it).
    pub fn has_app_uninstall(self) -> bool {
        self >= Self::stable(2025, 7)
    }
}

/// The versions Shopify serves on `today` by its calendar: each stable
/// version from its release (the first day of its quarter month) until 12
/// months later, the minimum support window, plus `unstable`. Release
/// candidates (the next quarter's version, served early) are not modelled.
pub fn calendar(today: NaiveDate) -> Vec<String> {
    let months = |y: i32, m: u32| y * 12 + m as i32 - 1;
    let now = months(today.year(), today.month());
    let mut served: Vec<String> = (now - 11..=now)
        .filter(|n| n % 3 == 0)
        .map(|n| format!("{:04}-{:02}", n / 12, n % 12 + 1))
        .collect();
    served.push("unstable".into());
    served
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stable { year, month } => write!(f, "{year:04}-{month:02}"),
            Self::Unstable => f.write_str("unstable"),
        }
    }
}

/// Version-dependent parts of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Features {
    /// `uri` replaces `callbackUrl`/`endpoint`, and the dedicated Pub/Sub and
    /// EventBridge mutations are deprecated.
    pub uri: bool,
    pub public_display_name: bool,
    /// `filter` on `WebhookSubscription` and the subscription inputs.
    pub filter: bool,
    /// `metafields` on `WebhookSubscription` and the subscription inputs.
    pub metafields: bool,
    /// `name` on `WebhookSubscription` and the subscription inputs.
    pub name: bool,
    /// The `appUninstall` mutation.
    pub app_uninstall: bool,
}

/// The first version with `uri` unless configured otherwise: the fact sheet
/// confirms `uri` in 2025-10; whether 2025-04/2025-07 accept it is [U].
pub const DEFAULT_URI_SINCE: &str = "2025-10";

/// The first version with `metafields` on webhook subscriptions unless
/// configured otherwise: present in 2025-04 and absent in 2024-07 on
/// shopify.dev; 2024-10 and 2025-01 are [U], so they do without.
pub const DEFAULT_METAFIELDS_SINCE: &str = "2025-04";

/// The versions a simulator instance serves.
#[derive(Debug, Clone)]
pub(crate) struct VersionTable {
    supported: Vec<ApiVersion>,
    uri_since: ApiVersion,
    metafields_since: ApiVersion,
}

impl VersionTable {
    /// The default `uri` switch-over, for tests.
    #[cfg(test)]
    pub fn new<S: AsRef<str>>(versions: &[S]) -> Result<Self, String> {
        Self::with_uri_since(versions, DEFAULT_URI_SINCE)
    }

    /// Fails on the first entry that is not a valid version, so a typo in a
    /// configuration is reported instead of silently shrinking the table.
    /// `uri_since` is the first version whose `WebhookSubscription` has `uri`
    /// instead of `callbackUrl`/`endpoint`.
    pub fn with_uri_since<S: AsRef<str>>(versions: &[S], uri_since: &str) -> Result<Self, String> {
        let uri_since =
            ApiVersion::parse(uri_since).ok_or_else(|| format!("invalid API version {uri_since:?}"))?;
        let mut supported = Vec::with_capacity(versions.len());
        for v in versions {
            let v = v.as_ref();
            supported.push(ApiVersion::parse(v).ok_or_else(|| format!("invalid API version {v:?}"))?);
        }
        supported.sort();
        supported.dedup();
        if supported.is_empty() {
            return Err("no API versions configured".into());
        }
        let metafields_since = ApiVersion::parse(DEFAULT_METAFIELDS_SINCE).expect("a valid version");
        Ok(Self {
            supported,
            uri_since,
            metafields_since,
        })
    }

    /// Sets the first version whose webhook subscriptions have `metafields`.
    pub fn with_metafields_since(mut self, since: &str) -> Result<Self, String> {
        self.metafields_since =
            ApiVersion::parse(since).ok_or_else(|| format!("invalid API version {since:?}"))?;
        Ok(self)
    }

    /// The schema variant `v` is served with; versions with the same
    /// features share one compiled schema.
    pub fn features(&self, v: ApiVersion) -> Features {
        Features {
            uri: v >= self.uri_since,
            public_display_name: v.has_public_display_name(),
            filter: v.has_subscription_filter(),
            metafields: v >= self.metafields_since,
            name: v.has_subscription_name(),
            app_uninstall: v.has_app_uninstall(),
        }
    }

    /// All supported versions, oldest first.
    pub fn all(&self) -> &[ApiVersion] {
        &self.supported
    }

    /// The version that serves a request for `requested`: itself if
    /// supported, else the next newer supported stable version (Shopify's
    /// fall-forward). `None` — answered 404 — for malformed names and for
    /// versions newer than any we know ([U]: Shopify's answer for a future
    /// version is not documented).
    pub fn resolve(&self, requested: &str) -> Option<ApiVersion> {
        let v = ApiVersion::parse(requested)?;
        if v == ApiVersion::Unstable {
            return self.supported.contains(&v).then_some(v);
        }
        self.supported
            .iter()
            .copied()
            .find(|s| *s >= v && *s != ApiVersion::Unstable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quarters_and_unstable_only() {
        assert_eq!(ApiVersion::parse("2025-10"), Some(ApiVersion::stable(2025, 10)));
        assert_eq!(ApiVersion::parse("unstable"), Some(ApiVersion::Unstable));
        for bad in ["2025-02", "2025-1", "25-01", "latest", "2025-10-01", ""] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
        assert_eq!(ApiVersion::stable(2025, 1).to_string(), "2025-01");
    }

    #[test]
    fn old_versions_fall_forward_and_future_ones_do_not_exist() {
        let t = VersionTable::new(DEFAULT_VERSIONS).unwrap();
        assert_eq!(t.resolve("2024-04").unwrap().to_string(), "2025-01");
        assert_eq!(t.resolve("2025-07").unwrap().to_string(), "2025-07");
        assert_eq!(t.resolve("unstable"), Some(ApiVersion::Unstable));
        assert_eq!(t.resolve("2027-01"), None);
        assert_eq!(t.resolve("2025-13"), None);
        let gap = VersionTable::new(&["2025-01", "2025-10"]).unwrap();
        assert_eq!(gap.resolve("2025-04").unwrap().to_string(), "2025-10");
        assert_eq!(gap.resolve("unstable"), None);
    }

    #[test]
    fn the_calendar_serves_each_version_for_twelve_months_from_its_release() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            calendar(day(2026, 12, 2)),
            ["2026-01", "2026-04", "2026-07", "2026-10", "unstable"]
        );
        // Released on the first day of its month; gone 12 months later.
        assert_eq!(
            calendar(day(2026, 10, 1)),
            ["2026-01", "2026-04", "2026-07", "2026-10", "unstable"]
        );
        assert_eq!(
            calendar(day(2026, 9, 30)),
            ["2025-10", "2026-01", "2026-04", "2026-07", "unstable"]
        );
        assert_eq!(
            calendar(day(2027, 1, 1)),
            ["2026-04", "2026-07", "2026-10", "2027-01", "unstable"]
        );
        // Today's truth: a shop pinned to 2025-07 is served 2026-01.
        let t = VersionTable::new(&calendar(day(2026, 12, 2))).unwrap();
        assert_eq!(t.resolve("2025-07").unwrap().to_string(), "2026-01");
        assert_eq!(t.resolve("2027-01"), None);
    }

    #[test]
    fn features_switch_at_the_documented_versions() {
        let v = |s| ApiVersion::parse(s).unwrap();
        let t = VersionTable::new(DEFAULT_VERSIONS).unwrap();
        assert!(!t.features(v("2025-07")).uri);
        assert!(t.features(v("2025-10")).uri);
        assert!(t.features(v("unstable")).uri);
        let early = VersionTable::with_uri_since(DEFAULT_VERSIONS, "2025-04").unwrap();
        assert!(early.features(v("2025-04")).uri);
        assert!(!early.features(v("2025-01")).uri);
        assert!(!v("2025-04").has_public_display_name());
        assert!(v("2025-07").has_public_display_name());
        assert!(!v("2024-04").has_subscription_filter());
        assert!(v("2024-07").has_subscription_filter());
        assert!(!t.features(v("2025-01")).metafields);
        assert!(t.features(v("2025-04")).metafields);
        assert!(!t.features(v("2026-01")).name);
        assert!(t.features(v("2026-04")).name);
        assert!(t.features(v("unstable")).name);
        assert!(!t.features(v("2025-04")).app_uninstall);
        assert!(t.features(v("2025-07")).app_uninstall);
        let late = VersionTable::new(DEFAULT_VERSIONS)
            .unwrap()
            .with_metafields_since("2025-07")
            .unwrap();
        assert!(!late.features(v("2025-04")).metafields);
        assert!(late.features(v("2025-07")).metafields);
    }
}
