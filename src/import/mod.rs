//! `shopify-operator import`: reads the old OMS's table of Shopify tokens
//! (MySQL/MariaDB) and turns each shop into a token Secret and a
//! ShopifyShop — as YAML on stdout, as one file per shop, or applied to the
//! cluster. Talks to the database and, with `--apply`, to the apiserver.
//!
//! Tokens stay in [`AccessToken`](shopify_admin::AccessToken) from the
//! moment they are read; they leave the process only inside the manifests
//! (stdout, `--output-dir` files) and the Secrets applied. Reports, errors
//! and the summary name shops, never tokens, and the database password is
//! redacted from every message.

mod apply;
mod db;
mod manifest;
pub mod report;
mod rows;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use futures::{StreamExt, TryStreamExt};

use db::{DatabaseUrl, DbError, Source};
use manifest::{Template, TemplateError};
use report::{Action, Outcome, Summary};

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  every shop was written (or is unchanged)
  1  fatal: cannot connect, bad flags, no such table or column; nothing more done
  2  some rows were skipped or in conflict (named on stderr); the others were done";

/// Flags of `shopify-operator import`; each also reads an env var.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The OMS database: `mysql://user:password@host:3306/database`.
    /// TLS: `?ssl-mode=REQUIRED|VERIFY_CA|VERIFY_IDENTITY` (default: none),
    /// `&ssl-ca=/path/ca.pem` for a private CA. The password is never
    /// printed.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = DatabaseUrl::parse)]
    pub database_url: DatabaseUrl,

    /// Table holding one row per shop.
    #[arg(long, env = "IMPORT_TABLE", default_value = "shopify_app_admin_clients")]
    pub table: String,

    /// Column with the shop's domain (`foo.myshopify.com`, a URL is fine).
    #[arg(long, env = "IMPORT_SHOP_COLUMN", default_value = "shop_url")]
    pub shop_column: String,

    /// Column with the shop's offline access token.
    #[arg(long, env = "IMPORT_TOKEN_COLUMN", default_value = "token")]
    pub token_column: String,

    /// Namespace of the generated Secrets and ShopifyShops.
    #[arg(long, env = "IMPORT_NAMESPACE")]
    pub namespace: String,

    /// A ShopifyShop YAML whose `spec` (webhooks, app, sync, …) every
    /// generated shop gets; `domain` and `token` are filled in per shop.
    #[arg(long, env = "IMPORT_TEMPLATE")]
    pub template: Option<PathBuf>,

    /// Write one `{name}.yaml` per shop (mode 0600) into this folder instead
    /// of YAML on stdout.
    #[arg(long, env = "IMPORT_OUTPUT_DIR", conflicts_with = "apply")]
    pub output_dir: Option<PathBuf>,

    /// Server-side apply into the cluster of the current kubeconfig. A
    /// Secret that holds a different token is left alone (conflict) unless
    /// `--force`.
    #[arg(long, env = "IMPORT_APPLY")]
    pub apply: bool,

    /// Write nothing; print what would happen as a table (SHOP, NAME,
    /// ACTION, REASON). With `--apply`, checked against the cluster.
    #[arg(long, env = "IMPORT_DRY_RUN")]
    pub dry_run: bool,

    /// With `--apply`: replace a Secret's different `access-token` and take
    /// over fields other managers own.
    #[arg(long, env = "IMPORT_FORCE", requires = "apply")]
    pub force: bool,

    /// Limit on connecting to the database.
    #[arg(long, env = "IMPORT_CONNECT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
}

/// Errors that stop an import (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A flag's value is unusable.
    #[error("{0}")]
    Flags(String),
    /// The database could not be read.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The template could not be used.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No Kubernetes client, or the cluster refused in a way that concerns
    /// every shop (unreachable, forbidden, no such namespace).
    #[error("cluster: {0}")]
    Kube(#[from] kube::Error),
}

