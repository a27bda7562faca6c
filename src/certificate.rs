//! The certificate gate's check: does a `kubernetes.io/tls` Secret hold a
//! certificate that serves a host, now and for a margin ahead?
//!
//! Before the operator repoints a shop's Shopify webhooks to a new host,
//! that host must be able to serve HTTPS, or every delivery Shopify sends
//! there fails. This module is the pure half of that gate: it judges a
//! Secret's `type` and `tls.crt` bytes and answers either what was checked
//! ([`Served`]) or what is wrong ([`CertificateProblem`], whose Display is a
//! short message fit for a status condition). A leaf: no network, no
//! Kubernetes, no clock (the caller passes `now`), so every case is a unit
//! test. It never sees `tls.key`, so no message can leak it; the certificate
//! itself is public.
//!
//! What it checks is what a modern TLS client checks about names and dates;
//! it does not verify the chain of trust (that needs the client's roots).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// The Secret type a serving certificate lives in.
const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Kubernetes' own limit on a whole Secret: a `tls.crt` larger than this did
/// not come from the API server, and is refused before any parsing.
const MAX_TLS_CRT_BYTES: usize = 1024 * 1024;

/// At most this many names are listed in a message (status conditions are
/// read by people, and a certificate may carry hundreds of names).
const MAX_LISTED_NAMES: usize = 10;

/// What is wrong with a TLS Secret's certificate for a host.
///
/// Each variant's Display is a short human message naming the facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    /// The Secret is not of type `kubernetes.io/tls`.
    #[error("not a kubernetes.io/tls Secret (type {})", printable(type_))]
    WrongType {
        /// The Secret's type (`Opaque` when it had none: the API's default).
        type_: String,
    },
    /// The Secret has no `tls.crt` key.
    #[error("no tls.crt")]
    MissingCertificate,
    /// `tls.crt` is not a PEM X.509 certificate (first block); the detail
    /// names what was found, never the bytes.
    #[error("tls.crt is not a PEM certificate: {0}")]
    Unparseable(String),
    /// None of the certificate's DNS names covers the host.
    #[error("the certificate covers {}, not {}", listed(names), printable(host))]
    NamesDoNotCover {
        /// The host that had to be covered.
        host: String,
        /// The certificate's subjectAltName DNS names; when it has no
        /// subjectAltName at all, its subject CNs marked `(CN only, not used)`.
        names: Vec<String>,
    },
    /// The certificate's validity starts after `now`.
    #[error("not valid before {}", rfc3339(not_before))]
    NotYetValid {
        /// Start of the validity window.
        not_before: DateTime<Utc>,
    },
    /// The certificate's validity ended before `now`.
    #[error("expired at {}", rfc3339(not_after))]
    Expired {
        /// End of the validity window.
        not_after: DateTime<Utc>,
    },
    /// The certificate is valid now but ends within `margin` of `now`.
    #[error("expires at {} (within the {} margin)", rfc3339(not_after), short_duration(*margin))]
    ExpiresWithinMargin {
        /// End of the validity window.
        not_after: DateTime<Utc>,
        /// The margin asked for.
        margin: Duration,
    },
}

/// A certificate that serves the host: what was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The leaf certificate's subjectAltName DNS names.
    pub names: Vec<String>,
    /// End of the leaf certificate's validity window.
    pub not_after: DateTime<Utc>,
}

