//! Query cost and the per-shop leaky-bucket estimate.
//!
//! No network access; pure arithmetic over `extensions.cost` and a clock
//! passed in by the caller. Shopify meters GraphQL calls per app and store in
//! cost points: a bucket of `maximumAvailable` points refilling at
//! `restoreRate` points per second; every response reports
//! `extensions.cost { requestedQueryCost actualQueryCost throttleStatus {
//! maximumAvailable currentlyAvailable restoreRate } }`. The client keeps one
//! [`Bucket`] per shop so that a shop close to empty waits for its own refill
//! instead of being hammered, while other shops are unaffected.

use std::time::{Duration, Instant};

use serde_json::Value;

/// The smallest wait returned for a throttled response, so that a retry never
/// spins even when the numbers say the bucket should already have refilled.
pub const MIN_THROTTLE_WAIT: Duration = Duration::from_millis(50);

/// Bucket size assumed until a shop's first response reports the real one
/// (Shopify's documented size is not confirmed; older captures show 1000).
pub const DEFAULT_BUCKET_MAXIMUM: f64 = 1000.0;

/// Shopify's documented limit on the cost of a single query, whatever the
/// bucket size.
pub const MAX_SINGLE_QUERY_COST: f64 = 1000.0;

/// `extensions.cost.throttleStatus`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleStatus {
    /// Bucket size in points.
    pub maximum_available: f64,
    /// Points available when the response was produced.
    pub currently_available: f64,
    /// Points restored per second.
    pub restore_rate: f64,
}

/// `extensions.cost` of one response.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueryCost {
    /// `requestedQueryCost`: what the server estimated before running.
    pub requested: Option<f64>,
    /// `actualQueryCost`: what it charged (absent when throttled).
    pub actual: Option<f64>,
    /// The bucket after the request.
    pub throttle: Option<ThrottleStatus>,
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64).filter(|x| x.is_finite())
}

impl QueryCost {
    /// Parses `extensions.cost` out of a whole response body; `None` when it
    /// is absent or has no usable number in it.
    pub fn from_response(body: &Value) -> Option<Self> {
        let cost = body.get("extensions")?.get("cost")?;
        let throttle = cost.get("throttleStatus").and_then(|t| {
            Some(ThrottleStatus {
                maximum_available: num(t, "maximumAvailable")?,
                currently_available: num(t, "currentlyAvailable")?,
                restore_rate: num(t, "restoreRate")?,
            })
        });
        let qc = QueryCost {
            requested: num(cost, "requestedQueryCost"),
            actual: num(cost, "actualQueryCost"),
            throttle,
        };
        (qc.requested.is_some() || qc.actual.is_some() || qc.throttle.is_some()).then_some(qc)
    }

    /// How long to wait before the request that was throttled can be paid
    /// for: `(requestedQueryCost − currentlyAvailable) / restoreRate`, at
    /// least [`MIN_THROTTLE_WAIT`]. `None` when the numbers needed are
    /// missing or the restore rate is not positive.
    pub fn throttle_wait(&self) -> Option<Duration> {
        let t = self.throttle?;
        let requested = self.requested?;
        if t.restore_rate <= 0.0 {
            return None;
        }
        let secs = ((requested - t.currently_available) / t.restore_rate).max(0.0);
        Some(ceil_duration(secs).max(MIN_THROTTLE_WAIT))
    }
}

/// Seconds → `Duration`, rounded up to the millisecond, saturating at one day.
pub(crate) fn ceil_duration(secs: f64) -> Duration {
    if !secs.is_finite() || secs <= 0.0 {
        return Duration::ZERO;
    }
    let ms = (secs * 1000.0).ceil().min(86_400_000.0);
    Duration::from_millis(ms as u64)
}

/// The client's running estimate of one shop's bucket.
///
/// `available` may go negative: it then records points reserved by requests
/// that are waiting for the refill, so concurrent callers queue up behind
/// each other instead of all sending at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Bucket size in points.
    pub maximum: f64,
    /// Points available at `at` (negative: reserved ahead of the refill).
    pub available: f64,
    /// Points restored per second.
    pub restore_rate: f64,
    /// When `available` was last set.
    pub at: Instant,
}

impl Bucket {
    /// A bucket as the server last reported it.
    pub fn from_status(s: ThrottleStatus, at: Instant) -> Self {
        Bucket {
            maximum: s.maximum_available,
            available: s.currently_available.min(s.maximum_available),
            restore_rate: s.restore_rate,
            at,
        }
    }

    /// Points available at `now`, counting the refill since `at`.
    pub fn estimate(&self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        (self.available + self.restore_rate.max(0.0) * dt).min(self.maximum)
    }

    /// How long a request costing `cost` has to wait at `now` (no change).
    pub fn wait_for(&self, cost: f64, now: Instant) -> Duration {
        let cost = cost.min(self.maximum);
        let short = cost - self.estimate(now);
        if short <= 0.0 {
            Duration::ZERO
        } else if self.restore_rate <= 0.0 {
            Duration::from_secs(86_400)
        } else {
            ceil_duration(short / self.restore_rate)
        }
    }

    /// Reserves points for a request at `now` and returns how long to wait
    /// before sending. The wait is for `requested` points to be available
    /// (Shopify admits a query only when the bucket holds its requested
    /// cost); the estimate is then charged `charge`, the points the request
    /// is expected to actually cost (Shopify refunds the difference). A
    /// cost above the bucket size is capped at the size.
    pub fn reserve(&mut self, requested: f64, charge: f64, now: Instant) -> Duration {
        let wait = self.wait_for(requested, now);
        self.available = self.estimate(now) - charge.clamp(0.0, self.maximum);
        self.at = now;
        wait
    }

