//! The certificate gate: webhooks move to a new host only once that host
//! can serve HTTPS — its TLS Secret holds a certificate that covers it and
//! stays valid beyond the margin, and cert-manager's `Certificate` for that
//! Secret (when cert-manager is installed) is Ready. A delivery to a host
//! without a certificate fails, Shopify retries 8 times over 4 hours and
//! then deletes the subscription: until the gate opens, subscriptions keep
//! their old address, which keeps receiving.
//!
//! Talks to the apiserver: reads the Secret (only when a shop is about to
//! move) and lists Certificates. The verdict is per Secret and host, not
//! per shop: a thousand shops moving to one host read the Secret once. It
//! is dropped when the Secret or the Certificate changes (both watched,
//! metadata only), and the shops held back are reconciled then.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};

use super::host::{Endpoint, Tls};
use crate::certificate;
use crate::crd::ShopifyShop;

/// cert-manager's `Certificate`.
pub fn certificate_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
        "certificates",
    )
}

/// The CRD whose presence says cert-manager is installed.
pub const CERTIFICATE_CRD: &str = "certificates.cert-manager.io";

/// How long a verdict is trusted without a watch event saying otherwise
/// (a missed event costs at most this).
const VERDICT_TTL: Duration = Duration::from_secs(300);

/// Why webhooks may not move yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is missing or wrong, for the condition.
    pub message: String,
    /// When to look again without an event (a certificate not valid yet).
    pub retry_in: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Verdict {
    result: Result<String, Refusal>,
    until: Instant,
    certificate: Option<String>,
}

/// Watched things a held-back shop waits for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Watched {
    Secret(String, String),
    Certificate(String, String),
}

/// The gate's state, shared by all reconciles.
#[derive(Default)]
pub struct Gate {
    cert_manager: OnceLock<bool>,
    verdicts: Mutex<HashMap<(String, String, String), Verdict>>,
    waiting: Mutex<HashMap<Watched, HashSet<ObjectRef<ShopifyShop>>>>,
}

impl Gate {
    /// Records whether cert-manager's CRD is installed (once, at start-up).
    pub fn set_cert_manager(&self, installed: bool) {
        let _ = self.cert_manager.set(installed);
    }

    fn cert_manager(&self) -> bool {
        self.cert_manager.get().copied().unwrap_or(false)
    }

    /// The shops held back by the Secret `ns/name`, whose verdicts are
    /// dropped: it changed.
    pub fn secret_changed(&self, ns: &str, name: &str) -> Vec<ObjectRef<ShopifyShop>> {
        self.forget(|(n, secret, _), _| n == ns && secret == name);
        self.take(&Watched::Secret(ns.into(), name.into()))
    }

    /// The shops held back by the Certificate `ns/name`: it changed.
    pub fn certificate_changed(&self, ns: &str, name: &str) -> Vec<ObjectRef<ShopifyShop>> {
        self.forget(|(n, _, _), v| n == ns && v.certificate.as_deref() == Some(name));
        self.take(&Watched::Certificate(ns.into(), name.into()))
    }

    fn forget(&self, matches: impl Fn(&(String, String, String), &Verdict) -> bool) {
        if let Ok(mut verdicts) = self.verdicts.lock() {
            verdicts.retain(|k, v| !matches(k, v));
        }
    }

    fn take(&self, what: &Watched) -> Vec<ObjectRef<ShopifyShop>> {
        self.waiting
            .lock()
            .map(|mut w| w.remove(what).unwrap_or_default().into_iter().collect())
            .unwrap_or_default()
    }

    fn hold(&self, shop: &ShopifyShop, what: Watched) {
        if let Ok(mut w) = self.waiting.lock() {
            w.entry(what).or_default().insert(ObjectRef::from_obj(shop));
        }
    }

