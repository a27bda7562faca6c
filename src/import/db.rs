//! The OMS database side of `import`: the connection URL (with its password
//! kept out of every message), identifier checks and the one SELECT.
//! Talks to MySQL/MariaDB.

use std::fmt;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, SslOpts};

use super::rows::RawRow;
use shopify_admin::AccessToken;

/// A `mysql://` URL as given on the command line. Its `Debug` shows the URL
/// with the password replaced, so `{:?}` of the flags is safe to print.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps the URL; it is checked when connecting, where the error can be
    /// redacted (clap would echo a rejected value verbatim).
    pub fn parse(s: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self(s.to_string()))
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                u.to_string()
            }
            // Unparseable: nothing reliable to show.
            Err(_) => "(unparseable URL)".to_string(),
        }
    }

    /// Every form in which the password could show up in a message: as
    /// written in the URL (percent-encoded) and decoded.
    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(u) = url::Url::parse(&self.0)
            && let Some(p) = u.password()
        {
            out.push(p.to_string());
            if let Ok(decoded) = percent_decode(p) {
                out.push(decoded);
            }
        }
        // A URL that doesn't parse may still carry `user:pass@`.
        if let Some(rest) = self.0.split_once("://").map(|(_, r)| r)
            && let Some((creds, _)) = rest.rsplit_once('@')
            && let Some((_, p)) = creds.split_once(':')
        {
            out.push(p.to_string());
        }
        out.retain(|s| !s.is_empty());
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }

    /// `text` with every occurrence of the password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.secrets() {
            out = out.replace(&secret, "***");
        }
        out
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
}

/// Why the database could not be read. Messages never hold the password.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A table or column name that is not `[A-Za-z0-9_]+`.
    #[error("invalid {what} name {name:?}: only letters, digits and _ are allowed")]
    Identifier {
        /// `table`, `shop column` or `token column`.
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// The URL is malformed or has an unsupported parameter.
    #[error("invalid database URL {url}: {message}")]
    Url {
        /// The URL, redacted.
        url: String,
        /// What is wrong, redacted.
        message: String,
    },
    /// Connecting or logging in failed.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// Why, redacted.
        message: String,
    },
    /// The SELECT failed: no such table or column, no privilege.
    #[error("cannot read columns `{shop}`, `{token}` of table `{table}` at {url}: {message}")]
    Query {
        /// The table.
        table: String,
        /// The shop column.
        shop: String,
        /// The token column.
        token: String,
        /// The URL, redacted.
        url: String,
        /// What the server said, redacted.
        message: String,
    },
}

/// Where the rows come from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The database URL.
    pub url: DatabaseUrl,
    /// Table name.
    pub table: String,
    /// Column holding the shop domain.
    pub shop_column: String,
    /// Column holding the access token.
    pub token_column: String,
    /// Limit on connecting and logging in.
    pub connect_timeout: Duration,
}

/// Checks that `name` is a plain identifier and returns it backtick-quoted.
/// Only `[A-Za-z0-9_]` is accepted, so a flag can't smuggle SQL in.
pub fn quote_identifier(what: &'static str, name: &str) -> Result<String, DbError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(format!("`{name}`"))
    } else {
        Err(DbError::Identifier {
            what,
            name: name.to_string(),
        })
    }
}

/// The SELECT for `source`, ordered so reports come out in a stable order.
pub fn select_statement(source: &Source) -> Result<String, DbError> {
    let table = quote_identifier("table", &source.table)?;
    let shop = quote_identifier("shop column", &source.shop_column)?;
    let token = quote_identifier("token column", &source.token_column)?;
    Ok(format!("SELECT {shop}, {token} FROM {table} ORDER BY {shop}"))
}

/// TLS settings from the URL's `ssl-mode` parameter (MySQL's client names:
/// `DISABLED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`) and `ssl-ca` (a
/// PEM file of CA certificates). Both are taken out of the URL, which then
/// goes to the driver with its own parameters untouched.
pub fn connection_opts(url: &DatabaseUrl) -> Result<Opts, DbError> {
    let bad = |message: String| DbError::Url {
        url: url.redacted(),
        message: url.scrub(&message),
    };
    let mut parsed = url::Url::parse(&url.0).map_err(|e| bad(e.to_string()))?;
    let mut mode = None;
    let mut ca = None;
    let mut rest = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "ssl-mode" | "ssl_mode" | "sslmode" => mode = Some(v.to_ascii_uppercase()),
            "ssl-ca" | "ssl_ca" | "sslrootcert" => ca = Some(v.into_owned()),
            _ => rest.push((k.into_owned(), v.into_owned())),
        }
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    let opts = Opts::from_url(parsed.as_str()).map_err(|e| bad(e.to_string()))?;
    let ssl = match mode.as_deref() {
        None => return Ok(opts),
        Some("DISABLED") => None,
        // MySQL's REQUIRED encrypts without checking who answers.
        Some("REQUIRED") => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        Some("VERIFY_CA") => Some(SslOpts::default().with_danger_skip_domain_validation(true)),
        Some("VERIFY_IDENTITY") => Some(SslOpts::default()),
        Some(other) => {
            return Err(bad(format!(
                "ssl-mode={other} is not supported (DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)"
            )));
        }
    };
    let ssl = match (ssl, ca) {
        (Some(s), Some(ca)) => Some(s.with_root_certs(vec![std::path::PathBuf::from(ca).into()])),
        (None, Some(_)) => return Err(bad("ssl-ca needs an ssl-mode other than DISABLED".into())),
        (s, None) => s,
    };
    Ok(OptsBuilder::from_opts(opts).ssl_opts(ssl).into())
}

