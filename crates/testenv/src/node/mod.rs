//! An opt-in one-node cluster for the tests that must see what a kubelet
//! does: etcd, kube-apiserver, kube-controller-manager (every default
//! controller), kube-scheduler, containerd with runc, a kubelet and
//! kube-proxy, all in fresh pid, mount and network namespaces of their own
//! (`unshare`, see `node-init.sh`).
//!
//! Touches: a run folder under `/tmp/shopify-operator-node`, cgroups named
//! `testenv-node-*` in every cgroup hierarchy, loopback listeners of this
//! process (the forwards into the node). Nothing else of the host: the
//! node's network is a namespace with no route out (its address is
//! 198.18.0.1, RFC 2544's range for network tests), its `/run`, `/var/lib`
//! and `/var/log` are folders of the run folder, images are imported from
//! OCI archives and nothing is ever pulled.
//!
//! The harness reaches the node through [`Cluster::forward`]: a loopback port
//! whose connections are made from a thread that entered the node's network
//! namespace (`setns`). The apiserver is forwarded that way, so kubectl, helm
//! and kube clients of the test run on the host as they would against any
//! cluster.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::{
    AUDIT_POLICY, AuditWrite, Authority, ExtendedKeyUsagePurpose, Result, Supervised, TestEnvError,
    assets_dir, cache_root, client_from_kubeconfig, install_crds, spawn_supervised,
};

/// The node's address, on the loopback device of its network namespace.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The node's name.
pub const NODE_NAME: &str = "testenv-node";
/// The image every Pod sandbox runs; `hack/image.sh` builds it (`pause.tar`).
pub const PAUSE_IMAGE: &str = "localhost/testenv/pause:1.0";
const POD_CIDR: &str = "10.244.0.0/24";
const POD_GATEWAY: &str = "10.244.0.1";
const SERVICE_CIDR: &str = "10.96.0.0/24";
/// Inside the node, where the apiserver listens (every address, port 6443).
const APISERVER_PORT: u16 = 6443;

const NODE_INIT: &str = include_str!("node-init.sh");
const CONTAINERD_TOML: &str = include_str!("containerd.toml");
const KUBELET_YAML: &str = include_str!("kubelet.yaml");
const KUBE_PROXY_YAML: &str = include_str!("kube-proxy.yaml");
const CNI_CONFLIST: &str = include_str!("cni.conflist");

/// What a [`Cluster`] starts with.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// OCI archives to import into the node's containerd before it takes
    /// Pods (the pause image is always imported). A Pod names an image by
    /// the archive's reference, e.g. `shopify-operator:0.1.0`.
    pub images: Vec<PathBuf>,
    /// CustomResourceDefinitions to install once the apiserver is ready.
    pub crds: Vec<CustomResourceDefinition>,
}

/// A running one-node cluster. Dropping it stops the node and removes its
/// cgroups and run folder; a static one is cleaned up by the next start's
/// sweep (its owner's pid is gone).
pub struct Cluster {
    /// The apiserver as the host sees it: `https://127.0.0.1:PORT`, a
    /// forward into the node.
    pub server: String,
    /// The run folder: certificates, configuration, logs, the node's state.
    pub dir: PathBuf,
    authority: Authority,
    admin_kubeconfig: PathBuf,
    cgroup: String,
    netns: Arc<File>,
    init: Mutex<Supervised>,
    forwards: Mutex<Vec<Forward>>,
}

/// The folder of the OCI archives `hack/image.sh` builds: `IMAGE_DIR`, else
/// the workspace's `target/image`.
pub fn image_dir() -> PathBuf {
    std::env::var_os("IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/image"))
}

/// The folder of the programs the node runs besides Kubernetes' own
/// (containerd, runc, iptables, `cni/`): `NODE_RUNTIME_DIR`, else the cache
/// folder of `hack/node-runtime.sh`.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("NODE_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_root().join("node-runtime/bin"))
}

fn missing(dir: &Path, names: &[&str], hint: &str) -> Result<()> {
    let absent: Vec<&str> = names.iter().copied().filter(|n| !dir.join(n).exists()).collect();
    if absent.is_empty() {
        return Ok(());
    }
    Err(TestEnvError::Process {
        name: "node".into(),
        message: format!("{} missing from {}: run {hint}", absent.join(", "), dir.display()),
        log: dir.to_path_buf(),
    })
}

