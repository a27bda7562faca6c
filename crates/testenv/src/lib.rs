//! A real, local Kubernetes control plane for tests and the demo: etcd +
//! kube-apiserver (+ optionally kube-controller-manager) started on loopback
//! with random ports and a temporary folder, in the spirit of
//! controller-runtime's envtest. Touches the local network only.
//!
//! The binaries come from `hack/control-plane.sh` (built from pinned Go
//! modules, cached by version); they are found through `KUBEBUILDER_ASSETS`
//! or the script's cache folder.
//!
//! Child processes are started from one long-lived thread with
//! `PR_SET_PDEATHSIG`, so they die with the test process even when a test
//! panics or the harness is killed: Linux sends the signal when the *thread*
//! that forked them exits, and test threads come and go.

mod certs;
mod node;
mod ports;
mod process;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub use certs::{Authority, ExtendedKeyUsagePurpose};
pub use node::{
    Cluster, NODE_IP, NODE_NAME, NodeOptions, PAUSE_IMAGE, image_dir, runtime_dir, shared_cluster,
};
pub use ports::{PortLease, lease_port};
pub use process::{Supervised, clock_ticks_per_second, send_sigterm, spawn_supervised};

/// Errors of the test environment; messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum TestEnvError {
    /// The control-plane binaries are not where we looked.
    #[error(
        "control-plane binaries not found in {0}: run `hack/control-plane.sh` (or set KUBEBUILDER_ASSETS)"
    )]
    BinariesMissing(PathBuf),
    /// A process could not be started or stopped early.
    #[error("{name} failed: {message} (log: {log})")]
    Process {
        /// Which process.
        name: String,
        /// What happened.
        message: String,
        /// Its log file.
        log: PathBuf,
    },
    /// Filesystem trouble.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Certificate generation failed.
    #[error("certificates: {0}")]
    Certs(#[from] rcgen::Error),
    /// Talking to the apiserver failed.
    #[error("kube: {0}")]
    Kube(#[from] kube::Error),
    /// A kubeconfig could not be built.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// Something did not happen before its deadline.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

pub(crate) type Result<T, E = TestEnvError> = std::result::Result<T, E>;

/// What to start besides etcd and kube-apiserver.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Also run kube-controller-manager with only the garbage-collector and
    /// namespace controllers (owner references and namespace deletion).
    pub controller_manager: bool,
    /// CustomResourceDefinitions to install (and wait for) once the
    /// apiserver is ready, as envtest's `CRDInstallOptions`.
    pub crds: Vec<CustomResourceDefinition>,
}

/// A running control plane. Dropping it stops the processes and removes the
/// folder; a static one is cleaned up by `PR_SET_PDEATHSIG` at exit and by
/// the next run's sweep of stale folders.
pub struct ControlPlane {
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// Root folder: certificates, data, logs, kubeconfigs.
    pub dir: PathBuf,
    authority: Authority,
    admin_kubeconfig: PathBuf,
    processes: Mutex<Vec<Supervised>>,
    etcd_url: String,
    assets: PathBuf,
    apiserver_port: u16,
    options: Options,
    // Held while the control plane lives: a restarted apiserver gets its
    // port back, and nobody else is ever given these.
    _ports: Vec<PortLease>,
}

/// The folder holding `etcd`, `kube-apiserver` and `kube-controller-manager`:
/// `KUBEBUILDER_ASSETS` if set, else the cache folder `hack/control-plane.sh`
/// builds into.
pub fn assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS") {
        return PathBuf::from(dir);
    }
    let root = cache_root();
    let versions = include_str!("../../../hack/versions.env");
    let get = |key: &str| {
        versions
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("unknown")
            .trim()
            .to_string()
    };
    root.join("control-plane").join(format!(
        "k8s-{}_etcd-{}",
        get("KUBERNETES_VERSION"),
        get("ETCD_VERSION")
    ))
}

/// The project's cache folder, as the `hack/*.sh` scripts find it.
fn cache_root() -> PathBuf {
    std::env::var_os("SHOPIFY_OPERATOR_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("shopify-operator")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/shopify-operator")))
        .unwrap_or_else(|| PathBuf::from("/tmp/shopify-operator-cache"))
}

