//! `--apply`: server-side apply of each shop's Secret and ShopifyShop into
//! the cluster, refusing to replace a different token unless `--force`.
//! Talks to the apiserver.
//!
//! Every shop is first applied as a server-side dry run: the apiserver then
//! says (with its schema, CEL rules and field ownership) what the apply
//! would do, so "unchanged" means "the server would store the same thing",
//! `--dry-run` reports what a real run would, and an object the CRD rejects
//! is found before its Secret is written.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::manifest::{self, MANAGER, Template};
use super::report::{Action, Outcome};
use super::rows::ShopRow;
use crate::crd::ShopifyShop;
use shopify_admin::AccessToken;

/// Applies shops into one namespace.
pub struct Applier {
    secrets: Api<Secret>,
    shops: Api<ShopifyShop>,
    namespace: String,
    template: Template,
    force: bool,
    dry_run: bool,
}

/// What a dry-run apply of one object said.
enum Planned {
    /// Accepted: whether the stored object would differ from the current
    /// one, and whether there is a current one.
    Ok { changed: bool, existed: bool },
    /// Refused: the outcome to report instead.
    Refused(Outcome),
}

impl Applier {
    /// An applier for `namespace`; with `dry_run` nothing is written.
    pub fn new(client: Client, namespace: &str, template: Template, force: bool, dry_run: bool) -> Self {
        Self {
            secrets: Api::namespaced(client.clone(), namespace),
            shops: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            template,
            force,
            dry_run,
        }
    }

    fn params(&self, dry_run: bool) -> PatchParams {
        let mut pp = PatchParams::apply(MANAGER).validation_strict();
        if self.force {
            pp = pp.force();
        }
        if dry_run {
            pp = pp.dry_run();
        }
        pp
    }

    /// Imports one shop. An `Err` is a cluster failure that would hit every
    /// other shop too (unreachable, forbidden), so the caller stops.
    pub async fn apply(&self, row: &ShopRow) -> Result<Outcome, kube::Error> {
        let outcome = |action: Action, reason: String| Outcome {
            shop: row.domain.clone(),
            name: row.name.clone(),
            action,
            reason,
        };
        let secret_name = row.secret_name();
        let existing_secret = self.secrets.get_opt(&secret_name).await?;
        let token_replaced = existing_secret
            .as_ref()
            .and_then(stored_token)
            .is_some_and(|stored| stored != row.token);
        if token_replaced && !self.force {
            return Ok(outcome(
                Action::Conflict,
                format!("Secret {secret_name} holds a different access-token (--force replaces it)"),
            ));
        }
        let existing_shop = self.shops.get_opt(&row.name).await?;
        if let Some(shop) = &existing_shop
            && shop.spec.domain != row.domain
        {
            return Ok(outcome(
                Action::Conflict,
                format!(
                    "ShopifyShop {} exists for another shop ({})",
                    row.name, shop.spec.domain
                ),
            ));
        }

        let secret = manifest::secret(row, &self.namespace);
        let shop = manifest::shopify_shop(row, &self.namespace, &self.template);
        let secret_plan = match self
            .plan(
                &self.secrets,
                &secret_name,
                &secret,
                existing_secret.as_ref(),
                row,
                secret_content,
            )
            .await?
        {
            Planned::Ok { changed, existed } => (changed, existed),
            Planned::Refused(o) => return Ok(o),
        };
        let shop_plan = match self
            .plan(
                &self.shops,
                &row.name,
                &shop,
                existing_shop.as_ref(),
                row,
                shop_content,
            )
            .await?
        {
            Planned::Ok { changed, existed } => (changed, existed),
            Planned::Refused(o) => return Ok(o),
        };
        let (secret_changed, secret_existed) = secret_plan;
        let (shop_changed, shop_existed) = shop_plan;
        if !secret_changed && !shop_changed {
            return Ok(outcome(Action::Unchanged, String::new()));
        }

        let mut what = Vec::new();
        if token_replaced {
            what.push("access-token replaced (--force)".to_string());
        } else if secret_changed && secret_existed {
            what.push(format!("Secret {secret_name} updated"));
        }
        if shop_changed && shop_existed {
            what.push(format!("ShopifyShop {} updated", row.name));
        }
        let action = if secret_existed || shop_existed {
            Action::Update
        } else {
            Action::Create
        };
        if !self.dry_run {
            // Secret first: a ShopifyShop whose Secret is missing would go
            // NotReady until the Secret arrives.
            if secret_changed && let Err(o) = self.write(&self.secrets, &secret_name, &secret, row).await? {
                return Ok(o);
            }
            if shop_changed && let Err(o) = self.write(&self.shops, &row.name, &shop, row).await? {
                return Ok(o);
            }
        }
        Ok(outcome(action, what.join("; ")))
    }

    /// Server-side dry-run apply of `object`, compared with `existing`.
    async fn plan<K>(
        &self,
        api: &Api<K>,
        name: &str,
        object: &K,
        existing: Option<&K>,
        row: &ShopRow,
        content: fn(&K) -> serde_json::Value,
    ) -> Result<Planned, kube::Error>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match api.patch(name, &self.params(true), &Patch::Apply(object)).await {
            Ok(after) => Ok(Planned::Ok {
                changed: existing.is_none_or(|e| content(e) != content(&after)),
                existed: existing.is_some(),
            }),
            Err(e) => refused::<K>(e, row).map(Planned::Refused),
        }
    }

    /// The real apply; `Ok(Err(outcome))` when the apiserver refused it.
    async fn write<K>(
        &self,
        api: &Api<K>,
        name: &str,
        object: &K,
        row: &ShopRow,
    ) -> Result<Result<(), Outcome>, kube::Error>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match api.patch(name, &self.params(false), &Patch::Apply(object)).await {
            Ok(_) => Ok(Ok(())),
            Err(e) => refused::<K>(e, row).map(Err),
        }
    }
}

/// Turns a refusal that concerns only this shop into its outcome: 409 (a
/// field another manager owns with another value) is a conflict, 400/422
/// (invalid object) a skip. Anything else is returned as the error.
fn refused<K: Resource>(e: kube::Error, row: &ShopRow) -> Result<Outcome, kube::Error>
where
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    match e {
        kube::Error::Api(status) if matches!(status.code, 400 | 409 | 422) => {
            let action = if status.code == 409 {
                Action::Conflict
            } else {
                Action::Skipped
            };
            Ok(Outcome {
                shop: row.domain.clone(),
                name: row.name.clone(),
                action,
                // The Secret's own validation messages name keys, not
                // values; scrubbing the token anyway costs nothing.
                reason: format!("{kind} refused by the apiserver: {}", status.message)
                    .replace(row.token.expose(), "***"),
            })
        }
        other => Err(other),
    }
}

fn stored_token(secret: &Secret) -> Option<AccessToken> {
    let bytes = secret.data.as_ref()?.get("access-token")?;
    Some(AccessToken::new(String::from_utf8_lossy(&bytes.0).into_owned()))
}

/// The parts of a Secret that an import sets.
fn secret_content(s: &Secret) -> serde_json::Value {
    serde_json::json!({
        "labels": s.metadata.labels,
        "type": s.type_,
        "data": s.data,
    })
}

/// The parts of a ShopifyShop that an import sets.
fn shop_content(s: &ShopifyShop) -> serde_json::Value {
    serde_json::json!({
        "labels": s.metadata.labels,
        "spec": s.spec,
    })
}