/// Checks a Secret's `type` and `data` (`tls.crt` PEM, leaf = first
/// certificate) for `host` at `now`, refusing one that expires within
/// `margin`.
///
/// The first PEM block of `tls.crt` must be a `CERTIFICATE` (the leaf, as
/// ingress controllers and TLS servers read it); later blocks (the chain)
/// are not looked at. Checks run in this order: Secret type, presence,
/// parsing, names, then dates (valid from `not_before` to `not_after`
/// inclusive; refused when `not_after < now + margin`).
///
/// Names are the subjectAltName DNS entries only. A certificate with no
/// subjectAltName extension is refused even if its subject CN is the host:
/// modern clients (browsers, rustls, Go, and Shopify's HTTP client among
/// them) ignore the CN, so such a certificate would fail at delivery. Its
/// CNs are listed in [`CertificateProblem::NamesDoNotCover`] as
/// `NAME (CN only, not used)` so the message says why.
pub fn check(
    secret_type: Option<&str>,
    tls_crt: Option<&[u8]>,
    host: &str,
    now: DateTime<Utc>,
    margin: Duration,
) -> Result<Served, CertificateProblem> {
    // The API server stores an empty type as `Opaque`.
    let type_ = secret_type.filter(|t| !t.is_empty()).unwrap_or("Opaque");
    if type_ != TLS_SECRET_TYPE {
        return Err(CertificateProblem::WrongType {
            type_: type_.to_owned(),
        });
    }
    let tls_crt = tls_crt.ok_or(CertificateProblem::MissingCertificate)?;
    let leaf = leaf_block(tls_crt)?;
    let cert = parse_leaf(&leaf.contents)?;

    let (names, from_san) = dns_names(&cert)?;
    if !from_san || !names.iter().any(|name| name_covers(name, host)) {
        return Err(CertificateProblem::NamesDoNotCover {
            host: host.to_owned(),
            names,
        });
    }

    let validity = cert.validity();
    let not_before = DateTime::from_timestamp(validity.not_before.timestamp(), 0);
    let not_after = DateTime::from_timestamp(validity.not_after.timestamp(), 0);
    let (Some(not_before), Some(not_after)) = (not_before, not_after) else {
        return Err(unparseable("its validity dates are out of range"));
    };
    if now < not_before {
        return Err(CertificateProblem::NotYetValid { not_before });
    }
    if now > not_after {
        return Err(CertificateProblem::Expired { not_after });
    }
    // A margin too large to add to `now` covers any certificate.
    let deadline = TimeDelta::from_std(margin)
        .ok()
        .and_then(|margin| now.checked_add_signed(margin));
    if deadline.is_none_or(|deadline| not_after < deadline) {
        return Err(CertificateProblem::ExpiresWithinMargin { not_after, margin });
    }
    Ok(Served { names, not_after })
}

/// RFC 6125 §6.4.3 as browsers apply it: `pattern` (a DNS SAN) matches
/// `host` exactly (ASCII case-insensitive, trailing dot ignored), or
/// `pattern` is `*.rest` and `host` is one label followed by `.rest` (the
/// wildcard covers exactly one left-most label, never several, never a
/// partial label like `f*.example.com`, never a bare `*` or `*.com`-style
/// pattern with fewer than two labels after the star).
///
/// Empty names, names with empty labels and hosts containing `*` match
/// nothing; a wildcard never matches an IPv4 address.
pub fn name_covers(pattern: &str, host: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    let host = host.strip_suffix('.').unwrap_or(host);
    if !well_formed(host) || host.contains('*') {
        return false;
    }
    match pattern.strip_prefix("*.") {
        None => well_formed(pattern) && !pattern.contains('*') && pattern.eq_ignore_ascii_case(host),
        Some(rest) => {
            if !well_formed(rest) || rest.contains('*') || !rest.contains('.') {
                return false;
            }
            if host.parse::<std::net::Ipv4Addr>().is_ok() {
                return false;
            }
            host.split_once('.')
                .is_some_and(|(_label, host_rest)| host_rest.eq_ignore_ascii_case(rest))
        }
    }
}

/// Non-empty, and no empty label (`a..b`, `.a`, `a.`).
fn well_formed(name: &str) -> bool {
    !name.is_empty() && name.split('.').all(|label| !label.is_empty())
}

/// The first PEM block of `tls_crt`, which must be a certificate.
fn leaf_block(tls_crt: &[u8]) -> Result<Pem, CertificateProblem> {
    if tls_crt.len() > MAX_TLS_CRT_BYTES {
        return Err(unparseable(format!(
            "it is {} bytes, over Kubernetes' 1 MiB Secret limit",
            tls_crt.len()
        )));
    }
    if tls_crt.iter().all(u8::is_ascii_whitespace) {
        return Err(unparseable("it is empty"));
    }
    match Pem::iter_from_buffer(tls_crt).next() {
        None => Err(unparseable("no -----BEGIN CERTIFICATE----- block")),
        Some(Err(e)) => Err(unparseable(format!("its first PEM block is malformed ({e})"))),
        Some(Ok(pem)) if pem.label != "CERTIFICATE" => Err(unparseable(format!(
            "its first PEM block is {}, not CERTIFICATE",
            printable(&pem.label)
        ))),
        Some(Ok(pem)) => Ok(pem),
    }
}

