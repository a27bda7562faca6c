//! The operator's two controllers, each in a folder of its own, and what
//! both of them use:
//!
//! - [`shop`]: the ShopifyShop controller (its driver and its steps:
//!   webhooks, tokens, sync Jobs, status);
//! - [`app`]: the ShopifyApp controller (the app's credentials and shops);
//! - shared, owned by neither: the condition and reason registry
//!   (`conditions`, `reasons`; both controllers write conditions), the one
//!   error type (`error`), the shared state and Events (`context`), where
//!   "now" comes from (`clock`), and `watches`, which wires both
//!   controllers to the cluster and runs them side by side.
//!
//! Nothing in `app` uses `shop` or the other way round; what they share is
//! here.

mod app;
pub mod clock;
pub(crate) mod conditions;
mod context;
mod error;
mod events;
pub(crate) mod reasons;
mod shop;
mod watches;

pub use context::{Context, Note, Settings, TokenChecks};
pub use error::Error;
pub use shop::certificate_resource;
pub use shop::{migrate, refresh};
pub use watches::run;
