//! Injectable faults: the failures Shopify can produce that a happy-path
//! simulator never would, armed by tests through [`super::Sim::inject`] or
//! `POST /_sim/faults`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A fault to inject. In JSON it is tagged by `type`, fields camelCase, e.g.
/// `{"type":"status","shop":"a.myshopify.com","status":503,"count":2}` or
/// `{"type":"timeoutAfterApply","count":1,"hangMs":5000}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Fault {
    /// The next `count` requests (of `shop`, or of any shop) answer HTTP
    /// `status` with the body Shopify documents for it, before anything is
    /// authenticated or executed.
    Status {
        /// Only this shop's requests; `None` for any shop.
        #[serde(default)]
        shop: Option<String>,
        /// 402, 403, 423, 429 (with `Retry-After: 2`), 500, 503, …
        status: u16,
        /// How many requests fail; defaults to 1.
        #[serde(default = "one")]
        count: u32,
    },
    /// The next `count` requests are executed (mutations applied!), then the
    /// response is held for `hang` and the connection dropped without an
    /// answer: with a client timeout below `hang` the client sees a timeout
    /// although the change happened.
    TimeoutAfterApply {
        /// Only this shop's requests; `None` for any shop.
        #[serde(default)]
        shop: Option<String>,
        /// How many requests hang; defaults to 1.
        #[serde(default = "one")]
        count: u32,
        /// How long to hold the response (JSON: `hangMs`, default 30 s).
        #[serde(rename = "hangMs", with = "millis", default = "default_hang")]
        hang: Duration,
        /// Only GraphQL documents with a mutation count (and hang): the
        /// "applied, then the response was lost" case for creates.
        #[serde(default)]
        mutations_only: bool,
    },
    /// The next `count` requests have their connection closed before anything
    /// is executed: the client sees a connection error and nothing changed.
    DropConnection {
        /// Only this shop's requests; `None` for any shop.
        #[serde(default)]
        shop: Option<String>,
        /// How many requests are dropped; defaults to 1.
        #[serde(default = "one")]
        count: u32,
    },
    /// Until cleared, each request (of `shop`, or of any shop) answers
    /// HTTP `status` with probability `percent`/100, before anything is
    /// authenticated or executed: a flaky Shopify.
    StatusRate {
        /// Only this shop's requests; `None` for any shop.
        #[serde(default)]
        shop: Option<String>,
        /// 500, 502, 503, …
        status: u16,
        /// 0–100.
        percent: u8,
    },
    /// Empties the shop's cost bucket now, so the next costly request is
    /// `THROTTLED` until the restore rate has refilled it.
    DrainBucket {
        /// The shop whose bucket is emptied.
        shop: String,
    },
    /// Until cleared, Shopify refuses webhook subscription filters: every
    /// create or update mutation (any of the six) whose input carries
    /// `filter` equal to `filter` — or any non-empty filter when `filter` is
    /// `None` — answers a userError on `["webhookSubscription", "filter"]`
    /// with `message` and changes nothing. Other mutations of the same
    /// document are unaffected.
    /// `{"type":"refuseFilter","shop":"a.myshopify.com","filter":"id:>1","message":"…"}`.
    RefuseFilter {
        /// Only this shop's mutations; `None` for any shop.
        #[serde(default)]
        shop: Option<String>,
        /// Only this exact filter; `None` for any non-empty filter.
        #[serde(default)]
        filter: Option<String>,
        /// The userError message; default [`DEFAULT_FILTER_REFUSAL`].
        #[serde(default)]
        message: Option<String>,
    },
}

/// Default message of a refused filter ([U]: Shopify's wording for a filter
/// it cannot parse is not documented).
pub const DEFAULT_FILTER_REFUSAL: &str = "Filter is invalid";

/// An armed [`Fault::RefuseFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterRefusal {
    shop: Option<String>,
    filter: Option<String>,
    message: String,
}