/// Runs the import; returns the exit status ([`report::EXIT_OK`] or
/// [`report::EXIT_PARTIAL`]). An `Err` means exit status 1.
pub async fn run(args: ImportArgs) -> Result<u8, ImportError> {
    if !is_dns_label(&args.namespace) {
        return Err(ImportError::Flags(format!(
            "invalid --namespace {:?}: must be a DNS label",
            args.namespace
        )));
    }
    let template = match &args.template {
        Some(path) => Template::load(path)?,
        None => Template::default(),
    };
    // Settle everything that does not need the database first, so a bad
    // flag or kubeconfig fails before the OMS is touched.
    let client = if args.apply {
        Some(kube::Client::try_default().await?)
    } else {
        None
    };
    let source = Source {
        url: args.database_url.clone(),
        table: args.table.clone(),
        shop_column: args.shop_column.clone(),
        token_column: args.token_column.clone(),
        connect_timeout: args.connect_timeout,
    };
    db::select_statement(&source)?;
    if let (Some(dir), false) = (&args.output_dir, args.dry_run) {
        manifest::create_output_dir(dir).map_err(|source| ImportError::Output {
            path: dir.clone(),
            source,
        })?;
    }

    let raw = db::fetch_rows(&source).await?;
    let (shops, rejected) = rows::validate(raw);
    let mut outcomes: Vec<Outcome> = rejected
        .into_iter()
        .map(|r| Outcome {
            shop: r.shop,
            name: "-".into(),
            action: Action::Skipped,
            reason: r.reason,
        })
        .collect();
    for o in &outcomes {
        eprintln!("skipped {}: {}", o.shop, o.reason);
    }

    let created = |s: &rows::ShopRow| Outcome {
        shop: s.domain.clone(),
        name: s.name.clone(),
        action: Action::Create,
        reason: String::new(),
    };
    let mut done = Vec::with_capacity(shops.len());
    if let Some(client) = client {
        let applier = apply::Applier::new(client, &args.namespace, template, args.force, args.dry_run);
        // A few shops at a time: each is four to six small requests, and
        // the OMS has hundreds of shops.
        done = futures::stream::iter(&shops)
            .map(|s| applier.apply(s))
            .buffered(8)
            .try_collect()
            .await?;
    } else if args.dry_run {
        done.extend(shops.iter().map(created));
    } else if let Some(dir) = &args.output_dir {
        for s in &shops {
            let yaml = manifest::shop_yaml(s, &args.namespace, &template);
            let path = manifest::write_shop_file(dir, s, &yaml).map_err(|source| ImportError::Output {
                path: dir.join(format!("{}.yaml", s.name)),
                source,
            })?;
            eprintln!("wrote {}", path.display());
            done.push(created(s));
        }
    } else {
        let mut out = std::io::stdout().lock();
        for s in &shops {
            let yaml = manifest::shop_yaml(s, &args.namespace, &template);
            out.write_all(yaml.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|source| ImportError::Output {
                    path: "(stdout)".into(),
                    source,
                })?;
            done.push(created(s));
        }
    }
    for o in &done {
        if matches!(o.action, Action::Conflict | Action::Skipped) {
            eprintln!("{} {}: {}", o.action, o.shop, o.reason);
        }
    }
    outcomes.extend(done);

    // The table goes where the manifests would otherwise go; plain YAML
    // output keeps stdout for YAML alone.
    if args.dry_run || args.apply {
        print!("{}", report::table(&outcomes));
    }
    let summary = Summary::of(&outcomes);
    eprintln!("{}", summary.line(args.dry_run));
    Ok(summary.exit_code())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ImportArgs,
    }

    #[test]
    fn flags_have_the_documented_defaults() {
        let cli = Cli::try_parse_from(["x", "--database-url", "mysql://u:pw@h/db", "--namespace", "shops"])
            .unwrap();
        let a = cli.args;
        assert_eq!(
            (a.table.as_str(), a.shop_column.as_str(), a.token_column.as_str()),
            ("shopify_app_admin_clients", "shop_url", "token")
        );
        assert!(!a.apply && !a.dry_run && !a.force && a.output_dir.is_none());
        assert_eq!(a.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_password_stays_out_of_debug_and_errors() {
        let cli = Cli::try_parse_from([
            "x",
            "--database-url",
            "mysql://u:hunter2@h/db",
            "--namespace",
            "s",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"));
        let err = Cli::try_parse_from([
            "x",
            "--database-url",
            "mysql://u:hunter2@h/db",
            "--namespace",
            "s",
            "--force",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("--apply") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn output_dir_and_apply_exclude_each_other() {
        let r = Cli::try_parse_from([
            "x",
            "--database-url",
            "mysql://h/db",
            "--namespace",
            "s",
            "--apply",
            "--output-dir",
            "/tmp/x",
        ]);
        assert!(r.is_err());
    }

    #[test]
    fn namespaces_must_be_dns_labels() {
        assert!(is_dns_label("shops-1"));
        for bad in ["", "Shops", "-a", "a-", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }
}