impl Cluster {
    /// Starts the node and waits until it is Ready, untainted, with every
    /// image imported and `options.crds` installed.
    pub async fn start(options: NodeOptions) -> Result<Self> {
        let started = Instant::now();
        let assets = assets_dir();
        missing(
            &assets,
            &[
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kubelet",
                "kube-proxy",
            ],
            "`hack/control-plane.sh`",
        )?;
        let runtime = runtime_dir();
        missing(
            &runtime,
            &[
                "containerd",
                "containerd-shim-runc-v2",
                "ctr",
                "runc",
                "iptables",
                "ip",
                "cni/bridge",
            ],
            "`hack/node-runtime.sh`",
        )?;
        let pause = image_dir().join("pause.tar");
        missing(&image_dir(), &["pause.tar"], "`hack/image.sh`")?;

        // Short: socket paths below it must stay within 108 bytes.
        let base = PathBuf::from("/tmp/shopify-operator-node");
        std::fs::create_dir_all(&base)?;
        sweep_stale(&base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .rand_bytes(6)
            .tempdir_in(&base)?
            .keep();
        let id = dir
            .file_name()
            .expect("a named folder")
            .to_string_lossy()
            .into_owned();
        let cgroup = format!("testenv-node-{id}");
        for sub in [
            "run",
            "varlib",
            "varlog",
            "etc/cni",
            "tmp",
            "containerd",
            "logs",
            "cni-ipam",
            "certs",
        ] {
            std::fs::create_dir_all(dir.join(sub))?;
        }

        let authority = Authority::new()?;
        write_node_certs(&authority, &dir.join("certs"))?;
        let mut images = vec![pause];
        images.extend(options.images.iter().cloned());
        write_node_config(&dir, &cgroup, &assets, &runtime, &images)?;

        let mut cmd = std::process::Command::new("unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--net",
            "--",
            "bash",
        ])
        .arg(dir.join("node-init.sh"))
        .arg(&dir);
        let init = spawn_supervised("node", &mut cmd, &dir.join("logs/unshare.log"))?;
        let netns = Arc::new(File::open(format!("/proc/{}/ns/net", node_init_pid(&init)?))?);

        let admin_kubeconfig = dir.join("admin.kubeconfig");
        let mut cluster = Cluster {
            server: String::new(),
            dir: dir.clone(),
            authority,
            admin_kubeconfig,
            cgroup,
            netns,
            init: Mutex::new(init),
            forwards: Mutex::new(Vec::new()),
        };
        let api = cluster.forward(SocketAddr::from((Ipv4Addr::LOCALHOST, APISERVER_PORT)))?;
        cluster.server = format!("https://{api}");
        std::fs::write(
            &cluster.admin_kubeconfig,
            cluster
                .authority
                .kubeconfig(&cluster.server, "admin", &["system:masters"])?,
        )?;

        cluster.wait_apiserver(Duration::from_secs(120)).await?;
        // The kubelet registers with a backoff: it starts once /readyz is ok.
        std::fs::write(dir.join("apiserver.ready"), b"")?;
        cluster.wait_node_ready(Duration::from_secs(180)).await?;
        cluster.wait_images(Duration::from_secs(120)).await?;
        install_crds(&cluster.admin_client().await?, &options.crds).await?;
        tracing::info!(server = %cluster.server, dir = %dir.display(), elapsed = ?started.elapsed(), "node ready");
        Ok(cluster)
    }

    fn check_alive(&self) -> Result<()> {
        let mut init = self.init.lock().expect("node init");
        if let Some(status) = init.exited() {
            return Err(TestEnvError::Process {
                name: "node".into(),
                message: format!("exited with {status}: {}", self.log_tail("init", 20)),
                log: self.dir.join("logs"),
            });
        }
        Ok(())
    }