impl FilterRefusal {
    /// `Some` for [`Fault::RefuseFilter`].
    pub fn from_fault(f: &Fault) -> Option<Self> {
        match f {
            Fault::RefuseFilter {
                shop,
                filter,
                message,
            } => Some(Self {
                shop: shop.as_ref().map(|s| s.to_ascii_lowercase()),
                filter: filter.clone(),
                message: message
                    .clone()
                    .unwrap_or_else(|| DEFAULT_FILTER_REFUSAL.to_string()),
            }),
            _ => None,
        }
    }

    /// The message if this refusal applies to `filter` in `shop` (a shop
    /// key, lower-case).
    pub fn refuses(&self, shop: &str, filter: &str) -> Option<&str> {
        let shop_matches = self.shop.as_deref().is_none_or(|s| s == shop);
        let filter_matches = match &self.filter {
            Some(f) => f == filter,
            None => !filter.is_empty(),
        };
        (shop_matches && filter_matches).then_some(self.message.as_str())
    }
}

fn one() -> u32 {
    1
}

fn default_hang() -> Duration {
    Duration::from_secs(30)
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// What a queued fault does to the request it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Status(u16),
    TimeoutAfterApply(Duration),
    Drop,
}

/// What kind of request a fault is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A GraphQL document containing a mutation.
    Mutation,
    /// Anything else.
    Other,
}

/// A fault waiting for requests.
#[derive(Debug, Clone)]
pub(crate) struct Armed {
    shop: Option<String>,
    remaining: u32,
    effect: Effect,
    mutations_only: bool,
    /// Fires with this probability (percent) and is never used up.
    rate: Option<u8>,
}

impl Armed {
    /// `None` for faults that act at once instead of on later requests.
    pub fn from_fault(f: &Fault) -> Option<Self> {
        if let Fault::StatusRate {
            shop,
            status,
            percent,
        } = f
        {
            return (*percent > 0).then(|| Self {
                shop: shop.as_ref().map(|s| s.to_ascii_lowercase()),
                remaining: u32::MAX,
                effect: Effect::Status(*status),
                mutations_only: false,
                rate: Some((*percent).min(100)),
            });
        }
        let (shop, remaining, effect, mutations_only) = match f {
            Fault::Status { shop, status, count } => (shop, *count, Effect::Status(*status), false),
            Fault::TimeoutAfterApply {
                shop,
                count,
                hang,
                mutations_only,
            } => (shop, *count, Effect::TimeoutAfterApply(*hang), *mutations_only),
            Fault::DropConnection { shop, count } => (shop, *count, Effect::Drop, false),
            Fault::DrainBucket { .. } | Fault::StatusRate { .. } | Fault::RefuseFilter { .. } => return None,
        };
        (remaining > 0).then(|| Self {
            shop: shop.as_ref().map(|s| s.to_ascii_lowercase()),
            remaining,
            effect,
            mutations_only,
            rate: None,
        })
    }
}

