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
    /// Print the ShopifyShop CRD as YAML (what `crds/shopifyshop.yaml` holds).
    Crd,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crd::crd_yaml());
            std::process::ExitCode::SUCCESS
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
