//! The subscription timeline: per shop, every webhook subscription that
//! started or stopped existing, in the order it happened, with the app that
//! owned it — and pure functions that measure it.
//!
//! It exists so that a test can prove a hand-over of a shop from one app to
//! another loses no webhooks: [`uncovered`] is the time nobody was
//! subscribed to a topic at an address, [`overlap`] the time two apps both
//! were (duplicate deliveries). An update that moves a subscription to
//! another topic or address is recorded as the old pair deleted and the new
//! one created at the same instant; updates of filters or fields are not
//! recorded, as they change neither.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// Whether a subscription started or stopped existing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// Created (by the API, a fixture, the admin API, or an update that
    /// moved it to this topic and address).
    Created,
    /// Deleted (by the API, an uninstall, the simulator's handle, or an
    /// update that moved it away from this topic and address).
    Deleted,
}

/// One start or end of a subscription's life at one topic and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// When it happened (RFC 3339 with microseconds in JSON).
    #[serde(serialize_with = "ser_at", deserialize_with = "de_at")]
    pub at: SystemTime,
    /// The owning app's client id (resolved when it happened).
    pub client_id: String,
    /// `gid://shopify/WebhookSubscription/N`.
    pub id: String,
    /// REST form, e.g. `orders/create`.
    pub topic: String,
    /// The delivery address as `uri` lists it.
    pub address: String,
    /// Created or deleted.
    pub change: Change,
}

/// RFC 3339 with microseconds: what a demo prints and a reader parses.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn ser_at<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*at))
}

fn de_at<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
    let text = String::deserialize(d)?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
        .map_err(serde::de::Error::custom)
}

/// The REST form of a topic given in either form, so callers may pass
/// `ORDERS_CREATE` or `orders/create`; unknown names compare as given.
fn rest_topic(topic: &str) -> &str {
    super::topics::lookup(topic).unwrap_or(topic)
}

fn at_pair<'a>(
    entries: &'a [TimelineEntry],
    topic: &str,
    address: &str,
) -> impl Iterator<Item = &'a TimelineEntry> {
    let topic = rest_topic(topic).to_owned();
    let address = address.to_owned();
    entries
        .iter()
        .filter(move |e| rest_topic(&e.topic) == topic && e.address == address)
}

/// Time from `a` to `b`, zero if the clock went backwards between entries.
fn span(a: SystemTime, b: SystemTime) -> Duration {
    b.duration_since(a).unwrap_or_default()
}

fn apply(live: &mut HashSet<String>, e: &TimelineEntry) {
    match e.change {
        Change::Created => {
            live.insert(e.id.clone());
        }
        Change::Deleted => {
            live.remove(&e.id);
        }
    }
}

/// Total time within `[from, until]` during which no subscription of any
/// app was live at `topic` + `address`. What was live at `from` is derived
/// from the entries before it, so a pair nobody had at `from` counts as
/// uncovered from `from` on. `entries` must be in the order they happened
/// (as [`crate::Sim::timeline`] returns them).
pub fn uncovered(
    entries: &[TimelineEntry],
    topic: &str,
    address: &str,
    from: SystemTime,
    until: SystemTime,
) -> Duration {
    if until <= from {
        return Duration::ZERO;
    }
    let mut live = HashSet::new();
    let mut total = Duration::ZERO;
    let mut cursor = from;
    for e in at_pair(entries, topic, address) {
        if e.at > cursor {
            let end = e.at.min(until);
            if live.is_empty() {
                total += span(cursor, end);
            }
            cursor = end;
        }
        if e.at >= until {
            // Entries at or after `until` cannot change the measured window.
            return total;
        }
        apply(&mut live, e);
    }
    if live.is_empty() {
        total += span(cursor, until);
    }
    total
}