    /// The last `lines` lines of one of the node's logs (`kubelet`,
    /// `containerd`, `kube-apiserver`, `init`…).
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.join("logs").join(format!("{name}.log"))).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Polls `check` every `every` until it holds, failing early if the
    /// node's init is gone and after `deadline` with `what` (and the log
    /// tail it names, the likeliest cause).
    async fn until<F, Fut>(
        &self,
        deadline: Duration,
        every: Duration,
        what: (&str, &str),
        mut check: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            self.check_alive()?;
            if check().await {
                return Ok(());
            }
            if started.elapsed() > deadline {
                let (goal, log) = what;
                let tail = if log.is_empty() {
                    String::new()
                } else {
                    format!(": {}", self.log_tail(log, 15))
                };
                return Err(TestEnvError::Timeout(deadline, format!("{goal}{tail}")));
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn wait_apiserver(&self, deadline: Duration) -> Result<()> {
        let client = self.admin_client().await?;
        let what = ("the node's kube-apiserver /readyz", "kube-apiserver");
        self.until(deadline, Duration::from_millis(200), what, || {
            crate::apiserver_ready(&client)
        })
        .await
    }

    /// Ready, and the node-lifecycle controller has removed the not-ready
    /// taint the kubelet registers with (else nothing is scheduled).
    async fn wait_node_ready(&self, deadline: Duration) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.admin_client().await?);
        let what = (&*format!("node {NODE_NAME} Ready and untainted"), "kubelet");
        self.until(deadline, Duration::from_millis(250), what, || async {
            let Ok(Some(node)) = nodes.get_opt(NODE_NAME).await else {
                return false;
            };
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let tainted = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| !t.is_empty());
            ready && !tainted
        })
        .await
    }

    async fn wait_images(&self, deadline: Duration) -> Result<()> {
        let done = self.dir.join("images.done");
        let what = ("the node's image imports", "");
        self.until(deadline, Duration::from_millis(100), what, || {
            std::future::ready(done.exists())
        })
        .await?;
        match std::fs::read_to_string(self.dir.join("images.failed")) {
            Ok(failed) => Err(TestEnvError::Process {
                name: "node".into(),
                message: format!(
                    "importing {} failed: {}",
                    failed.trim(),
                    self.log_tail("images", 10)
                ),
                log: self.dir.join("logs/images.log"),
            }),
            Err(_) => Ok(()),
        }
    }

    /// Path of the admin kubeconfig (group `system:masters`), for kubectl,
    /// helm and operator processes on the host.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// A client authenticated as the admin. Create one per test: a client
    /// belongs to the tokio runtime it was made on.
    pub async fn admin_client(&self) -> Result<Client> {
        client_from_kubeconfig(&std::fs::read_to_string(&self.admin_kubeconfig)?).await
    }

    /// Creates a namespace with a unique name starting with `prefix` and
    /// `labels`, and waits for its `default` ServiceAccount (Pods that use
    /// it are refused until the controller manager made it).
    pub async fn namespace(&self, prefix: &str, labels: &[(&str, &str)]) -> Result<String> {
        let client = self.admin_client().await?;
        let nss: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        let name = nss
            .create(&PostParams::default(), &ns)
            .await?
            .metadata
            .name
            .expect("apiserver names generated namespaces");
        let sas: Api<ServiceAccount> = Api::namespaced(client, &name);
        let deadline = Duration::from_secs(60);
        let started = Instant::now();
        while sas.get_opt("default").await?.is_none() {
            if started.elapsed() > deadline {
                return Err(TestEnvError::Timeout(
                    deadline,
                    format!("ServiceAccount {name}/default"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(name)
    }

    /// A loopback address of this host whose connections go to `target`
    /// inside the node (a Pod, a ClusterIP Service, the node's ports).
    pub fn forward(&self, target: SocketAddr) -> Result<SocketAddr> {
        let forward = Forward::start(self.netns.clone(), target)?;
        let addr = forward.addr;
        self.forwards.lock().expect("forwards").push(forward);
        Ok(addr)
    }

    /// Answers DNS queries sent to the node's address (the Pods' resolver,
    /// see `kubelet.yaml`): every A query for a name ending in `suffix`
    /// gets `answer`; anything else is NXDOMAIN. Runs until the node stops.
    pub fn serve_dns(&self, suffix: &str, answer: Ipv4Addr) -> Result<()> {
        let netns = self.netns.clone();
        let suffix = suffix.trim_end_matches('.').to_ascii_lowercase();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("testenv-node-dns".into())
            .spawn(move || {
                let socket = enter(&netns).and_then(|()| UdpSocket::bind((NODE_IP, 53)));
                let socket = match socket {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let mut buf = [0u8; 512];
                while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                    if let Some(reply) = dns_reply(&buf[..n], &suffix, answer) {
                        let _ = socket.send_to(&reply, peer);
                    }
                }
            })?;
        rx.recv()
            .map_err(|_| std::io::Error::other("DNS thread died"))??;
        Ok(())
    }

    /// Writes made so far by `user`, in order, from the node apiserver's
    /// audit log (the same policy as [`crate::ControlPlane`]'s).
    pub fn audit_writes(&self, user: &str) -> Vec<AuditWrite> {
        crate::audit_writes_in(&self.dir.join("audit.log"), user)
    }

    /// The peak memory (bytes) the kernel charged to one container of a Pod
    /// so far: `memory.max_usage_in_bytes` of its cgroup (cgroup v1). This
    /// is what the container's memory limit is held against.
    pub fn container_memory_peak(&self, pod_uid: &str, container_id: &str) -> Result<u64> {
        let id = container_id.rsplit("://").next().unwrap_or(container_id);
        let pods = Path::new("/sys/fs/cgroup/memory")
            .join(&self.cgroup)
            .join("kubepods");
        let pod = format!("pod{pod_uid}");
        for qos in ["", "burstable", "besteffort"] {
            let file = pods
                .join(qos)
                .join(&pod)
                .join(id)
                .join("memory.max_usage_in_bytes");
            if let Ok(text) = std::fs::read_to_string(&file) {
                return text
                    .trim()
                    .parse()
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", file.display())).into());
            }
        }
        Err(std::io::Error::other(format!(
            "no memory cgroup for container {id} of pod {pod_uid} under {}",
            pods.display()
        ))
        .into())
    }

    /// Stops the node (its processes die with its pid namespace), then
    /// removes its cgroups and, unless `KEEP_TESTENV` is set, its folder.
    pub fn stop(&self) {
        {
            let mut init = self.init.lock().expect("node init");
            if let Ok(pid) = node_init_pid(&init) {
                // The init script stops the daemons in order, then exits.
                crate::send_sigterm(pid);
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            init.kill();
        }
        for f in self.forwards.lock().expect("forwards").drain(..) {
            f.stop();
        }
        remove_cgroups(&self.cgroup, Duration::from_secs(10));
        if std::env::var_os("KEEP_TESTENV").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The host pid of the node's init (`unshare`'s child, PID 1 of the node).
fn node_init_pid(unshare: &Supervised) -> Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let children = format!("/proc/{0}/task/{0}/children", unshare.pid());
    loop {
        if let Some(pid) = std::fs::read_to_string(&children)
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            return Err(TestEnvError::Timeout(
                Duration::from_secs(10),
                "the node's init process".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The certificates and kubeconfigs of every component (the layout
/// `node-init.sh` expects in `RUN/certs`).
fn write_node_certs(ca: &Authority, dir: &Path) -> Result<()> {
    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    std::fs::write(dir.join("ca.crt"), ca.ca_pem())?;
    let node_ip = NODE_IP.to_string();
    // The apiserver: the node address (advertised), the `kubernetes`
    // Service's ClusterIP (what Pods dial), loopback (the forward).
    ca.write_cert(
        dir,
        "apiserver",
        "kube-apiserver",
        &[],
        &[
            &node_ip,
            "10.96.0.1",
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        ServerAuth,
    )?;
    // apiserver → kubelet (logs, exec): allowed by the kubelet's webhook
    // authorizer as system:masters.
    ca.write_cert(
        dir,
        "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        &["system:masters"],
        &[],
        ClientAuth,
    )?;
    ca.write_cert(
        dir,
        "kubelet-serving",
        NODE_NAME,
        &[],
        &[&node_ip, NODE_NAME],
        ServerAuth,
    )?;
    ca.write_service_account_key(dir)?;
    let inside = format!("https://127.0.0.1:{APISERVER_PORT}");
    let node_user = format!("system:node:{NODE_NAME}");
    for (file, user, groups) in [
        ("kubelet", node_user.as_str(), &["system:nodes"][..]),
        (
            "kube-controller-manager",
            "system:kube-controller-manager",
            &["system:masters"][..],
        ),
        ("kube-scheduler", "system:kube-scheduler", &[][..]),
        ("kube-proxy", "system:kube-proxy", &[][..]),
    ] {
        std::fs::write(
            dir.join(format!("{file}.kubeconfig")),
            ca.kubeconfig(&inside, user, groups)?,
        )?;
    }
    Ok(())
}

/// `RUN/env`, the component configurations from their templates, the audit
/// policy, the init script and the list of images to import.
fn write_node_config(
    dir: &Path,
    cgroup: &str,
    assets: &Path,
    runtime: &Path,
    images: &[PathBuf],
) -> Result<()> {
    let run = dir.display().to_string();
    let runtime = runtime.display().to_string();
    let node_ip = NODE_IP.to_string();
    let max_open_files = hard_nofile_limit().to_string();
    let vars: [(&str, &str); 9] = [
        ("@RUN@", &run),
        ("@CGROOT@", cgroup),
        ("@NODE@", NODE_NAME),
        ("@NODE_IP@", &node_ip),
        ("@POD_CIDR@", POD_CIDR),
        ("@POD_GW@", POD_GATEWAY),
        ("@RUNTIME@", &runtime),
        ("@PAUSE_IMAGE@", PAUSE_IMAGE),
        ("@MAX_OPEN_FILES@", &max_open_files),
    ];
    let render = |template: &str| {
        vars.iter()
            .fold(template.to_string(), |t, (k, v)| t.replace(k, v))
    };
    let etc = dir.join("etc");
    std::fs::write(etc.join("containerd.toml"), render(CONTAINERD_TOML))?;
    std::fs::write(etc.join("kubelet.yaml"), render(KUBELET_YAML))?;
    std::fs::write(etc.join("kube-proxy.yaml"), render(KUBE_PROXY_YAML))?;
    std::fs::write(etc.join("cni/10-testenv-node.conflist"), render(CNI_CONFLIST))?;
    std::fs::write(etc.join("audit-policy.yaml"), AUDIT_POLICY)?;
    std::fs::write(dir.join("node-init.sh"), NODE_INIT)?;
    std::fs::write(
        dir.join("env"),
        format!(
            "RUN={run}\nNODE={NODE_NAME}\nNODE_IP={node_ip}\nCGROOT={cgroup}\nSERVICE_CIDR={SERVICE_CIDR}\nBIN={}\nRUNTIME={runtime}\n",
            assets.display()
        ),
    )?;
    let list: String = images.iter().map(|i| format!("{}\n", i.display())).collect();
    std::fs::write(dir.join("images.list"), list)?;
    Ok(())
}

/// The kubelet sets RLIMIT_NOFILE to `maxOpenFiles`; without
/// CAP_SYS_RESOURCE it may not go above the hard limit it inherits.
#[allow(unsafe_code)]
fn hard_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if ok { limit.rlim_max } else { 1_048_576 }
}

/// Moves the calling thread into the node's network namespace: sockets it
/// makes from now on are the node's. Only for threads of our own.
#[allow(unsafe_code)]
fn enter(netns: &File) -> std::io::Result<()> {
    // SAFETY: setns on a namespace file we hold open; it changes only this
    // thread's network namespace.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A loopback listener of this process whose connections are relayed to an
/// address inside the node.
struct Forward {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Forward {
    fn start(netns: Arc<File>, target: SocketAddr) -> Result<Self> {
        // Bound here and served from here: the port is ours for good.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name(format!("testenv-forward-{}", addr.port()))
            .spawn(move || {
                for client in listener.incoming() {
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let netns = netns.clone();
                    let _ = std::thread::Builder::new()
                        .name("testenv-forward-conn".into())
                        .spawn(move || relay(&netns, client, target));
                }
            })?;
        Ok(Self { addr, stop })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// One forwarded connection: dialled from inside the node, then bytes both
/// ways until either side closes.
fn relay(netns: &File, client: TcpStream, target: SocketAddr) {
    let upstream = enter(netns).and_then(|()| TcpStream::connect_timeout(&target, Duration::from_secs(10)));
    let Ok(upstream) = upstream else {
        return; // dropping the client closes it: the caller sees a refusal
    };
    let (Ok(client_reader), Ok(upstream_writer)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let upload = std::thread::Builder::new()
        .name("testenv-forward-up".into())
        .spawn(move || pipe(client_reader, upstream_writer));
    pipe(upstream, client);
    if let Ok(upload) = upload {
        let _ = upload.join();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = from.shutdown(std::net::Shutdown::Read);
}

/// The reply to one DNS query (RFC 1035 §4.1): an A record for names under
/// `suffix`, an empty answer for their other types (AAAA), NXDOMAIN for
/// other names. `None` for what is not a single-question query.
fn dns_reply(query: &[u8], suffix: &str, answer: Ipv4Addr) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression in a question: not from a resolver
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question_end = pos + 4;
    query.get(..question_end)?;
    let name = labels.join(".");
    let ours = name == suffix || name.ends_with(&format!(".{suffix}"));
    let mut reply = query[..question_end].to_vec();
    // QR, opcode and RD copied, RA; RCODE 3 (NXDOMAIN) when not ours.
    reply[2] = 0x80 | (query[2] & 0x79);
    reply[3] = 0x80 | if ours { 0 } else { 3 };
    let answers: u16 = if ours && qtype == 1 { 1 } else { 0 };
    reply[6..8].copy_from_slice(&answers.to_be_bytes());
    reply[8..12].fill(0);
    if answers == 1 {
        // The question's name by pointer, type A, class IN, TTL 5 s.
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]);
        reply.extend_from_slice(&answer.octets());
    }
    Some(reply)
}

/// Every cgroup hierarchy's folder for `name` (v1 controllers and the
/// unified one), deepest folders first.
fn remove_cgroups(name: &str, deadline: Duration) {
    let started = Instant::now();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let roots: Vec<PathBuf> = hierarchies
        .flatten()
        .map(|h| h.path().join(name))
        .filter(|p| p.is_dir())
        .collect();
    for root in roots {
        let mut dirs = Vec::new();
        collect_dirs(&root, &mut dirs);
        // Deepest first: a cgroup folder goes only once it has no children.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            // A process that is still dying keeps its cgroup busy briefly.
            while std::fs::remove_dir(&d).is_err() && d.exists() && started.elapsed() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// Nodes of earlier runs whose test process is gone: their processes died
/// with it (parent-death signal, then the pid namespace), their cgroups and
/// folders are left; remove both.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove_cgroups(&format!("testenv-node-{name}"), Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

static SHARED: tokio::sync::OnceCell<Cluster> = tokio::sync::OnceCell::const_new();

/// The node shared by every test of one test binary, started on first use.
/// The first caller's options win: every test of one binary passes the same.
pub async fn shared_cluster(options: impl FnOnce() -> NodeOptions) -> &'static Cluster {
    SHARED
        .get_or_init(|| async {
            Cluster::start(options())
                .await
                .unwrap_or_else(|e| panic!("starting the test node: {e}"))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn a_shop_domain_resolves_to_the_answer() {
        let q = query("Oms-Demo.myshopify.com", 1);
        let r = dns_reply(&q, "myshopify.com", Ipv4Addr::new(10, 96, 0, 50)).expect("a reply");
        assert_eq!(&r[..2], &[0x12, 0x34], "same id");
        assert_eq!(r[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &[10, 96, 0, 50]);
    }

    #[test]
    fn other_names_are_nxdomain_and_aaaa_is_empty() {
        let other =
            dns_reply(&query("example.com", 1), "myshopify.com", Ipv4Addr::LOCALHOST).expect("a reply");
        assert_eq!(other[3] & 0x0f, 3, "NXDOMAIN");
        let aaaa = dns_reply(
            &query("a.myshopify.com", 28),
            "myshopify.com",
            Ipv4Addr::LOCALHOST,
        )
        .expect("a reply");
        assert_eq!(aaaa[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([aaaa[6], aaaa[7]]), 0, "no answer");
        // A lookalike suffix is not ours.
        let evil = dns_reply(
            &query("evilmyshopify.com", 1),
            "myshopify.com",
            Ipv4Addr::LOCALHOST,
        )
        .expect("a reply");
        assert_eq!(evil[3] & 0x0f, 3);
    }

    #[test]
    fn truncated_queries_get_no_reply() {
        let q = query("a.myshopify.com", 1);
        for n in 0..q.len() {
            assert!(
                dns_reply(&q[..n], "myshopify.com", Ipv4Addr::LOCALHOST).is_none(),
                "{n} bytes"
            );
        }
    }
}
