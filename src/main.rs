//! `shopify-operator`: the command line. Each flag also reads an env var.

use std::time::Duration;

use clap::Parser;
use shopify_operator::cli::{Cli, Command, WebhookCommand};
use shopify_operator::crd;

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
        Command::Docs { out } => match shopify_operator::docs::write(&out) {
            Ok(written) => {
                for path in written {
                    println!("{}", path.display());
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: writing {}: {e}", out.display());
                std::process::ExitCode::FAILURE
            }
        },
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