/// Total time during which both apps `a` and `b` (client ids) had a live
/// subscription at `topic` + `address`; an interval still open counts up
/// to now. `entries` must be in the order they happened.
pub fn overlap(entries: &[TimelineEntry], topic: &str, address: &str, a: &str, b: &str) -> Duration {
    let (mut live_a, mut live_b) = (HashSet::new(), HashSet::new());
    let mut total = Duration::ZERO;
    let mut last: Option<SystemTime> = None;
    for e in at_pair(entries, topic, address) {
        if let Some(t) = last
            && !live_a.is_empty()
            && !live_b.is_empty()
        {
            total += span(t, e.at);
        }
        last = Some(last.map_or(e.at, |t| t.max(e.at)));
        if e.client_id == a {
            apply(&mut live_a, e);
        }
        if e.client_id == b {
            apply(&mut live_b, e);
        }
    }
    if let Some(t) = last
        && !live_a.is_empty()
        && !live_b.is_empty()
    {
        total += span(t, SystemTime::now());
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "orders/create";
    const ADDR: &str = "https://oms.example/webhooks/orders_create";

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn s(n: u64) -> SystemTime {
        t0() + Duration::from_secs(n)
    }

    fn e(at: u64, app: &str, id: u64, change: Change) -> TimelineEntry {
        TimelineEntry {
            at: s(at),
            client_id: app.into(),
            id: format!("gid://shopify/WebhookSubscription/{id}"),
            topic: T.into(),
            address: ADDR.into(),
            change,
        }
    }

    use Change::{Created, Deleted};

    #[test]
    fn a_gap_between_one_app_leaving_and_the_other_arriving_is_uncovered() {
        let entries = [
            e(10, "a", 1, Created),
            e(20, "a", 1, Deleted),
            e(25, "b", 2, Created),
        ];
        assert_eq!(
            uncovered(&entries, T, ADDR, s(0), s(30)),
            Duration::from_secs(10 + 5)
        );
        // From inside the first life: only the gap counts.
        assert_eq!(uncovered(&entries, T, ADDR, s(15), s(30)), Duration::from_secs(5));
        // The enum form of the topic names the same pair.
        assert_eq!(
            uncovered(&entries, "ORDERS_CREATE", ADDR, s(15), s(30)),
            Duration::from_secs(5)
        );
        // Another address was never covered at all.
        assert_eq!(
            uncovered(&entries, T, "https://elsewhere.example/", s(15), s(30)),
            Duration::from_secs(15)
        );
    }

    #[test]
    fn a_handover_that_creates_before_deleting_leaves_no_gap_but_overlaps() {
        let entries = [
            e(10, "a", 1, Created),
            e(20, "b", 2, Created),
            e(23, "a", 1, Deleted),
        ];
        assert_eq!(uncovered(&entries, T, ADDR, s(10), s(40)), Duration::ZERO);
        assert_eq!(overlap(&entries, T, ADDR, "a", "b"), Duration::from_secs(3));
        assert_eq!(overlap(&entries, T, ADDR, "b", "a"), Duration::from_secs(3));
    }

    #[test]
    fn an_open_overlap_counts_up_to_now() {
        let recent = SystemTime::now() - Duration::from_secs(5);
        let mut entries = [e(0, "a", 1, Created), e(0, "b", 2, Created)];
        entries[0].at = recent;
        entries[1].at = recent;
        let o = overlap(&entries, T, ADDR, "a", "b");
        assert!(
            o >= Duration::from_secs(5) && o < Duration::from_secs(60),
            "{o:?}"
        );
    }

    #[test]
    fn a_reopened_subscription_counts_each_life() {
        let entries = [
            e(0, "a", 1, Created),
            e(0, "b", 2, Created),
            e(10, "a", 1, Deleted),
            e(15, "a", 3, Created),
            e(18, "b", 2, Deleted),
            e(20, "a", 3, Deleted),
        ];
        assert_eq!(overlap(&entries, T, ADDR, "a", "b"), Duration::from_secs(10 + 3));
        assert_eq!(uncovered(&entries, T, ADDR, s(0), s(30)), Duration::from_secs(10));
        // The same app twice at once is not an overlap of two apps, but
        // still coverage.
        let twice = [
            e(0, "a", 1, Created),
            e(5, "a", 2, Created),
            e(7, "a", 1, Deleted),
        ];
        assert_eq!(overlap(&twice, T, ADDR, "a", "b"), Duration::ZERO);
        assert_eq!(uncovered(&twice, T, ADDR, s(0), s(10)), Duration::ZERO);
    }

    #[test]
    fn an_address_move_recorded_as_delete_then_create_at_one_instant() {
        let other = "https://new.example/h";
        let mut moved = e(10, "a", 1, Created);
        moved.address = other.into();
        let entries = [e(0, "a", 1, Created), e(10, "a", 1, Deleted), moved];
        assert_eq!(uncovered(&entries, T, ADDR, s(0), s(20)), Duration::from_secs(10));
        assert_eq!(
            uncovered(&entries, T, other, s(0), s(20)),
            Duration::from_secs(10)
        );
        // An empty or reversed window measures nothing.
        assert_eq!(uncovered(&entries, T, ADDR, s(20), s(20)), Duration::ZERO);
        assert_eq!(uncovered(&entries, T, ADDR, s(20), s(5)), Duration::ZERO);
    }

    #[test]
    fn entries_serialize_with_microsecond_timestamps() {
        let entry = e(0, "a", 1, Created);
        let v = serde_json::to_value(&entry).unwrap();
        assert_eq!(v["at"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(v["change"], "created");
        assert_eq!(v["clientId"], "a");
        let back: TimelineEntry = serde_json::from_value(v).unwrap();
        assert_eq!(back, entry);
    }
}
