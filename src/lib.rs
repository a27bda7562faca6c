//! shopify-operator: reconciles `ShopifyShop` resources so that each Shopify
//! shop's webhook subscriptions, tokens and sync jobs live in cluster state.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library; the library
//! is also what the integration tests, the benchmarks and `shopify-demo`
//! link against, so it exports only what they need. The Shopify client is
//! the `shopify-admin` crate; the simulator (`shopify-sim`) and the test
//! control plane (`testenv`) are dev-dependencies only.
//!
//! Dependencies point one way: `run` wires `controller` and `public`; both
//! use the leaves (`crd`, `names`, `allow_list`, `token_store`, `metrics`)
//! and never each other.

#![forbid(unsafe_code)]

mod allow_list;
pub mod certificate;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod docs;
mod http;
pub mod import;
mod metrics;
mod names;
pub mod public;
pub mod run;
mod token_store;
pub mod webhook;
