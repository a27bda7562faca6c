//! `shopify-operator`: the command line. Each flag also reads an env var.

use std::time::Duration;

use clap::{Parser, Subcommand};
use shopify_operator::crd;

/// Keeps Shopify shops' webhooks, tokens and sync jobs in cluster state.
#[derive(Parser, Debug)]
#[command(name = "shopify-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller against the cluster of the current kubeconfig or
    /// the in-cluster config.
    Run(Box<shopify_operator::run::RunArgs>),
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
    #[command(after_help = shopify_operator::import::EXIT_CODES_HELP)]
    Import(Box<shopify_operator::import::ImportArgs>),
    /// Webhook tools for cutover checks.
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Subcommand, Debug)]
enum WebhookCommand {
    /// Send one delivery exactly as Shopify would (sample body, Shopify's
    /// headers, HMAC with the app's client secret) to the address the
    /// shop's subscription for the topic has now.
    #[command(after_help = shopify_operator::webhook::EXIT_CODES_HELP)]
    Trigger(Box<shopify_operator::webhook::TriggerArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        // clap exits 2 on a usage error, but for `import` 2 means "some rows
        // skipped, the rest imported"; a bad flag there is fatal, 1.
        let import = std::env::args_os().nth(1).is_some_and(|a| a == "import");
        if import && e.use_stderr() {
            let _ = e.print();
            std::process::exit(i32::from(shopify_operator::import::report::EXIT_FATAL));
        }
        e.exit()
    });
    match cli.command {
        Command::Crd { kind } => {
            if kind == "ShopifyApp" {
                print!("{}", crd::app_crd_yaml());
            } else {
                print!("{}", crd::crd_yaml());
            }
            std::process::ExitCode::SUCCESS
        }
        Command::Import(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            match runtime.block_on(shopify_operator::import::run(*args)) {
                Ok(code) => std::process::ExitCode::from(code),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::ExitCode::from(shopify_operator::import::report::EXIT_FATAL)
                }
            }
        }
        Command::Webhook(WebhookCommand::Trigger(args)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            std::process::ExitCode::from(runtime.block_on(shopify_operator::webhook::trigger(*args)))
        }
        Command::Run(args) => {
            shopify_operator::run::init_tracing(args.log_format);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            match runtime.block_on(shopify_operator::run::run(*args)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "shopify-operator stopped");
                    runtime.shutdown_timeout(Duration::from_secs(1));
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
