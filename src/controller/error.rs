//! The one error type of a failed reconcile, of either controller (the
//! ShopifyApp controller's are `AppStatus` and `NoNamespace`). Each variant names the step
//! that failed, and [`Error::step`] is the `step` label of the
//! `shopify_operator_reconcile_errors` metric. Shopify failures are not
//! here: they become conditions, and the reconcile itself succeeds.

/// Errors that make a reconcile fail and back off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the ShopifyApp that `spec.appRef` names.
    #[error("reading the ShopifyApp: {0}")]
    App(#[source] kube::Error),
    /// Reading the Ingress that `webhooks.endpoint.ingressRef` names.
    #[error("reading the Ingress: {0}")]
    Ingress(#[source] kube::Error),
    /// Reading or writing the token Secret (read, migration, refresh).
    #[error("token Secret: {0}")]
    TokenSecret(#[source] kube::Error),
    /// Adding or removing the finalizer.
    #[error("finalizer: {0}")]
    Finalizer(#[source] kube::Error),
    /// Listing, creating or deleting the shop's sync Jobs.
    #[error("sync Jobs: {0}")]
    SyncJobs(#[source] kube::Error),
    /// Reading a ShopifyApp's credentials or shops, or writing its status.
    #[error("ShopifyApp status: {0}")]
    AppStatus(#[source] kube::Error),
    /// Writing the ShopifyShop's status.
    #[error("status write: {0}")]
    StatusWrite(#[source] kube::Error),
    /// The resource has no namespace (the CRD is namespaced; never expected).
    #[error("ShopifyShop without a namespace")]
    NoNamespace,
}

impl Error {
    /// The step that failed, as the metric label.
    pub fn step(&self) -> &'static str {
        match self {
            Error::App(_) => "app",
            Error::Ingress(_) => "ingress",
            Error::TokenSecret(_) => "token_secret",
            Error::Finalizer(_) => "finalizer",
            Error::SyncJobs(_) => "sync_jobs",
            Error::StatusWrite(_) => "status_write",
            Error::AppStatus(_) => "app_status",
            Error::NoNamespace => "no_namespace",
        }
    }
}
