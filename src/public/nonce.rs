//! Single use of an OAuth `state` across replicas: the first callback that
//! presents a nonce creates a Lease named after it in the operator's
//! namespace, and any later one — on this replica or another — gets
//! 409 AlreadyExists from the apiserver and is refused.
//!
//! Why a Lease: creating an object by name is the one atomic
//! check-and-set every apiserver offers without extra machinery (no
//! shared cache, no resourceVersion dance), a Lease carries no data and
//! is what the operator already creates for leader election, so its
//! RBAC is the same Role. Expired nonce Leases are deleted on later
//! callbacks (best effort; each is a few hundred bytes).
//!
//! Talks to the apiserver (create, list, delete Leases).

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};

/// Label of the nonce Leases.
pub const NONCE_LABEL: &str = "shopify-operator.dev/oauth-nonce";
/// Annotation with the Unix second after which the nonce's state could not
/// verify anyway (so its Lease may go).
const EXPIRES_ANNOTATION: &str = "shopify-operator.dev/expires";

/// Why a nonce could not be taken.
#[derive(Debug)]
pub enum TakeError {
    /// Taken before: a replayed callback.
    Replayed,
    /// The apiserver could not say.
    Api(kube::Error),
}

/// Records `nonce` (32 hex digits, checked by `state::verify`) as used
/// until `expiry`.
pub async fn take(client: &Client, ns: &str, nonce: &str, expiry: u64, now: u64) -> Result<(), TakeError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    sweep(&api, now).await;
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(format!("shopify-oauth-nonce-{nonce}")),
            labels: Some(BTreeMap::from([(NONCE_LABEL.to_string(), "true".to_string())])),
            annotations: Some(BTreeMap::from([(
                EXPIRES_ANNOTATION.to_string(),
                expiry.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("oauth-callback".into()),
            ..Default::default()
        }),
    };
    match api.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Err(TakeError::Replayed),
        Err(e) => Err(TakeError::Api(e)),
    }
}

/// Deletes nonce Leases whose state has expired. Failures are only logged:
/// a left-over Lease still refuses its (expired) state.
async fn sweep(api: &Api<Lease>, now: u64) {
    let leases = match api.list(&ListParams::default().labels(NONCE_LABEL)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(error = %e, "listing OAuth nonce Leases");
            return;
        }
    };
    for lease in leases {
        let expired = lease
            .annotations()
            .get(EXPIRES_ANNOTATION)
            .and_then(|e| e.parse::<u64>().ok())
            .is_none_or(|e| e < now);
        if expired && let Err(e) = api.delete(&lease.name_any(), &DeleteParams::default()).await {
            tracing::debug!(error = %e, "deleting an expired OAuth nonce Lease");
        }
    }
}
