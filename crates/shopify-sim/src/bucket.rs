//! The per-shop leaky bucket of GraphQL cost points.
//!
//! Shopify's model (fact sheet §4): a request whose *requested* cost exceeds
//! what is currently available is refused as `THROTTLED` and costs nothing;
//! otherwise the requested cost is taken up front and the difference to the
//! *actual* cost is refunded after execution. Points flow back continuously at
//! the restore rate up to the bucket size.

use serde::Serialize;
use std::time::Instant;

/// `extensions.cost.throttleStatus` as Shopify reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    /// The bucket size.
    pub maximum_available: f64,
    /// Whole points available after this request (Shopify reports integers).
    pub currently_available: u64,
    /// Points restored per second.
    pub restore_rate: f64,
}

/// A leaky bucket; time is passed in so the math is testable without sleeping.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    max: f64,
    rate: f64,
    available: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(max: f64, rate: f64, now: Instant) -> Self {
        Self {
            max,
            rate,
            available: max,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.available = (self.available + elapsed * self.rate).min(self.max);
        self.last = now;
    }

    /// Takes `cost` points, or refuses without taking anything.
    pub fn try_take(&mut self, cost: f64, now: Instant) -> Result<ThrottleStatus, ThrottleStatus> {
        self.refill(now);
        if cost > self.available {
            return Err(self.status());
        }
        self.available -= cost;
        Ok(self.status())
    }

    /// Gives back the unused part of a request's requested cost.
    pub fn refund(&mut self, points: f64, now: Instant) -> ThrottleStatus {
        self.refill(now);
        self.available = (self.available + points.max(0.0)).min(self.max);
        self.status()
    }

    /// Empties the bucket (fault injection).
    pub fn drain(&mut self, now: Instant) {
        self.refill(now);
        self.available = 0.0;
    }

    pub fn status_at(&mut self, now: Instant) -> ThrottleStatus {
        self.refill(now);
        self.status()
    }

    fn status(&self) -> ThrottleStatus {
        ThrottleStatus {
            maximum_available: self.max,
            currently_available: self.available.max(0.0).floor() as u64,
            restore_rate: self.rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn take_then_refund_charges_the_actual_cost() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000.0, 100.0, t0);
        let s = b.try_take(252.0, t0).unwrap();
        assert_eq!(s.currently_available, 748);
        let s = b.refund(252.0 - 12.0, t0);
        assert_eq!(s.currently_available, 988);
    }

    #[test]
    fn refuses_without_charging_and_restores_over_time() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000.0, 100.0, t0);
        b.drain(t0);
        let s = b.try_take(10.0, t0).unwrap_err();
        assert_eq!(s.currently_available, 0);
        // 50 ms at 100/s restores 5 points: still not enough for 10.
        assert!(b.try_take(10.0, t0 + Duration::from_millis(50)).is_err());
        let s = b.try_take(10.0, t0 + Duration::from_millis(100)).unwrap();
        assert_eq!(s.currently_available, 0);
    }

    #[test]
    fn never_exceeds_its_size() {
        let t0 = Instant::now();
        let mut b = Bucket::new(50.0, 1000.0, t0);
        let s = b.refund(1e9, t0 + Duration::from_secs(100));
        assert_eq!(s.currently_available, 50);
        assert_eq!(s.maximum_available, 50.0);
    }
}
