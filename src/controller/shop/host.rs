//! Which host a shop's webhooks point at: `spec.webhooks.endpoint.host`, or
//! the referenced Ingress's. Pure; the Ingress is fetched by the caller.
//!
//! The Ingress rule: the first rule with a non-wildcard host. When the
//! Ingress has a `tls` section, the first rule whose host is listed in a
//! `tls[].hosts` wins instead — Shopify only delivers over HTTPS, so a host
//! the Ingress serves with a certificate is the one that can receive. (With
//! no `tls` section TLS is assumed to end in front of the Ingress, e.g. at a
//! cloud load balancer, and the first host is used.)

use k8s_openapi::api::networking::v1::Ingress;

use crate::controller::conditions::Reason;

/// Why no host could be had. Each variant is a condition reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The referenced Ingress does not exist.
    IngressNotFound(String),
    /// The Ingress has no rule with a usable host.
    IngressHostMissing(String),
    /// The host is not a public DNS name we would send deliveries to.
    InvalidHost(String),
}

impl HostError {
    /// CamelCase condition reason.
    pub fn reason(&self) -> Reason {
        match self {
            HostError::IngressNotFound(_) => Reason::IngressNotFound,
            HostError::IngressHostMissing(_) => Reason::IngressHostMissing,
            HostError::InvalidHost(_) => Reason::InvalidHost,
        }
    }

    /// Message for people.
    pub fn message(&self) -> String {
        match self {
            HostError::IngressNotFound(name) => {
                format!("Ingress {name} not found; subscriptions are left where they point")
            }
            HostError::IngressHostMissing(name) => format!(
                "Ingress {name} has no rule with a (non-wildcard) host; subscriptions are left where they point"
            ),
            HostError::InvalidHost(host) => {
                format!("host {host:?} is not a public DNS name; subscriptions are left where they point")
            }
        }
    }
}

/// The host webhooks should point at, and how its certificate is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The host.
    pub host: String,
    /// Where its certificate is.
    pub tls: Tls,
}

/// How a host's certificate is known, for the certificate gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tls {
    /// Not checked, and why: a fixed host without `tlsSecretRef`, or an
    /// Ingress without `tls` (TLS ends in front of it).
    Trusted(&'static str),
    /// The `kubernetes.io/tls` Secret that holds the host's certificate.
    Secret(String),
    /// The Ingress has a `tls` section, but no entry serves the host from a
    /// Secret: what is wrong.
    NotServed(String),
}

/// How the Ingress serves `host` over TLS: the `tls[]` entry that lists it
/// (an entry without `hosts` serves every host) names the Secret.
pub fn ingress_tls(ingress: &Ingress, host: &str) -> Tls {
    let entries = ingress
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_ref())
        .filter(|t| !t.is_empty());
    let Some(entries) = entries else {
        return Tls::Trusted("the Ingress has no tls section: TLS ends in front of it");
    };
    let serving = entries.iter().find(|t| {
        t.hosts
            .as_ref()
            .is_none_or(|hosts| hosts.is_empty() || hosts.iter().any(|h| h == host))
    });
    match serving.map(|t| t.secret_name.as_deref().filter(|n| !n.is_empty())) {
        Some(Some(secret)) => Tls::Secret(secret.to_string()),
        Some(None) => Tls::NotServed(format!(
            "the Ingress's tls entry for {host} names no secretName (the controller's default certificate cannot be checked)"
        )),
        None => Tls::NotServed(format!("no tls entry of the Ingress lists {host}")),
    }
}

