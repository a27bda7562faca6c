//! The test cluster's certificate authority: serving certificate, client
//! certificates for any user and groups, the ServiceAccount signing key, and
//! kubeconfig files that use them. Pure computation and local files.

use std::path::Path;

use base64::Engine as _;
pub use rcgen::ExtendedKeyUsagePurpose;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A throw-away CA for one control plane.
pub struct Authority {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
}

impl Authority {
    /// Creates a new self-signed CA.
    pub fn new() -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = dn("shopify-operator-testenv-ca", &[]);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Self {
            params,
            key,
            cert_pem,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes `ca.crt`, `serving.crt` and `serving.key` for the given names.
    pub fn write_serving(&self, dir: &Path, names: &[String]) -> Result<(), crate::TestEnvError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name = dn("kube-apiserver", &[]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key))?;
        std::fs::write(dir.join("ca.crt"), &self.cert_pem)?;
        std::fs::write(dir.join("serving.crt"), cert.pem())?;
        std::fs::write(dir.join("serving.key"), key.serialize_pem())?;
        Ok(())
    }

    /// Writes `{name}.crt` and `{name}.key`: a certificate for `common_name`
    /// in `organizations` with `names` (DNS names and IP addresses) as its
    /// subject alternative names, for serving TLS or for client auth.
    pub fn write_cert(
        &self,
        dir: &Path,
        name: &str,
        common_name: &str,
        organizations: &[&str],
        names: &[&str],
        purpose: ExtendedKeyUsagePurpose,
    ) -> Result<(), crate::TestEnvError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = dn(common_name, organizations);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key))?;
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem())?;
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())?;
        Ok(())
    }

    /// Writes `sa.key` and `sa.pub`, the ServiceAccount token signing key
    /// (ECDSA P-256) and its public half.
    pub fn write_service_account_key(&self, dir: &Path) -> Result<(), crate::TestEnvError> {
        let key = KeyPair::generate()?;
        std::fs::write(dir.join("sa.key"), key.serialize_pem())?;
        std::fs::write(dir.join("sa.pub"), key.public_key_pem())?;
        Ok(())
    }

    /// A client certificate and key (PEM) for `user` in `groups`.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(user, groups);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A kubeconfig that authenticates with a client certificate.
    pub fn kubeconfig(
        &self,
        server: &str,
        user: &str,
        groups: &[&str],
    ) -> Result<String, crate::TestEnvError> {
        let (cert, key) = self.client_cert(user, groups)?;
        let user_entry = format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&cert),
            b64(&key)
        );
        Ok(self.render(server, user, &user_entry))
    }

    /// A kubeconfig that authenticates with a bearer token.
    pub fn token_kubeconfig(&self, server: &str, user: &str, token: &str) -> String {
        self.render(server, user, &format!("    token: {token}\n"))
    }

    fn render(&self, server: &str, user: &str, user_entry: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n{user_entry}contexts:\n- name: testenv\n  context:\n    cluster: testenv\n    user: {user}\ncurrent-context: testenv\n",
            ca = b64(&self.cert_pem),
        )
    }
}

fn dn(common_name: &str, organizations: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    for org in organizations {
        dn.push(DnType::OrganizationName, *org);
    }
    dn
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}