/// The leaf certificate from a `CERTIFICATE` block's DER.
fn parse_leaf(der: &[u8]) -> Result<X509Certificate<'_>, CertificateProblem> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(unparseable("its first block has bytes after the certificate")),
        // X509Error's messages name the ASN.1 fault, never the input bytes.
        Err(e) => Err(unparseable(format!(
            "its first block is not an X.509 certificate ({})",
            X509Error::from(e)
        ))),
    }
}

/// The certificate's subjectAltName DNS names and `true`; with no
/// subjectAltName extension, its CNs marked as unused and `false`.
fn dns_names(cert: &X509Certificate<'_>) -> Result<(Vec<String>, bool), CertificateProblem> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| unparseable(format!("its subjectAltName is invalid ({e})")))?;
    Ok(match san {
        Some(san) => {
            let names = san.value.general_names.iter().filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            });
            (names.collect(), true)
        }
        None => {
            let cns = cert.subject().iter_common_name().map(|cn| {
                let cn = cn.as_str().unwrap_or("(not text)");
                format!("{cn} (CN only, not used)")
            });
            (cns.collect(), false)
        }
    })
}

fn unparseable(detail: impl Into<String>) -> CertificateProblem {
    CertificateProblem::Unparseable(detail.into())
}

/// `s` with control characters shown as `?` and cut to 256 characters:
/// the Secret and the certificate are not ours, the message is.
fn printable(s: &str) -> String {
    const MAX: usize = 256;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// `a, b, c` (at most [`MAX_LISTED_NAMES`], then `and N more`), or `no DNS name`.
fn listed(names: &[String]) -> String {
    if names.is_empty() {
        return "no DNS name".to_owned();
    }
    let mut out: Vec<String> = names
        .iter()
        .take(MAX_LISTED_NAMES)
        .map(|n| printable(n))
        .collect();
    if names.len() > MAX_LISTED_NAMES {
        out.push(format!("and {} more", names.len() - MAX_LISTED_NAMES));
    }
    out.join(", ")
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `24h`, `90m`, `45s`: the largest unit that divides the margin exactly.
fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;
    use rcgen::{CertificateParams, DnType, Issuer, KeyPair, date_time_ymd};

    const TLS: Option<&str> = Some("kubernetes.io/tls");
    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn at(rfc3339: &str) -> DateTime<Utc> {
        rfc3339.parse().expect("a test time")
    }

    /// Self-signed, valid 2026-01-01T00:00:00Z to 2026-12-01T00:00:00Z.
    fn params(names: &[&str]) -> CertificateParams {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.not_before = date_time_ymd(2026, 1, 1);
        params.not_after = date_time_ymd(2026, 12, 1);
        params
    }

    fn pem(names: &[&str]) -> String {
        let key = KeyPair::generate().expect("key");
        params(names).self_signed(&key).expect("cert").pem()
    }

    /// `pem(names)` checked for `host` at `now` with a 24h margin.
    fn check_at(names: &[&str], host: &str, now: &str) -> Result<Served, CertificateProblem> {
        check(TLS, Some(pem(names).as_bytes()), host, at(now), DAY)
    }

    fn unparseable_detail(result: Result<Served, CertificateProblem>) -> String {
        match result {
            Err(CertificateProblem::Unparseable(detail)) => detail,
            other => panic!("expected Unparseable, got {other:?}"),
        }
    }

    #[test]
    fn exact_host_matches() {
        assert!(name_covers("shop.example.com", "shop.example.com"));
        assert!(!name_covers("shop.example.com", "hop.example.com"));
        assert!(!name_covers("shop.example.com", "shop.example.co"));
        assert!(!name_covers("", ""));
        assert!(!name_covers("a..com", "a..com"));
    }

    #[test]
    fn case_and_trailing_dot_are_ignored() {
        assert!(name_covers("Shop.Example.COM", "shop.example.com"));
        assert!(name_covers("shop.example.com.", "SHOP.example.com"));
        assert!(name_covers("shop.example.com", "shop.example.com."));
        assert!(name_covers("*.Example.com.", "Shop.example.COM."));
    }

    #[test]
    fn wildcard_covers_exactly_one_label() {
        assert!(name_covers("*.example.com", "shop.example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", ".example.com"));
        assert!(!name_covers("*.example.com", "shop.example.org"));
    }

    #[test]
    fn partial_bare_and_short_wildcards_are_refused() {
        assert!(!name_covers("f*.example.com", "foo.example.com"));
        assert!(!name_covers("*oo.example.com", "foo.example.com"));
        assert!(!name_covers("shop.*.com", "shop.example.com"));
        assert!(!name_covers("*.*.com", "a.b.com"));
        assert!(!name_covers("*", "localhost"));
        assert!(!name_covers("*.com", "example.com"));
        assert!(!name_covers("*.", "example."));
        assert!(!name_covers("*.0.0.1", "127.0.0.1"));
        // A literal `*` in the host is never a name.
        assert!(!name_covers("*.example.com", "*.example.com"));
    }

    #[test]
    fn a_certificate_for_other_names_lists_them() {
        let result = check_at(
            &["*.example.com", "shop.example.com"],
            "oms.popsockets.com",
            "2026-06-01T00:00:00Z",
        );
        let problem = result.expect_err("other names");
        assert_eq!(
            problem,
            CertificateProblem::NamesDoNotCover {
                host: "oms.popsockets.com".to_owned(),
                names: vec!["*.example.com".to_owned(), "shop.example.com".to_owned()],
            }
        );
        assert_eq!(
            problem.to_string(),
            "the certificate covers *.example.com, shop.example.com, not oms.popsockets.com"
        );
    }

    #[test]
    fn a_wildcard_certificate_serves_one_label_only() {
        let ok = check_at(&["*.example.com"], "oms.example.com", "2026-06-01T00:00:00Z");
        assert_eq!(ok.expect("served").names, vec!["*.example.com".to_owned()]);
        let deep = check_at(&["*.example.com"], "a.oms.example.com", "2026-06-01T00:00:00Z");
        assert!(matches!(deep, Err(CertificateProblem::NamesDoNotCover { .. })));
    }

    #[test]
    fn a_cn_only_certificate_is_refused_naming_the_cn() {
        let mut params = params(&[]);
        params
            .distinguished_name
            .push(DnType::CommonName, "shop.example.com");
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("cert").pem();
        let problem = check(
            TLS,
            Some(pem.as_bytes()),
            "shop.example.com",
            at("2026-06-01T00:00:00Z"),
            DAY,
        )
        .expect_err("CN only");
        assert_eq!(
            problem.to_string(),
            "the certificate covers shop.example.com (CN only, not used), not shop.example.com"
        );
    }

    #[test]
    fn a_certificate_with_no_dns_name_says_so() {
        let problem =
            check_at(&["10.0.0.1"], "shop.example.com", "2026-06-01T00:00:00Z").expect_err("IP SAN only");
        assert_eq!(
            problem.to_string(),
            "the certificate covers no DNS name, not shop.example.com"
        );
    }

    #[test]
    fn expired() {
        let problem =
            check_at(&["shop.example.com"], "shop.example.com", "2026-12-01T00:00:01Z").expect_err("expired");
        assert_eq!(
            problem,
            CertificateProblem::Expired {
                not_after: at("2026-12-01T00:00:00Z")
            }
        );
        assert_eq!(problem.to_string(), "expired at 2026-12-01T00:00:00Z");
    }

    #[test]
    fn not_yet_valid() {
        let problem = check_at(&["shop.example.com"], "shop.example.com", "2025-12-31T23:59:59Z")
            .expect_err("not yet valid");
        assert_eq!(
            problem,
            CertificateProblem::NotYetValid {
                not_before: at("2026-01-01T00:00:00Z")
            }
        );
        assert_eq!(problem.to_string(), "not valid before 2026-01-01T00:00:00Z");
    }

    #[test]
    fn expiring_within_the_margin_is_refused() {
        // Two hours left, 24h asked for.
        let problem = check_at(&["shop.example.com"], "shop.example.com", "2026-11-30T22:00:00Z")
            .expect_err("within margin");
        assert_eq!(
            problem,
            CertificateProblem::ExpiresWithinMargin {
                not_after: at("2026-12-01T00:00:00Z"),
                margin: DAY
            }
        );
        assert_eq!(
            problem.to_string(),
            "expires at 2026-12-01T00:00:00Z (within the 24h margin)"
        );
        // Exactly the margin left is enough; a margin too large for any date is not.
        assert!(check_at(&["shop.example.com"], "shop.example.com", "2026-11-30T00:00:00Z").is_ok());
        let pem = pem(&["shop.example.com"]);
        let huge = check(
            TLS,
            Some(pem.as_bytes()),
            "shop.example.com",
            at("2026-06-01T00:00:00Z"),
            Duration::MAX,
        );
        assert!(matches!(
            huge,
            Err(CertificateProblem::ExpiresWithinMargin { .. })
        ));
    }

    #[test]
    fn a_valid_certificate_is_served() {
        // Thirty days left.
        let served = check_at(
            &["shop.example.com", "oms.example.com"],
            "OMS.example.com.",
            "2026-11-01T00:00:00Z",
        )
        .expect("served");
        assert_eq!(
            served,
            Served {
                names: vec!["shop.example.com".to_owned(), "oms.example.com".to_owned()],
                not_after: at("2026-12-01T00:00:00Z"),
            }
        );
    }

    #[test]
    fn wrong_secret_type() {
        let pem = pem(&["shop.example.com"]);
        let now = at("2026-06-01T00:00:00Z");
        let opaque = check(Some("Opaque"), Some(pem.as_bytes()), "shop.example.com", now, DAY);
        let problem = opaque.expect_err("Opaque");
        assert_eq!(
            problem,
            CertificateProblem::WrongType {
                type_: "Opaque".to_owned()
            }
        );
        assert_eq!(
            problem.to_string(),
            "not a kubernetes.io/tls Secret (type Opaque)"
        );
        // No type is the API's default, Opaque.
        let none = check(None, Some(pem.as_bytes()), "shop.example.com", now, DAY);
        assert_eq!(none, Err(problem));
    }

    #[test]
    fn missing_tls_crt() {
        let result = check(TLS, None, "shop.example.com", at("2026-06-01T00:00:00Z"), DAY);
        assert_eq!(result, Err(CertificateProblem::MissingCertificate));
        assert_eq!(CertificateProblem::MissingCertificate.to_string(), "no tls.crt");
    }

    fn check_bytes(bytes: &[u8]) -> Result<Served, CertificateProblem> {
        check(
            TLS,
            Some(bytes),
            "shop.example.com",
            at("2026-06-01T00:00:00Z"),
            DAY,
        )
    }

    #[test]
    fn garbage_empty_der_and_huge_inputs_are_unparseable() {
        assert_eq!(unparseable_detail(check_bytes(b"")), "it is empty");
        assert_eq!(unparseable_detail(check_bytes(b" \n\t\n")), "it is empty");
        assert_eq!(
            unparseable_detail(check_bytes(b"hello, not a certificate")),
            "no -----BEGIN CERTIFICATE----- block"
        );
        let key = KeyPair::generate().expect("key");
        let der = params(&["shop.example.com"])
            .self_signed(&key)
            .expect("cert")
            .der()
            .to_vec();
        assert_eq!(
            unparseable_detail(check_bytes(&der)),
            "no -----BEGIN CERTIFICATE----- block"
        );
        let bad_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(unparseable_detail(check_bytes(bad_base64)).contains("malformed"));
        let not_der = b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        assert!(unparseable_detail(check_bytes(not_der)).contains("not an X.509 certificate"));
        let unterminated = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
        assert!(unparseable_detail(check_bytes(unterminated)).contains("malformed"));
        let huge = vec![b'A'; MAX_TLS_CRT_BYTES + 1];
        assert!(unparseable_detail(check_bytes(&huge)).contains("over Kubernetes' 1 MiB"));
        let problem = check_bytes(b"").expect_err("empty");
        assert_eq!(
            problem.to_string(),
            "tls.crt is not a PEM certificate: it is empty"
        );
    }

    #[test]
    fn a_first_block_that_is_a_key_or_a_csr_is_refused_without_its_contents() {
        let key = KeyPair::generate().expect("key");
        let key_pem = key.serialize_pem();
        let cert_pem = params(&["shop.example.com"])
            .self_signed(&key)
            .expect("cert")
            .pem();
        let key_first = format!("{key_pem}{cert_pem}");
        let problem = check_bytes(key_first.as_bytes()).expect_err("key first");
        assert_eq!(
            problem.to_string(),
            "tls.crt is not a PEM certificate: its first PEM block is PRIVATE KEY, not CERTIFICATE"
        );
        // Nothing of the key's base64 body is in the message.
        let body_line = key_pem.lines().nth(1).expect("a body line");
        assert!(!problem.to_string().contains(body_line));

        let csr = params(&["shop.example.com"])
            .serialize_request(&key)
            .expect("csr");
        let csr_pem = csr.pem().expect("csr pem");
        assert_eq!(
            unparseable_detail(check_bytes(csr_pem.as_bytes())),
            "its first PEM block is CERTIFICATE REQUEST, not CERTIFICATE"
        );
    }

    #[test]
    fn a_chain_is_judged_by_its_first_certificate_the_leaf() {
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = params(&[]);
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Test CA");
        let ca_pem = ca_params.self_signed(&ca_key).expect("ca").pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf_params = params(&["shop.example.com"]);
        leaf_params.not_after = date_time_ymd(2026, 11, 15);
        let leaf_pem = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf").pem();

        let chain = format!("{leaf_pem}{ca_pem}");
        let served = check_bytes(chain.as_bytes()).expect("leaf serves");
        assert_eq!(served.names, vec!["shop.example.com".to_owned()]);
        assert_eq!(served.not_after, at("2026-11-15T00:00:00Z"));

        // The CA first: the CA is what is judged (and it names no host).
        let reversed = format!("{ca_pem}{leaf_pem}");
        assert!(matches!(
            check_bytes(reversed.as_bytes()),
            Err(CertificateProblem::NamesDoNotCover { .. })
        ));
    }

    #[test]
    fn long_name_lists_and_control_characters_are_kept_short_and_printable() {
        let names: Vec<String> = (0..12).map(|i| format!("n{i}.example.com")).collect();
        let problem = CertificateProblem::NamesDoNotCover {
            host: "a\nb".to_owned(),
            names,
        };
        let message = problem.to_string();
        assert!(
            message.ends_with("n9.example.com, and 2 more, not a?b"),
            "{message}"
        );
        assert_eq!(short_duration(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(short_duration(Duration::from_secs(45)), "45s");
    }

    /// Every truncation and every one-byte flip of a real certificate, as
    /// PEM and as re-encoded DER, gives an answer and no panic.
    #[test]
    fn mangled_certificates_never_panic() {
        let key = KeyPair::generate().expect("key");
        let cert = params(&["shop.example.com"]).self_signed(&key).expect("cert");
        let pem = cert.pem();
        for end in 0..=pem.len() {
            let _ = check_bytes(&pem.as_bytes()[..end]);
        }
        let der = cert.der().to_vec();
        let base64 = base64::engine::general_purpose::STANDARD;
        for i in 0..der.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut mangled = der.clone();
                mangled[i] ^= flip;
                let block = format!(
                    "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                    base64.encode(&mangled)
                );
                let _ = check_bytes(block.as_bytes());
            }
        }
        for end in 0..der.len() {
            let block = format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64.encode(&der[..end])
            );
            assert!(check_bytes(block.as_bytes()).is_err());
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            prop_assert!(check_bytes(&bytes).is_err());
        }

        #[test]
        fn random_pem_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut block = b"-----BEGIN CERTIFICATE-----\n".to_vec();
            block.extend_from_slice(&body);
            block.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
            let _ = check_bytes(&block);
        }

        #[test]
        fn name_covers_never_panics(pattern in ".{0,40}", host in ".{0,40}") {
            let _ = name_covers(&pattern, &host);
        }
    }
}