/// One column value as the text protocol delivers it; `None` is NULL.
type Cell = Option<Vec<u8>>;

/// Reads every row of the table. A NULL stays `None`; the driver's text
/// protocol hands every other value over as bytes, whatever the column type.
pub async fn fetch_rows(source: &Source) -> Result<Vec<RawRow>, DbError> {
    let statement = select_statement(source)?;
    let opts = connection_opts(&source.url)?;
    let url = source.url.redacted();
    let connect_error = |message: String| DbError::Connect {
        url: url.clone(),
        message: source.url.scrub(&message),
    };
    let mut conn = match tokio::time::timeout(source.connect_timeout, mysql_async::Conn::new(opts)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(connect_error(e.to_string())),
        Err(_) => {
            return Err(connect_error(format!(
                "no answer within {:?}",
                source.connect_timeout
            )));
        }
    };
    let result: Result<Vec<(Cell, Cell)>, _> = conn.query(statement).await;
    let _ = conn.disconnect().await;
    let rows = result.map_err(|e| DbError::Query {
        table: source.table.clone(),
        shop: source.shop_column.clone(),
        token: source.token_column.clone(),
        url: url.clone(),
        message: source.url.scrub(&e.to_string()),
    })?;
    Ok(rows
        .into_iter()
        .map(|(shop, token)| RawRow {
            shop,
            // A token that is not UTF-8 can't be a Shopify token; keep it
            // (lossily) so validation rejects it by content, not by type.
            token: token.map(|t| AccessToken::new(String::from_utf8_lossy(&t).into_owned())),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> DatabaseUrl {
        DatabaseUrl::parse(s).unwrap()
    }

    #[test]
    fn identifiers_are_checked_and_quoted() {
        assert_eq!(
            quote_identifier("table", "shopify_app_admin_clients").unwrap(),
            "`shopify_app_admin_clients`"
        );
        assert_eq!(quote_identifier("table", "Tokens2").unwrap(), "`Tokens2`");
        for bad in [
            "",
            "a b",
            "a`b",
            "t; DROP TABLE x",
            "db.table",
            "naïve",
            &"x".repeat(65),
        ] {
            let err = quote_identifier("shop column", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid shop column name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_select_quotes_every_name() {
        let source = Source {
            url: url("mysql://u@h/db"),
            table: "clients".into(),
            shop_column: "domain".into(),
            token_column: "secret".into(),
            connect_timeout: Duration::from_secs(1),
        };
        assert_eq!(
            select_statement(&source).unwrap(),
            "SELECT `domain`, `secret` FROM `clients` ORDER BY `domain`"
        );
        let bad = Source {
            token_column: "token` FROM x; --".into(),
            ..source
        };
        assert!(select_statement(&bad).is_err());
    }

    #[test]
    fn the_password_is_redacted_in_every_form() {
        let u = url("mysql://oms:s3cr%40t@db.internal:3306/oms");
        assert_eq!(u.redacted(), "mysql://oms:***@db.internal:3306/oms");
        assert_eq!(format!("{u:?}"), "mysql://oms:***@db.internal:3306/oms");
        assert_eq!(u.scrub("x s3cr@t y s3cr%40t z"), "x *** y *** z");
        let broken = url("mysql://oms:hunter2@[bad/oms");
        assert!(!format!("{broken:?}").contains("hunter2"));
        assert_eq!(broken.scrub("say hunter2"), "say ***");
        assert_eq!(url("mysql://oms@db/oms").redacted(), "mysql://oms@db/oms");
    }

    #[test]
    fn ssl_mode_selects_tls_settings() {
        let plain = connection_opts(&url("mysql://u:p@h:3307/db")).unwrap();
        assert!(plain.ssl_opts().is_none());
        assert_eq!(plain.tcp_port(), 3307);
        assert_eq!(plain.pass(), Some("p"));
        let required = connection_opts(&url("mysql://u:p@h/db?ssl-mode=required")).unwrap();
        let s = required.ssl_opts().expect("TLS on");
        assert!(s.accept_invalid_certs() && s.skip_domain_validation());
        let verify = connection_opts(&url(
            "mysql://u:p@h/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem&prefer_socket=false",
        ))
        .unwrap();
        let s = verify.ssl_opts().expect("TLS on");
        assert!(!s.accept_invalid_certs() && !s.skip_domain_validation());
        assert_eq!(s.root_certs().len(), 1);
        assert!(!verify.prefer_socket());
        let ca = connection_opts(&url("mysql://u:p@h/db?ssl-mode=VERIFY_CA")).unwrap();
        assert!(ca.ssl_opts().unwrap().skip_domain_validation());
        assert!(
            connection_opts(&url("mysql://u:p@h/db?ssl-mode=DISABLED"))
                .unwrap()
                .ssl_opts()
                .is_none()
        );
    }

    #[test]
    fn url_errors_name_the_problem_but_not_the_password() {
        for (u, want) in [
            (
                "mysql://u:pw123@h/db?ssl-mode=preferred",
                "ssl-mode=PREFERRED is not supported",
            ),
            ("postgres://u:pw123@h/db", "pw123"),
            ("mysql://u:pw123@h/db?bogus=1", "bogus"),
        ] {
            let err = connection_opts(&url(u)).unwrap_err().to_string();
            if want == "pw123" {
                assert!(
                    err.starts_with("invalid database URL postgres://u:***@h/db"),
                    "{err}"
                );
            } else {
                assert!(err.contains(want), "{u}: {err}");
            }
            assert!(!err.contains("pw123"), "{err}");
        }
    }
}