/// The kubectl built with the control plane (same version), else the one
/// on `PATH`.
pub fn kubectl() -> PathBuf {
    let built = assets_dir().join("kubectl");
    if built.is_file() {
        built
    } else {
        PathBuf::from("kubectl")
    }
}

/// Removes folders of earlier runs whose process is gone (a static control
/// plane is never dropped, so its folder outlives it).
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_string_lossy()
            .split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver (and the controller manager if asked),
    /// waits until the apiserver is ready and installs `options.crds`.
    pub async fn start(options: Options) -> Result<Self> {
        let assets = assets_dir();
        for bin in ["etcd", "kube-apiserver"] {
            if !assets.join(bin).is_file() {
                return Err(TestEnvError::BinariesMissing(assets));
            }
        }
        let base = std::env::temp_dir().join("shopify-operator-testenv");
        std::fs::create_dir_all(&base)?;
        if std::env::var_os("KEEP_TESTENV").is_none() {
            sweep_stale(&base);
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempdir_in(&base)?
            .keep();

        let authority = Authority::new()?;
        authority.write_serving(&dir, &["localhost".into(), "127.0.0.1".into()])?;
        authority.write_service_account_key(&dir)?;
        std::fs::write(dir.join("audit-policy.yaml"), AUDIT_POLICY)?;

        let started = Instant::now();
        let ports = [lease_port()?, lease_port()?, lease_port()?];
        let [etcd_port, peer_port, apiserver_port] = ports.each_ref().map(PortLease::port);
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let server = format!("https://127.0.0.1:{apiserver_port}");
        let admin_kubeconfig = dir.join("admin.kubeconfig");
        std::fs::write(
            &admin_kubeconfig,
            authority.kubeconfig(&server, "admin", &["system:masters"])?,
        )?;

        let cp = ControlPlane {
            server,
            dir: dir.clone(),
            authority,
            admin_kubeconfig,
            processes: Mutex::new(Vec::new()),
            etcd_url,
            assets,
            apiserver_port,
            options,
            _ports: ports.into(),
        };
        cp.start_etcd(peer_port)?;
        cp.start_apiserver()?;
        cp.wait_ready(Duration::from_secs(90)).await?;
        if cp.options.controller_manager {
            cp.start_controller_manager()?;
        }
        cp.install_crds(&cp.options.crds).await?;
        tracing::info!(server = %cp.server, elapsed = ?started.elapsed(), "control plane ready");
        Ok(cp)
    }

    fn start_etcd(&self, peer_port: u16) -> Result<()> {
        let peer = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = std::process::Command::new(self.assets.join("etcd"));
        cmd.arg(format!("--data-dir={}", self.dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={}", self.etcd_url))
            .arg(format!("--advertise-client-urls={}", self.etcd_url))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            .arg("--unsafe-no-fsync=true")
            .arg("--log-level=warn");
        self.spawn("etcd", cmd)
    }

    fn apiserver_command(&self) -> std::process::Command {
        let d = &self.dir;
        let mut cmd = std::process::Command::new(self.assets.join("kube-apiserver"));
        cmd.arg(format!("--etcd-servers={}", self.etcd_url))
            .arg(format!("--secure-port={}", self.apiserver_port))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--cert-dir={}", d.display()))
            .arg(format!("--tls-cert-file={}", d.join("serving.crt").display()))
            .arg(format!(
                "--tls-private-key-file={}",
                d.join("serving.key").display()
            ))
            .arg(format!("--client-ca-file={}", d.join("ca.crt").display()))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--allow-privileged=true")
            .arg(format!("--service-account-issuer={}", self.server))
            .arg(format!(
                "--service-account-key-file={}",
                d.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                d.join("sa.key").display()
            ))
            // No token controller runs, so the admission plugin that waits
            // for ServiceAccount tokens would reject every Pod (envtest does
            // the same).
            .arg("--disable-admission-plugins=ServiceAccount")
            // The apiserver must not advertise itself as the `kubernetes`
            // Service endpoint: loopback addresses are refused there.
            .arg("--endpoint-reconciler-type=none")
            .arg("--enable-priority-and-fairness=false")
            .arg(format!(
                "--audit-policy-file={}",
                d.join("audit-policy.yaml").display()
            ))
            .arg(format!("--audit-log-path={}", d.join("audit.log").display()))
            .arg("--audit-log-format=json")
            .arg("--audit-log-mode=blocking")
            .arg("--profiling=false")
            .arg("--v=1");
        cmd
    }

    fn start_apiserver(&self) -> Result<()> {
        let cmd = self.apiserver_command();
        self.spawn("kube-apiserver", cmd)
    }

    fn start_controller_manager(&self) -> Result<()> {
        let bin = self.assets.join("kube-controller-manager");
        if !bin.is_file() {
            return Err(TestEnvError::BinariesMissing(self.assets.clone()));
        }
        let mut cmd = std::process::Command::new(bin);
        cmd.arg(format!("--kubeconfig={}", self.admin_kubeconfig.display()))
            .arg("--controllers=garbage-collector-controller,namespace-controller")
            .arg("--leader-elect=false")
            // Nothing here asks its health or metrics endpoint: no port.
            .arg("--secure-port=0")
            .arg("--concurrent-gc-syncs=5")
            .arg("--v=1");
        self.spawn("kube-controller-manager", cmd)
    }

    fn spawn(&self, name: &str, mut cmd: std::process::Command) -> Result<()> {
        let log = self.dir.join(format!("{name}.log"));
        let child = spawn_supervised(name, &mut cmd, &log)?;
        self.processes.lock().expect("process list").push(child);
        Ok(())
    }

    /// Stops and starts kube-apiserver (same port, same etcd): watches break
    /// and must recover on their own.
    pub async fn restart_apiserver(&self) -> Result<()> {
        {
            let mut procs = self.processes.lock().expect("process list");
            if let Some(p) = procs.iter_mut().find(|p| p.name == "kube-apiserver") {
                p.kill();
            }
            procs.retain(|p| p.name != "kube-apiserver");
        }
        self.start_apiserver()?;
        self.wait_ready(Duration::from_secs(90)).await
    }

    async fn wait_ready(&self, deadline: Duration) -> Result<()> {
        let started = Instant::now();
        let client = self.admin_client().await?;
        loop {
            for p in self.processes.lock().expect("process list").iter_mut() {
                if let Some(status) = p.exited() {
                    return Err(TestEnvError::Process {
                        name: p.name.clone(),
                        message: format!("exited with {status}: {}", p.log_tail(20)),
                        log: p.log.clone(),
                    });
                }
            }
            if apiserver_ready(&client).await {
                return Ok(());
            }
            if started.elapsed() > deadline {
                return Err(TestEnvError::Timeout(deadline, "kube-apiserver /readyz".into()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Applies `crds` (server-side, field manager `testenv`) and waits until
    /// each is Established.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<()> {
        install_crds(&self.admin_client().await?, crds).await
    }

    /// Path of a kubeconfig for the admin (group `system:masters`), for
    /// kubectl and operator processes.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// A client authenticated as the admin. Create one per test: a client
    /// belongs to the tokio runtime it was made on.
    pub async fn admin_client(&self) -> Result<Client> {
        client_from_kubeconfig(&std::fs::read_to_string(&self.admin_kubeconfig)?).await
    }

    /// A kubeconfig (YAML) for any user and groups, via a client certificate
    /// signed by the cluster CA — for RBAC tests.
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> Result<String> {
        self.authority.kubeconfig(&self.server, user, groups)
    }

    /// A client authenticated as `user` in `groups`.
    pub async fn user_client(&self, user: &str, groups: &[&str]) -> Result<Client> {
        client_from_kubeconfig(&self.user_kubeconfig(user, groups)?).await
    }

    /// A kubeconfig for a ServiceAccount, with a token from the TokenRequest
    /// API (the ServiceAccount is created if missing).
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<String> {
        let client = self.admin_client().await?;
        let sas: Api<ServiceAccount> = Api::namespaced(client, namespace);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match sas.create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        let req = k8s_openapi::api::authentication::v1::TokenRequest {
            spec: Some(k8s_openapi::api::authentication::v1::TokenRequestSpec {
                audiences: Some(vec![self.server.clone()]),
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let token = sas
            .create_token_request(name, &PostParams::default(), &req)
            .await?
            .status
            .and_then(|s| s.token)
            .ok_or_else(|| TestEnvError::Kubeconfig("TokenRequest returned no token".into()))?;
        Ok(self
            .authority
            .token_kubeconfig(&self.server, &format!("{namespace}-{name}"), &token))
    }

    /// Creates a namespace with a unique name starting with `prefix`.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        let client = self.admin_client().await?;
        let nss: Api<Namespace> = Api::all(client);
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = nss.create(&PostParams::default(), &ns).await?;
        Ok(created
            .metadata
            .name
            .expect("apiserver names generated namespaces"))
    }

    /// Stops every process; the folder is kept for its logs when
    /// `KEEP_TESTENV` is set.
    pub fn stop(&self) {
        for p in self.processes.lock().expect("process list").iter_mut() {
            p.kill();
        }
        if std::env::var_os("KEEP_TESTENV").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Applies `crds` (server-side, field manager `testenv`) and waits until
/// each is Established.
async fn install_crds(client: &Client, crds: &[CustomResourceDefinition]) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &PatchParams::apply("testenv").force(), &Patch::Apply(crd))
            .await?;
        let established = kube::runtime::wait::conditions::is_crd_established();
        tokio::time::timeout(
            Duration::from_secs(30),
            kube::runtime::wait::await_condition(api.clone(), &name, established),
        )
        .await
        .map_err(|_| TestEnvError::Timeout(Duration::from_secs(30), format!("CRD {name} established")))?
        .map_err(|e| TestEnvError::Kubeconfig(e.to_string()))?;
    }
    Ok(())
}

/// Whether the apiserver answers `ok` on `/readyz`.
async fn apiserver_ready(client: &Client) -> bool {
    let req = http::Request::get("/readyz")
        .body(Vec::new())
        .expect("static request");
    client
        .request_text(req)
        .await
        .is_ok_and(|body| body.trim() == "ok")
}

/// Builds a client from kubeconfig YAML.
pub async fn client_from_kubeconfig(yaml: &str) -> Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(|e| TestEnvError::Kubeconfig(e.to_string()))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| TestEnvError::Kubeconfig(e.to_string()))?;
    config.read_timeout = Some(Duration::from_secs(60));
    Ok(Client::try_from(config)?)
}

/// Every write (by anyone) at Metadata level, nothing else: tests count an
/// identity's writes from this log, e.g. "zero writes per steady resync".
/// Reads (get, list, watch) are recorded only for identities in the group
/// [`AUDIT_READS_GROUP`], so that such counts stay unchanged for all others.
pub(crate) const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
# Secret bodies are tokens: only who wrote which Secret is recorded.
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
# Every other write with its body, so tests can check that no token ever
# reaches a status, an Event or a Job.
- level: Request
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
# Reads of the identities that asked for them (a test that checks which
# requests a component makes), Metadata only: no response bodies, so no
# Secret's data.
- level: Metadata
  userGroups: ["testenv:audit-reads"]
  verbs: ["get", "list", "watch"]
- level: None
"#;

/// Members of this group (a client from [`ControlPlane::user_client`] with
/// it among its groups) have their reads audited too: see
/// [`ControlPlane::audit_requests_since`]. (For a member, the entries
/// [`ControlPlane::audit_writes`] returns include its reads.)
pub const AUDIT_READS_GROUP: &str = "testenv:audit-reads";

/// One write request, from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditWrite {
    /// `create`, `update`, `patch`, `delete`…
    pub verb: String,
    /// Resource plural (`shopifyshops`, `events`, `jobs`).
    pub resource: String,
    /// Subresource (`status`), if any.
    pub subresource: Option<String>,
    /// Namespace, if any.
    pub namespace: Option<String>,
    /// Object name, if any.
    pub name: Option<String>,
    /// HTTP status code of the response.
    pub code: Option<i64>,
}

impl AuditWrite {
    /// The request of one audit log entry (a JSON line), once complete;
    /// `None` for other stages.
    pub fn from_entry(e: &serde_json::Value) -> Option<Self> {
        if e["stage"] != "ResponseComplete" {
            return None;
        }
        let r = &e["objectRef"];
        let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
        Some(AuditWrite {
            verb: e["verb"].as_str().unwrap_or_default().to_string(),
            resource: r["resource"].as_str().unwrap_or_default().to_string(),
            subresource: s(&r["subresource"]),
            namespace: s(&r["namespace"]),
            name: s(&r["name"]),
            code: e["responseStatus"]["code"].as_i64(),
        })
    }
}

impl ControlPlane {
    /// Writes made so far by `user` (the identity of a kubeconfig from
    /// [`ControlPlane::user_kubeconfig`]), in order, from the audit log.
    pub fn audit_writes(&self, user: &str) -> Vec<AuditWrite> {
        audit_writes_in(&self.dir.join("audit.log"), user)
    }

    /// The requests of `user` the audit log recorded after its byte
    /// offset `from` — writes, and for a member of [`AUDIT_READS_GROUP`]
    /// also gets, lists and watches — in order, and the offset to continue
    /// from (only whole lines are consumed). With `--audit-log-mode=blocking`
    /// a request's entry is written before its answer is sent, so a test can
    /// attribute requests to what it just did — without re-reading the whole
    /// log each time.
    pub fn audit_requests_since(&self, user: &str, from: u64) -> (Vec<AuditWrite>, u64) {
        use std::io::{Read, Seek, SeekFrom};
        let mut bytes = Vec::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("audit.log"))
            && f.seek(SeekFrom::Start(from)).is_ok()
        {
            let _ = f.read_to_end(&mut bytes);
        }
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let entries = requests_of(&String::from_utf8_lossy(&bytes[..whole]), user);
        (entries, from + whole as u64)
    }

    /// The audit entries (JSON lines, request bodies included) of every
    /// write `user` made to anything but a Secret.
    pub fn audited_bodies(&self, user: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains(user))
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|e| {
                    e["stage"] == "ResponseComplete"
                        && e["user"]["username"] == user
                        && e["objectRef"]["resource"] != "secrets"
                })
            })
            .map(str::to_string)
            .collect()
    }

    /// Writes a kubeconfig file for `user` (group `system:masters`) and
    /// returns its path: the identity an operator process runs as, so its
    /// writes can be told apart in the audit log.
    pub fn write_user_kubeconfig(&self, user: &str, groups: &[&str]) -> Result<PathBuf> {
        let path = self.dir.join(format!("{user}.kubeconfig"));
        std::fs::write(&path, self.user_kubeconfig(user, groups)?)?;
        Ok(path)
    }
}

