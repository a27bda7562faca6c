//! Builds the Secret and ShopifyShop of each imported shop, renders them as
//! YAML and writes the per-shop files of `--output-dir`. No network.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;

use super::rows::ShopRow;
use crate::crd::{SecretRef, ShopifyShop, ShopifyShopSpec};

/// Label key set on everything `import` creates.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
/// Its value; also the server-side apply field manager.
pub const MANAGER: &str = "shopify-operator-import";

/// Why the template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read template {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or its `spec` is not a ShopifyShop spec.
    #[error("template {path} is not a ShopifyShop: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The `spec` every generated ShopifyShop starts from: empty, or the spec of
/// a template ShopifyShop (webhooks, app, sync, …); `domain` and `token` are
/// always replaced per shop.
#[derive(Debug, Clone, Default)]
pub struct Template {
    spec: serde_json::Map<String, serde_json::Value>,
}

impl Template {
    /// Reads a ShopifyShop YAML file and keeps its `spec`.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| TemplateError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses a template from YAML text; checks that it yields a valid spec
    /// once a domain and token are filled in.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: serde_json::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        if let Some(kind) = doc.get("kind").and_then(|k| k.as_str())
            && kind != "ShopifyShop"
        {
            return Err(format!("kind is {kind}, not ShopifyShop"));
        }
        let spec = match doc.get("spec") {
            Some(serde_json::Value::Object(m)) => m.clone(),
            Some(_) => return Err("spec is not a mapping".into()),
            None => return Err("no spec".into()),
        };
        let template = Self { spec };
        template
            .spec_for("example.myshopify.com", "example-shopify-token")
            .map_err(|e| format!("spec: {e}"))?;
        Ok(template)
    }

    /// The spec for one shop.
    fn spec_for(&self, domain: &str, secret: &str) -> Result<ShopifyShopSpec, serde_json::Error> {
        let mut spec = self.spec.clone();
        spec.insert("domain".into(), domain.into());
        // The template may set token options (e.g. migrateToExpiring); the
        // Secret is always this shop's own.
        let mut token = match spec.remove("token") {
            Some(serde_json::Value::Object(t)) => t,
            _ => serde_json::Map::new(),
        };
        token.insert(
            "secretRef".into(),
            serde_json::to_value(SecretRef { name: secret.into() })?,
        );
        spec.insert("token".into(), serde_json::Value::Object(token));
        serde_json::from_value(serde_json::Value::Object(spec))
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_KEY.to_string(), MANAGER.to_string())])
}

/// The token Secret of `shop`: Opaque, key `access-token`.
pub fn secret(shop: &ShopRow, namespace: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(shop.secret_name()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            "access-token".to_string(),
            ByteString(shop.token.expose().as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

/// The ShopifyShop of `shop`, its spec taken from `template`.
pub fn shopify_shop(shop: &ShopRow, namespace: &str, template: &Template) -> ShopifyShop {
    let spec = template
        .spec_for(&shop.domain, &shop.secret_name())
        // Template::parse already built a spec with these two fields filled
        // in; a valid domain and name can't make it fail now.
        .expect("a template that parsed yields a spec for every shop");
    let mut object = ShopifyShop::new(&shop.name, spec);
    object.metadata.namespace = Some(namespace.to_string());
    object.metadata.labels = Some(labels());
    object
}

/// The two manifests of `shop` as YAML documents, Secret first so that the
/// ShopifyShop never points at a Secret that is not there yet.
pub fn shop_yaml(shop: &ShopRow, namespace: &str, template: &Template) -> String {
    let secret = serde_norway::to_string(&secret(shop, namespace)).expect("a Secret serialises");
    let shopify =
        serde_norway::to_string(&shopify_shop(shop, namespace, template)).expect("a ShopifyShop serialises");
    format!("---\n{secret}---\n{shopify}")
}

/// Writes `{name}.yaml` into `dir` with mode 0600 (it holds a token):
/// through a private temporary file renamed into place, so the token is
/// never in a file others can read and a crash leaves no half-written one.
pub fn write_shop_file(dir: &Path, shop: &ShopRow, yaml: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{}.yaml", shop.name));
    let mut tmp = tempfile::Builder::new().prefix(".import-").tempfile_in(dir)?;
    tmp.write_all(yaml.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

/// Creates `dir` (mode 0700) if it does not exist.
pub fn create_output_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shopify_admin::AccessToken;

    fn row(name: &str, token: &str) -> ShopRow {
        ShopRow {
            domain: format!("{name}.myshopify.com"),
            name: name.into(),
            token: AccessToken::from(token),
        }
    }

    const TEMPLATE: &str = r#"
apiVersion: shopify-operator.dev/v1alpha1
kind: ShopifyShop
metadata:
  name: ignored
spec:
  domain: template.myshopify.com
  token:
    secretRef:
      name: ignored
    migrateToExpiring: true
  app:
    secretRef:
      name: oms-shopify-app
  webhooks:
    endpoint:
      host: oms.example.com
    topics: [orders/create, orders/updated]
"#;

    #[test]
    fn without_a_template_the_spec_is_minimal() {
        let yaml = shop_yaml(&row("foo", "shpat_foo"), "shops", &Template::default());
        let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(
            docs[0],
            serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "foo-shopify-token", "namespace": "shops",
                             "labels": {"app.kubernetes.io/managed-by": "shopify-operator-import"}},
                "data": {"access-token": "c2hwYXRfZm9v"},
            })
        );
        assert_eq!(
            docs[1],
            serde_json::json!({
                "apiVersion": "shopify-operator.dev/v1alpha1", "kind": "ShopifyShop",
                "metadata": {"name": "foo", "namespace": "shops",
                             "labels": {"app.kubernetes.io/managed-by": "shopify-operator-import"}},
                "spec": {"domain": "foo.myshopify.com", "token": {"secretRef": {"name": "foo-shopify-token"}}},
            })
        );
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn the_template_spec_is_copied_with_domain_and_token_secret_replaced() {
        let template = Template::parse(TEMPLATE).unwrap();
        let shop = shopify_shop(&row("bar", "shpat_bar"), "ns", &template);
        let spec = serde_json::to_value(&shop.spec).unwrap();
        assert_eq!(
            spec,
            serde_json::json!({
                "domain": "bar.myshopify.com",
                "token": {"secretRef": {"name": "bar-shopify-token"}, "migrateToExpiring": true},
                "app": {"secretRef": {"name": "oms-shopify-app"}},
                "webhooks": {"endpoint": {"host": "oms.example.com"}, "topics": ["orders/create", "orders/updated"]},
            })
        );
        assert_eq!(shop.metadata.name.as_deref(), Some("bar"));
    }

    #[test]
    fn bad_templates_are_refused() {
        for (text, want) in [
            ("kind: Secret\nspec: {}\n", "kind is Secret"),
            ("kind: ShopifyShop\n", "no spec"),
            ("spec: [1]\n", "not a mapping"),
            ("spec:\n  webhooks: {topics: 7}\n", "spec:"),
            (": : :", ""),
        ] {
            let err = Template::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn shop_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        create_output_dir(&out).unwrap();
        let shop = row("foo", "shpat_foo");
        let path = write_shop_file(&out, &shop, "x: 1\n").unwrap();
        assert_eq!(path, out.join("foo.yaml"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // Rewriting replaces the content and keeps the mode.
        write_shop_file(&out, &shop, "x: 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x: 2\n");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            1,
            "no temporary files left"
        );
    }
}