/// The host an Ingress publishes, by the rule in the module docs.
pub fn ingress_host(ingress: &Ingress) -> Option<String> {
    let spec = ingress.spec.as_ref()?;
    let hosts: Vec<&str> = spec
        .rules
        .iter()
        .flatten()
        .filter_map(|r| r.host.as_deref())
        .filter(|h| !h.is_empty() && !h.starts_with('*'))
        .collect();
    let tls_hosts: Vec<&str> = spec
        .tls
        .iter()
        .flatten()
        .flat_map(|t| t.hosts.iter().flatten())
        .map(String::as_str)
        .collect();
    if !tls_hosts.is_empty()
        && let Some(h) = hosts.iter().find(|h| tls_hosts.contains(h))
    {
        return Some(h.to_string());
    }
    hosts.first().map(|h| h.to_string())
}

/// Checks that `host` is a lower-case public DNS name (at least two labels,
/// not an IP address, not localhost) — the same rule the CRD applies to
/// `endpoint.host`, re-checked because an Ingress host is not validated by
/// our schema.
pub fn validate_host(host: &str) -> Result<(), HostError> {
    let bad = || Err(HostError::InvalidHost(host.to_string()));
    if host.len() > 253 || !host.contains('.') {
        return bad();
    }
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return bad();
        }
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok()
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".internal")
        || host.ends_with(".svc")
        || host.ends_with(".cluster.local")
    {
        return bad();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_entry_listing_the_host_names_its_secret() {
        let i = ingress(
            "spec: {rules: [{host: oms.popsockets.com}], tls: [{hosts: [other.example.com], secretName: other}, {hosts: [oms.popsockets.com], secretName: oms-tls}]}",
        );
        assert_eq!(
            ingress_tls(&i, "oms.popsockets.com"),
            Tls::Secret("oms-tls".into())
        );
        assert!(
            matches!(ingress_tls(&i, "new.popsockets.com"), Tls::NotServed(m) if m.contains("new.popsockets.com"))
        );
        let every = ingress("spec: {tls: [{secretName: wildcard}]}");
        assert_eq!(
            ingress_tls(&every, "x.example.com"),
            Tls::Secret("wildcard".into())
        );
        let default_cert = ingress("spec: {tls: [{hosts: [oms.popsockets.com]}]}");
        assert!(
            matches!(ingress_tls(&default_cert, "oms.popsockets.com"), Tls::NotServed(m) if m.contains("secretName"))
        );
        let plain = ingress("spec: {rules: [{host: oms.popsockets.com}]}");
        assert!(matches!(
            ingress_tls(&plain, "oms.popsockets.com"),
            Tls::Trusted(_)
        ));
    }

    fn ingress(yaml: &str) -> Ingress {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn first_rule_with_a_host() {
        let i = ingress(
            r#"
metadata: {name: oms}
spec:
  rules:
  - http: {paths: []}
  - host: "*.popsockets.com"
  - host: oms.popsockets.com
  - host: other.popsockets.com
"#,
        );
        assert_eq!(ingress_host(&i).as_deref(), Some("oms.popsockets.com"));
    }

    #[test]
    fn tls_host_is_preferred() {
        let i = ingress(
            r#"
metadata: {name: oms}
spec:
  tls: [{hosts: [secure.popsockets.com], secretName: tls}]
  rules:
  - host: plain.popsockets.com
  - host: secure.popsockets.com
"#,
        );
        assert_eq!(ingress_host(&i).as_deref(), Some("secure.popsockets.com"));
    }

    #[test]
    fn no_host() {
        assert_eq!(
            ingress_host(&ingress("metadata: {name: oms}\nspec: {defaultBackend: {}}")),
            None
        );
        assert_eq!(ingress_host(&ingress("metadata: {name: oms}")), None);
    }

    #[test]
    fn host_validation() {
        assert!(validate_host("oms.popsockets.com").is_ok());
        for bad in [
            "localhost",
            "127.0.0.1",
            "oms",
            "Oms.example.com",
            "a..b",
            "-a.com",
            "oms.default.svc",
            "x.local",
        ] {
            assert_eq!(
                validate_host(bad).unwrap_err().reason(),
                Reason::InvalidHost,
                "{bad}"
            );
        }
    }
}