/// Takes one shot of the oldest armed fault that matches `shop` (a rate
/// fault matches when its dice say so).
pub(crate) fn take(queue: &mut Vec<Armed>, shop: &str, kind: RequestKind) -> Option<Effect> {
    let i = queue.iter().position(|a| {
        a.shop.as_deref().is_none_or(|s| s == shop)
            && (!a.mutations_only || kind == RequestKind::Mutation)
            && a.rate.is_none_or(|p| rand::random_range(0..100u8) < p)
    })?;
    let effect = queue[i].effect;
    if queue[i].rate.is_some() {
        return Some(effect);
    }
    queue[i].remaining -= 1;
    if queue[i].remaining == 0 {
        queue.remove(i);
    }
    Some(effect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_tagged_and_camel_case() {
        let f: Fault = serde_json::from_str(r#"{"type":"timeoutAfterApply","hangMs":1500}"#).unwrap();
        assert_eq!(
            f,
            Fault::TimeoutAfterApply {
                shop: None,
                count: 1,
                hang: Duration::from_millis(1500),
                mutations_only: false,
            }
        );
        let f: Fault = serde_json::from_str(r#"{"type":"drainBucket","shop":"a.myshopify.com"}"#).unwrap();
        assert!(matches!(f, Fault::DrainBucket { .. }));
        let back = serde_json::to_value(Fault::Status {
            shop: None,
            status: 503,
            count: 2,
        })
        .unwrap();
        assert_eq!(back["type"], "status");
    }

    #[test]
    fn faults_fire_count_times_for_matching_shops_only() {
        let mut q = vec![
            Armed::from_fault(&Fault::Status {
                shop: Some("A.myshopify.com".into()),
                status: 503,
                count: 2,
            })
            .unwrap(),
        ];
        assert_eq!(take(&mut q, "b.myshopify.com", RequestKind::Other), None);
        assert_eq!(
            take(&mut q, "a.myshopify.com", RequestKind::Other),
            Some(Effect::Status(503))
        );
        assert_eq!(
            take(&mut q, "a.myshopify.com", RequestKind::Other),
            Some(Effect::Status(503))
        );
        assert_eq!(take(&mut q, "a.myshopify.com", RequestKind::Other), None);
        assert!(q.is_empty());
    }

    #[test]
    fn rate_faults_fire_about_that_often_and_stay() {
        let f = Fault::StatusRate {
            shop: None,
            status: 503,
            percent: 20,
        };
        let mut q = vec![Armed::from_fault(&f).unwrap()];
        let fired = (0..10_000)
            .filter(|_| take(&mut q, "a.myshopify.com", RequestKind::Other).is_some())
            .count();
        assert!((1_600..2_400).contains(&fired), "{fired} of 10000");
        assert_eq!(q.len(), 1, "a rate fault is never used up");
        let f: Fault = serde_json::from_str(r#"{"type":"statusRate","status":500,"percent":20}"#).unwrap();
        assert!(matches!(f, Fault::StatusRate { percent: 20, .. }));
    }

    #[test]
    fn filter_refusals_match_shop_and_filter() {
        let f: Fault = serde_json::from_str(
            r#"{"type":"refuseFilter","shop":"A.myshopify.com","filter":"id:>1","message":"nope"}"#,
        )
        .unwrap();
        assert!(Armed::from_fault(&f).is_none(), "not a per-request fault");
        let r = FilterRefusal::from_fault(&f).unwrap();
        assert_eq!(r.refuses("a.myshopify.com", "id:>1"), Some("nope"));
        assert_eq!(r.refuses("a.myshopify.com", "id:>2"), None);
        assert_eq!(r.refuses("b.myshopify.com", "id:>1"), None);
        let any: Fault = serde_json::from_str(r#"{"type":"refuseFilter"}"#).unwrap();
        let r = FilterRefusal::from_fault(&any).unwrap();
        assert_eq!(r.refuses("b.myshopify.com", "x:1"), Some(DEFAULT_FILTER_REFUSAL));
        assert_eq!(r.refuses("b.myshopify.com", ""), None);
        assert_eq!(serde_json::to_value(&any).unwrap()["type"], "refuseFilter");
    }

    #[test]
    fn mutations_only_faults_skip_queries() {
        let f = Fault::TimeoutAfterApply {
            shop: None,
            count: 1,
            hang: Duration::from_secs(1),
            mutations_only: true,
        };
        let mut q = vec![Armed::from_fault(&f).unwrap()];
        assert_eq!(take(&mut q, "a.myshopify.com", RequestKind::Other), None);
        assert_eq!(
            take(&mut q, "a.myshopify.com", RequestKind::Mutation),
            Some(Effect::TimeoutAfterApply(Duration::from_secs(1)))
        );
        assert!(q.is_empty());
    }
}
