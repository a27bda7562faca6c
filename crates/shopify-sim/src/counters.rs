//! Per-shop request counters, so tests can assert how the client behaved
//! ("listed once, created three, never hammered a throttled shop").

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one shop's endpoints saw since the last reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Every HTTP request to the shop's GraphQL or OAuth endpoint, whatever
    /// its outcome (faults, 401s and throttled requests included).
    pub requests: u64,
    /// Attempts per operation: GraphQL root field names (`webhookSubscriptions`,
    /// `webhookSubscriptionCreate`, `shop`, …) of authenticated, parsed
    /// documents — throttled ones included — and `access_token` for the OAuth
    /// endpoint. An aliased field counts once per occurrence.
    pub operations: BTreeMap<String, u64>,
    /// Mutation fields actually executed (not throttled).
    pub mutations: u64,
    /// Requests answered `THROTTLED`.
    pub throttled: u64,
    /// Responses by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Connections dropped on purpose (`DropConnection`, `TimeoutAfterApply`).
    pub dropped: u64,
    /// Sum of the actual query cost charged.
    pub cost: u64,
    /// When the last executed mutation field ran (benchmarks time
    /// convergence by it). In-process only: not in the admin API's JSON.
    #[serde(skip)]
    pub last_mutation_at: Option<std::time::Instant>,
}

impl Counters {
    /// Attempts of one operation (0 if never seen).
    pub fn operation(&self, name: &str) -> u64 {
        self.operations.get(name).copied().unwrap_or(0)
    }

    /// Responses with one HTTP status (0 if never seen).
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}
