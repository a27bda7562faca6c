//! The command line's shape: every subcommand and flag of `shopify-operator`
//! (each flag also reads an env var). It lives in the library, not in
//! `src/main.rs`, so that the generated CLI reference (`crate::docs`) and
//! the book's test can walk it with clap's [`clap::CommandFactory`]: the
//! reference is the parser itself, not a copy of it.

use clap::{Parser, Subcommand};

/// Keeps Shopify shops' webhooks, tokens and sync jobs in cluster state.
#[derive(Parser, Debug)]
#[command(name = "shopify-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller against the cluster of the current kubeconfig or
    /// the in-cluster config.
    Run(Box<crate::run::RunArgs>),
    /// Print a CRD as YAML: ShopifyShop (`crds/shopifyshop.yaml`) or, with
    /// `--kind ShopifyApp`, `crds/shopifyapp.yaml`.
    Crd {
        /// `ShopifyShop` or `ShopifyApp`.
        #[arg(long, default_value = "ShopifyShop", value_parser = ["ShopifyShop", "ShopifyApp"])]
        kind: String,
    },
    /// Turn the old OMS database's table of Shopify tokens into token
    /// Secrets and ShopifyShops: YAML on stdout, one file per shop, or
    /// applied to the cluster.
    #[command(after_help = crate::import::EXIT_CODES_HELP)]
    Import(Box<crate::import::ImportArgs>),
    /// Webhook tools for cutover checks.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Write the book's generated reference pages (CRD fields, this CLI,
    /// metrics, conditions and reasons) into a folder; `make docs` runs it
    /// with `--out docs/src/reference`.
    Docs {
        /// The folder to write the pages into (created if missing).
        #[arg(long, default_value = "docs/src/reference")]
        out: std::path::PathBuf,
    },
}

/// The `webhook` subcommands.
#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Send one delivery exactly as Shopify would (sample body, Shopify's
    /// headers, HMAC with the app's client secret) to the address the
    /// shop's subscription for the topic has now.
    #[command(after_help = crate::webhook::EXIT_CODES_HELP)]
    Trigger(Box<crate::webhook::TriggerArgs>),
}