/// Writes made by `user`, in order, from an audit log at `log`.
pub(crate) fn audit_writes_in(log: &Path, user: &str) -> Vec<AuditWrite> {
    requests_of(&std::fs::read_to_string(log).unwrap_or_default(), user)
}

/// The complete requests of `user` in audit log lines `text`.
fn requests_of(text: &str, user: &str) -> Vec<AuditWrite> {
    // The log holds every write of every test of the binary: only the
    // lines that name the user are worth parsing.
    text.lines()
        .filter(|l| l.contains(user))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["user"]["username"] == user)
        .filter_map(|e| AuditWrite::from_entry(&e))
        .collect()
}

static SHARED: tokio::sync::OnceCell<ControlPlane> = tokio::sync::OnceCell::const_new();

/// The control plane shared by every test of one test binary, started on
/// first use with the controller manager (so owner references and namespace
/// deletion behave as in a cluster) and `crds` installed. The first caller's
/// `crds` win: every test of one binary passes the same list.
pub async fn shared(crds: impl FnOnce() -> Vec<CustomResourceDefinition>) -> &'static ControlPlane {
    SHARED
        .get_or_init(|| async {
            ControlPlane::start(Options {
                controller_manager: true,
                crds: crds(),
            })
            .await
            .unwrap_or_else(|e| panic!("starting the test control plane: {e}"))
        })
        .await
}