    /// Gives back a reservation whose request was never charged (it failed
    /// before the server reported a cost).
    pub fn refund(&mut self, points: f64, now: Instant) {
        self.available = (self.estimate(now) + points.max(0.0)).min(self.maximum);
        self.at = now;
    }

    /// Replaces the estimate with what the server just reported.
    pub fn observe(&mut self, s: ThrottleStatus, now: Instant) {
        *self = Bucket::from_status(s, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(max: f64, cur: f64, rate: f64) -> ThrottleStatus {
        ThrottleStatus {
            maximum_available: max,
            currently_available: cur,
            restore_rate: rate,
        }
    }

    #[test]
    fn parses_cost_extension() {
        let body = json!({"data": {}, "extensions": {"cost": {
            "requestedQueryCost": 752, "actualQueryCost": 12,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 988, "restoreRate": 100.0}}}});
        let c = QueryCost::from_response(&body).unwrap();
        assert_eq!(c.requested, Some(752.0));
        assert_eq!(c.actual, Some(12.0));
        assert_eq!(c.throttle, Some(status(1000.0, 988.0, 100.0)));
        assert_eq!(QueryCost::from_response(&json!({"data": {}})), None);
        assert_eq!(
            QueryCost::from_response(&json!({"extensions": {"cost": "x"}})),
            None
        );
    }

    #[test]
    fn throttle_wait_math() {
        // (752 - 52) / 100 = 7 s
        let c = QueryCost {
            requested: Some(752.0),
            actual: None,
            throttle: Some(status(1000.0, 52.0, 100.0)),
        };
        assert_eq!(c.throttle_wait(), Some(Duration::from_secs(7)));
        // 1 point short at 1000/s: 1 ms, raised to the minimum.
        let c = QueryCost {
            requested: Some(10.0),
            actual: None,
            throttle: Some(status(20000.0, 9.0, 1000.0)),
        };
        assert_eq!(c.throttle_wait(), Some(MIN_THROTTLE_WAIT));
        // Fractional results round up to the millisecond: 3/7 s.
        let c = QueryCost {
            requested: Some(3.0),
            actual: None,
            throttle: Some(status(100.0, 0.0, 7.0)),
        };
        assert_eq!(c.throttle_wait(), Some(Duration::from_millis(429)));
        // Missing numbers or a zero rate: no computed wait.
        let c = QueryCost {
            requested: None,
            actual: None,
            throttle: Some(status(1.0, 0.0, 1.0)),
        };
        assert_eq!(c.throttle_wait(), None);
        let c = QueryCost {
            requested: Some(5.0),
            actual: None,
            throttle: Some(status(1.0, 0.0, 0.0)),
        };
        assert_eq!(c.throttle_wait(), None);
    }

    #[test]
    fn bucket_refills_and_caps() {
        let t0 = Instant::now();
        let b = Bucket::from_status(status(1000.0, 100.0, 100.0), t0);
        assert_eq!(b.estimate(t0), 100.0);
        assert_eq!(b.estimate(t0 + Duration::from_secs(2)), 300.0);
        assert_eq!(b.estimate(t0 + Duration::from_secs(60)), 1000.0);
        assert_eq!(b.wait_for(50.0, t0), Duration::ZERO);
        assert_eq!(b.wait_for(300.0, t0), Duration::from_secs(2));
        // A cost above the bucket size waits for a full bucket, not forever.
        assert_eq!(b.wait_for(5000.0, t0), Duration::from_secs(9));
    }

    #[test]
    fn reservations_queue_behind_each_other() {
        let t0 = Instant::now();
        let mut b = Bucket::from_status(status(1000.0, 20.0, 100.0), t0);
        assert_eq!(b.reserve(10.0, 10.0, t0), Duration::ZERO); // 10 left
        assert_eq!(b.reserve(10.0, 10.0, t0), Duration::ZERO); // 0 left
        assert_eq!(b.reserve(50.0, 50.0, t0), Duration::from_millis(500)); // -50
        assert_eq!(b.reserve(50.0, 50.0, t0), Duration::from_secs(1)); // -100
        assert_eq!(b.available, -100.0);
        // A request that was never charged gives its points back.
        b.refund(50.0, t0);
        assert_eq!(b.available, -50.0);
        // The server's report replaces the estimate.
        b.observe(status(1000.0, 900.0, 100.0), t0);
        assert_eq!(b.reserve(100.0, 100.0, t0), Duration::ZERO);
    }

    #[test]
    fn admission_needs_the_requested_cost_but_charges_the_expected_one() {
        // A listing requests 752 points but, for a shop with few
        // subscriptions, actually costs ~5: concurrent listings of such a shop
        // must not queue up as if each took 752.
        let t0 = Instant::now();
        let mut b = Bucket::from_status(status(1000.0, 1000.0, 100.0), t0);
        for _ in 0..40 {
            assert_eq!(b.reserve(752.0, 5.0, t0), Duration::ZERO);
        }
        assert_eq!(b.available, 800.0);
        // Below the requested cost, the request waits for the refill.
        let mut b = Bucket::from_status(status(1000.0, 700.0, 100.0), t0);
        assert_eq!(b.reserve(752.0, 5.0, t0), Duration::from_millis(520));
        // Refunds never overfill the bucket.
        b.refund(10_000.0, t0);
        assert_eq!(b.available, 1000.0);
    }
}
