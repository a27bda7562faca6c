//! shopify-operator: reconciles `ShopifyShop` resources so that each Shopify
//! shop's webhook subscriptions, tokens and sync jobs live in cluster state.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library; the library is
//! also what the integration tests and the simulator binary link against.

pub mod controller;
pub mod crd;
pub mod http;
pub mod import;
pub mod metrics;
pub mod public;
pub mod run;
pub mod shopify;
pub mod sim;
pub mod testenv;