    /// Whether `shop`'s webhooks may move to `endpoint`: `Ok` with what was
    /// checked, or why not. A shop refused is reconciled again when what it
    /// waits for changes.
    pub async fn check(
        &self,
        client: &Client,
        shop: &ShopifyShop,
        endpoint: &Endpoint,
        margin: Duration,
    ) -> Result<String, Refusal> {
        let secret = match &endpoint.tls {
            Tls::Trusted(why) => return Ok((*why).to_string()),
            Tls::NotServed(what) => {
                return Err(Refusal {
                    message: what.clone(),
                    retry_in: None,
                });
            }
            Tls::Secret(name) => name,
        };
        let ns = shop.namespace().unwrap_or_default();
        let key = (ns.clone(), secret.clone(), endpoint.host.clone());
        let cached = self
            .verdicts
            .lock()
            .ok()
            .and_then(|v| v.get(&key).cloned())
            .filter(|v| v.until > Instant::now());
        let verdict = match cached {
            Some(v) => v,
            None => {
                let v = self.judge(client, &ns, secret, &endpoint.host, margin).await;
                if let Ok(mut verdicts) = self.verdicts.lock() {
                    verdicts.insert(key, v.clone());
                }
                v
            }
        };
        if verdict.result.is_err() {
            self.hold(shop, Watched::Secret(ns.clone(), secret.clone()));
            if let Some(c) = &verdict.certificate {
                self.hold(shop, Watched::Certificate(ns, c.clone()));
            }
        }
        verdict.result
    }

    async fn judge(&self, client: &Client, ns: &str, secret: &str, host: &str, margin: Duration) -> Verdict {
        let refused = |message: String, retry_in: Option<Duration>, certificate: Option<String>| Verdict {
            result: Err(Refusal { message, retry_in }),
            until: Instant::now() + VERDICT_TTL,
            certificate,
        };
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let stored = match secrets.get_opt(secret).await {
            Ok(Some(s)) => s,
            Ok(None) => return refused(format!("TLS Secret {secret} not found"), None, None),
            Err(e) => {
                return refused(
                    format!("reading TLS Secret {secret}: {e}"),
                    Some(Duration::from_secs(10)),
                    None,
                );
            }
        };
        let crt = stored
            .data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .map(|b| b.0.as_slice());
        let now = chrono::Utc::now();
        let served = match certificate::check(stored.type_.as_deref(), crt, host, now, margin) {
            Ok(served) => served,
            Err(problem) => {
                let retry_in = match &problem {
                    certificate::CertificateProblem::NotYetValid { not_before } => (*not_before - now)
                        .to_std()
                        .ok()
                        .map(|d| d + Duration::from_secs(1)),
                    _ => None,
                };
                return refused(format!("TLS Secret {secret}: {problem}"), retry_in, None);
            }
        };
        let mut certificate = None;
        if self.cert_manager() {
            match issuing_certificate(client, ns, secret).await {
                Ok(None) => {}
                Ok(Some((name, None))) => certificate = Some(name),
                Ok(Some((name, Some(why)))) => {
                    return refused(
                        format!("cert-manager Certificate {name} for Secret {secret} is not Ready: {why}"),
                        None,
                        Some(name),
                    );
                }
                Err(e) => {
                    return refused(
                        format!("listing cert-manager Certificates: {e}"),
                        Some(Duration::from_secs(10)),
                        None,
                    );
                }
            }
        }
        // Trusted until the margin is reached (then the check says so).
        let left = (served.not_after - now).to_std().unwrap_or_default();
        let until = Instant::now() + VERDICT_TTL.min(left.saturating_sub(margin));
        Verdict {
            result: Ok(format!(
                "the certificate in Secret {secret} covers {host} until {}",
                served.not_after.to_rfc3339()
            )),
            until,
            certificate,
        }
    }
}

/// The Certificate that issues Secret `secret`, if any: its name, and why
/// it is not Ready (`None` when it is).
async fn issuing_certificate(
    client: &Client,
    ns: &str,
    secret: &str,
) -> Result<Option<(String, Option<String>)>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &certificate_resource());
    let list = api.list(&ListParams::default()).await?;
    let Some(cert) = list
        .items
        .iter()
        .find(|c| c.data["spec"]["secretName"].as_str() == Some(secret))
    else {
        return Ok(None);
    };
    let ready = cert.data["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    let why = match ready {
        Some(c) if c["status"] == "True" => None,
        Some(c) => Some(format!(
            "{}: {}",
            c["reason"].as_str().unwrap_or("NotReady"),
            c["message"].as_str().unwrap_or_default()
        )),
        None => Some("no Ready condition yet".to_string()),
    };
    Ok(Some((cert.name_any(), why)))
}
