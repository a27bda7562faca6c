//! Time, injectable: the system clock in production, a manual clock in tests
//! so schedules can be exercised without waiting for real minutes. No I/O.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

/// A source of "now".
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Fires whenever time jumps (manual clocks): the controller then
    /// reconciles every shop, as real time passing would via requeues.
    fn jumps(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
    jumps: watch::Sender<u64>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Mutex::new(start),
            jumps: watch::channel(0).0,
        }
    }

    /// Sets the time and wakes the controller.
    pub fn set(&self, t: Timestamp) {
        *self.now.lock().expect("clock") = t;
        self.jumps.send_modify(|n| *n += 1);
    }

    /// Moves the time forward by `d` and wakes the controller.
    pub fn advance(&self, d: SignedDuration) {
        let t = self.now() + d;
        self.set(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().expect("clock")
    }

    fn jumps(&self) -> Option<watch::Receiver<u64>> {
        Some(self.jumps.subscribe())
    }
}
