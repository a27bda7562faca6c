//! `shopify-operator import` end to end: a real mariadbd (started once per
//! test binary from `MARIADB_BIN_DIR`, see `hack/mariadb.sh`) holds the old
//! OMS table; the binary runs as a subprocess and its manifests, files,
//! tables and cluster writes are checked, and so is that no token or
//! database password ever reaches stderr or a table.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;
use shopify_operator::crd::ShopifyShop;
use testenv::Supervised;

/// The importer's database password; `@` so that the URL holds it
/// percent-encoded and both forms must stay out of messages.
const PASSWORD: &str = "s3cret@OMS";
const PASSWORD_IN_URL: &str = "s3cret%40OMS";

/// Rows of the OMS table: three good shops in three spellings, then one of
/// each kind of bad row.
const ROWS: &[(Option<&str>, Option<&str>)] = &[
    (Some("alpha.myshopify.com"), Some("shpat_alpha_0001")),
    (
        Some("https://Bravo.myshopify.com/admin/orders"),
        Some("shpat_bravo_0002"),
    ),
    (Some("  charlie.myshopify.com/ "), Some(" shpat_charlie_0003 ")),
    (Some("nulltoken.myshopify.com"), None),
    (Some("emptytoken.myshopify.com"), Some("")),
    (Some("shop.example.com"), Some("shpat_baddomain_0004")),
    (Some("dup.myshopify.com"), Some("shpat_dup_0005")),
    (Some("https://dup.myshopify.com/"), Some("shpat_dup_0006")),
];
const GOOD: [(&str, &str); 3] = [
    ("alpha", "shpat_alpha_0001"),
    ("bravo", "shpat_bravo_0002"),
    ("charlie", "shpat_charlie_0003"),
];
const SKIPPED: [(&str, &str); 4] = [
    ("nulltoken.myshopify.com", "empty token"),
    ("emptytoken.myshopify.com", "empty token"),
    ("shop.example.com", "not a *.myshopify.com domain"),
    (
        "dup.myshopify.com",
        "duplicate shop: 2 rows with different tokens",
    ),
];

/// The test binary's mariadbd.
struct MariaDb {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    _server: Mutex<Supervised>,
    _port: testenv::PortLease,
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MARIADB_BIN_DIR") {
        return PathBuf::from(dir);
    }
    for dir in ["/usr/sbin", "/usr/bin"] {
        if Path::new(dir).join("mariadbd").is_file() && Path::new("/usr/bin/mariadb-install-db").is_file() {
            return PathBuf::from(dir);
        }
    }
    panic!("MariaDB not found: set MARIADB_BIN_DIR=$(hack/mariadb.sh) (make test does)");
}

/// `dir/name`, else `name` from the sibling bin/sbin folder or PATH
/// (Debian keeps mariadbd in /usr/sbin and the rest in /usr/bin).
fn program(dir: &Path, name: &str) -> PathBuf {
    [
        dir.to_path_buf(),
        dir.with_file_name("bin"),
        dir.with_file_name("sbin"),
    ]
    .into_iter()
    .map(|d| d.join(name))
    .find(|p| p.is_file())
    .unwrap_or_else(|| PathBuf::from(name))
}

/// Removes folders of earlier runs whose test process is gone (a static
/// server is never dropped, so its folder outlives it).
fn sweep_stale(base: &Path) {
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let pid = entry
            .file_name()
            .to_string_lossy()
            .split('-')
            .next()
            .map(str::to_string);
        if let Some(pid) = pid.filter(|p| p.parse::<u32>().is_ok())
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn mariadb() -> &'static MariaDb {
    static DB: OnceLock<MariaDb> = OnceLock::new();
    DB.get_or_init(|| {
        let bin = bin_dir();
        let base = std::env::temp_dir().join("shopify-operator-mariadb");
        std::fs::create_dir_all(&base).unwrap();
        sweep_stale(&base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempdir_in(&base)
            .unwrap()
            .keep();
        // Small InnoDB files: the default redo log alone is 96 MiB.
        let small = ["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"];
        let t0 = Instant::now();
        let out = Command::new(program(&bin, "mariadb-install-db"))
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(small)
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let installed = t0.elapsed();
        // TLS with a throwaway CA, for the ssl-mode test.
        testenv::Authority::new()
            .unwrap()
            .write_serving(&dir, &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let lease = testenv::lease_port().expect("lease a port for mariadbd");
        let port = lease.port();
        let mut cmd = Command::new(program(&bin, "mariadbd"));
        cmd.args([
            "--no-defaults",
            "--user=root",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--ssl-cert={}", dir.join("serving.crt").display()))
        .arg(format!("--ssl-key={}", dir.join("serving.key").display()))
        .arg(format!("--ssl-ca={}", dir.join("ca.crt").display()))
        .args(small);
        let mut server = testenv::spawn_supervised("mariadbd", &mut cmd, &dir.join("mariadbd.log"))
            .expect("start mariadbd");
        // Ready when it accepts a connection and sends its greeting.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.exited() {
                panic!("mariadbd exited ({status}): {}", server.log_tail(30));
            }
            let greeted = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.read(&mut [0u8; 4])
            });
            if matches!(greeted, Ok(n) if n > 0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd not ready in 60s: {}",
                server.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "mariadbd ready on 127.0.0.1:{port}: datadir in {installed:?}, started in {:?}",
            t0.elapsed() - installed
        );
        let db = MariaDb {
            bin,
            dir,
            port,
            _server: Mutex::new(server),
            _port: lease,
        };
        db.sql(&format!(
            "CREATE USER importer@'%' IDENTIFIED BY '{PASSWORD}'; GRANT SELECT ON *.* TO importer@'%';
             CREATE USER tls_importer@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL;
             GRANT SELECT ON *.* TO tls_importer@'%';"
        ));
        db
    })
}

impl MariaDb {
    /// Runs `sql` as root through the socket.
    fn sql(&self, sql: &str) {
        let mut child = Command::new(program(&self.bin, "mariadb"))
            .args(["--no-defaults", "--user=root", "--batch"])
            .arg(format!("--socket={}", self.dir.join("mysqld.sock").display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the mariadb client");
        child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "SQL failed: {}\n{sql}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A fresh database `name` with `table(shop_col, token_col)` holding
    /// `rows`; returns the importer's URL for it.
    fn database(
        &self,
        name: &str,
        table: &str,
        cols: (&str, &str),
        rows: &[(Option<&str>, Option<&str>)],
    ) -> String {
        // Prefixed: a test name may be an SQL keyword.
        let name = format!("t_{name}");
        let lit = |v: Option<&str>| v.map_or("NULL".to_string(), |s| format!("'{s}'"));
        let values: Vec<String> = rows
            .iter()
            .map(|(shop, token)| format!("({}, {})", lit(*shop), lit(*token)))
            .collect();
        self.sql(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name};
             CREATE TABLE {name}.{table} (id INT AUTO_INCREMENT PRIMARY KEY, {} VARCHAR(255) NULL, {} VARCHAR(255) NULL);
             INSERT INTO {name}.{table} ({0}, {1}) VALUES {2};",
            cols.0,
            cols.1,
            values.join(", ")
        ));
        format!(
            "mysql://importer:{PASSWORD_IN_URL}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    fn oms(&self, name: &str) -> String {
        self.database(name, "shopify_app_admin_clients", ("shop_url", "token"), ROWS)
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `shopify-operator import` with `args` and `env`.
fn import(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shopify-operator"));
    cmd.arg("import").args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run shopify-operator import");
    let run = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    let every_token = ROWS
        .iter()
        .filter_map(|r| r.1)
        .map(str::trim)
        .filter(|t| !t.is_empty());
    for secret in every_token.chain(["shpat_changed_9999", PASSWORD, PASSWORD_IN_URL]) {
        assert!(
            !run.stderr.contains(secret),
            "{secret} on stderr:\n{}",
            run.stderr
        );
    }
    run
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML document"))
        .collect()
}

fn decoded(secret: &Value) -> String {
    use base64::Engine;
    let b64 = secret["data"]["access-token"]
        .as_str()
        .expect("data.access-token");
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

/// Asserts `docs` are exactly the good shops' Secret + ShopifyShop pairs.
fn assert_good_manifests(docs: &[Value], namespace: &str) {
    let mut want = Vec::new();
    for (name, token) in GOOD {
        want.push((
            "Secret".to_string(),
            format!("{name}-shopify-token"),
            token.to_string(),
        ));
        want.push((
            "ShopifyShop".to_string(),
            name.to_string(),
            format!("{name}.myshopify.com"),
        ));
    }
    let got: Vec<_> = docs
        .iter()
        .map(|d| {
            assert_eq!(d["metadata"]["namespace"], namespace);
            assert_eq!(
                d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "shopify-operator-import"
            );
            let kind = d["kind"].as_str().unwrap().to_string();
            let detail = if kind == "Secret" {
                assert_eq!(d["type"], "Opaque");
                decoded(d)
            } else {
                let name = d["metadata"]["name"].as_str().unwrap();
                assert_eq!(
                    d["spec"]["token"]["secretRef"]["name"],
                    format!("{name}-shopify-token")
                );
                d["spec"]["domain"].as_str().unwrap().to_string()
            };
            (kind, d["metadata"]["name"].as_str().unwrap().to_string(), detail)
        })
        .collect();
    assert_eq!(got, want);
}

fn assert_skips_reported(stderr: &str) {
    for (shop, reason) in SKIPPED {
        assert!(
            stderr.contains(&format!("skipped {shop}: {reason}")),
            "{shop} not reported:\n{stderr}"
        );
    }
}

#[test]
fn manifests_on_stdout_are_exactly_the_good_shops() {
    let url = mariadb().oms("stdout");
    let run = import(&[("DATABASE_URL", &url)], &["--namespace", "shops"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_good_manifests(&docs(&run.stdout), "shops");
    assert_skips_reported(&run.stderr);
    assert!(
        run.stderr.contains("imported 3, unchanged 0, skipped 4"),
        "{}",
        run.stderr
    );
}

#[test]
fn output_dir_holds_one_private_file_per_shop() {
    let url = mariadb().oms("outdir");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("manifests");
    let run = import(
        &[],
        &[
            "--database-url",
            &url,
            "--namespace",
            "shops",
            "--output-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stdout, "", "tokens go to the files only");
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["alpha.yaml", "bravo.yaml", "charlie.yaml"]);
    let mut all = Vec::new();
    for f in &files {
        let path = out.join(f);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f}"
        );
        all.extend(docs(&std::fs::read_to_string(path).unwrap()));
    }
    assert_good_manifests(&all, "shops");
}

#[test]
fn dry_run_prints_a_table_without_tokens() {
    let url = mariadb().oms("dryrun");
    let run = import(&[("DATABASE_URL", &url)], &["--namespace", "shops", "--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["SHOP", "NAME", "ACTION", "REASON"]);
    for (name, _) in GOOD {
        let domain = format!("{name}.myshopify.com");
        assert!(
            lines.contains(&vec![domain.as_str(), name, "create"]),
            "{name}:\n{}",
            run.stdout
        );
    }
    for (shop, reason) in SKIPPED {
        let line = lines.iter().find(|l| l[0] == shop).expect(shop);
        assert_eq!(line[1..3], ["-", "skipped"]);
        assert_eq!(line[3..].join(" "), reason);
    }
    assert_eq!(lines.len(), 1 + GOOD.len() + SKIPPED.len());
    for (_, token) in GOOD {
        assert!(!run.stdout.contains(token), "token in the table:\n{}", run.stdout);
    }
    assert!(
        run.stderr.contains("(dry run: nothing written)"),
        "{}",
        run.stderr
    );
}

#[test]
fn custom_names_come_from_flags_or_env_and_bad_names_are_fatal() {
    let db = mariadb();
    let rows = [(Some("delta.myshopify.com"), Some("shpat_delta_0007"))];
    let url = db.database("custom", "legacy_clients", ("domain", "secret"), &rows);
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("IMPORT_TABLE", "legacy_clients"),
        ("IMPORT_TOKEN_COLUMN", "secret"),
        ("IMPORT_NAMESPACE", "oms"),
    ];
    let run = import(&env, &["--shop-column", "domain"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let d = docs(&run.stdout);
    assert_eq!(d.len(), 2);
    assert_eq!(decoded(&d[0]), "shpat_delta_0007");
    assert_eq!(d[1]["spec"]["domain"], "delta.myshopify.com");
    assert!(
        run.stderr.contains("imported 1, unchanged 0, skipped 0"),
        "{}",
        run.stderr
    );

    for (flag, value, want) in [
        ("--shop-column", "shop_url", "Unknown column 'shop_url'"),
        ("--table", "no_such_table", "no_such_table' doesn't exist"),
        (
            "--table",
            "legacy_clients; DROP TABLE legacy_clients",
            "invalid table name",
        ),
    ] {
        let run = import(&env, &[flag, value]);
        assert_eq!(run.code, 1, "{flag} {value}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{flag} {value}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    // The injection attempt never reached the server.
    let run = import(&env, &["--shop-column", "domain"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn an_unusable_database_is_fatal_and_the_password_stays_hidden() {
    let db = mariadb();
    db.oms("password");
    // Leased and never listened on: nobody can be there.
    let lease = testenv::lease_port().unwrap();
    let closed = lease.port();
    for url in [
        format!("mysql://importer:{PASSWORD_IN_URL}@127.0.0.1:{closed}/oms"),
        format!(
            "mysql://importer:{PASSWORD_IN_URL}x@127.0.0.1:{}/t_password",
            db.port
        ),
    ] {
        let run = import(
            &[("DATABASE_URL", &url)],
            &["--namespace", "shops", "--connect-timeout", "5s"],
        );
        assert_eq!(run.code, 1, "{url}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("cannot connect to mysql://importer:***@127.0.0.1"),
            "{}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
    }
    // A usage error is fatal too (clap's own status, 2, would read as "some
    // rows skipped"), and clap's message must not echo the URL either.
    let url = format!(
        "mysql://importer:{PASSWORD_IN_URL}@127.0.0.1:{}/t_password",
        db.port
    );
    let run = import(&[("DATABASE_URL", &url)], &["--namespace", "shops", "--force"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--apply"), "{}", run.stderr);
    let run = import(&[("DATABASE_URL", &url)], &["--namespace", "Not_A_Label"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("invalid --namespace"), "{}", run.stderr);
}

#[test]
fn ssl_mode_connects_over_tls_and_verifies_the_server() {
    let db = mariadb();
    let url = db.oms("tls").replace("importer:", "tls_importer:");
    let ca = db.dir.join("ca.crt");
    let with = |query: &str| format!("{url}?{query}");
    let verified = with(&format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca.display()));
    for (url, code, want) in [
        // The user requires TLS: without it the server refuses the login.
        (url.clone(), 1, "Access denied"),
        (verified, 2, "imported 3"),
        (with("ssl-mode=REQUIRED"), 2, "imported 3"),
        // Our CA is in no built-in root store.
        (
            with("ssl-mode=VERIFY_CA"),
            1,
            "invalid peer certificate: UnknownIssuer",
        ),
    ] {
        let run = import(&[("DATABASE_URL", &url)], &["--namespace", "shops"]);
        assert_eq!(run.code, code, "{url}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{url}: {}", run.stderr);
    }
}

async fn api_state(client: &Client, ns: &str) -> BTreeMap<String, (String, String)> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let shops: Api<ShopifyShop> = Api::namespaced(client.clone(), ns);
    let mut state = BTreeMap::new();
    for s in secrets.list(&ListParams::default()).await.unwrap() {
        let token = s
            .data
            .as_ref()
            .map(|d| String::from_utf8(d["access-token"].0.clone()).unwrap());
        state.insert(
            format!("secret/{}", s.name_any()),
            (s.resource_version().unwrap(), token.unwrap_or_default()),
        );
    }
    for s in shops.list(&ListParams::default()).await.unwrap() {
        let host = s.spec.webhooks.as_ref().and_then(|w| w.endpoint.host.clone());
        state.insert(
            format!("shop/{}", s.name_any()),
            (s.resource_version().unwrap(), host.unwrap_or_default()),
        );
    }
    state
}

/// `ACTION` of each shop in a table, by name.
fn actions(table: &str) -> BTreeMap<String, String> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|l| l[1] != "-")
        .map(|l| (l[1].to_string(), l[2].to_string()))
        .collect()
}

const TEMPLATE: &str = "apiVersion: shopify-operator.dev/v1alpha1
kind: ShopifyShop
metadata: {name: template}
spec:
  domain: template.myshopify.com
  token: {secretRef: {name: template}}
  webhooks:
    endpoint: {host: oms.example.com}
    topics: [orders/create]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_then_is_unchanged_and_a_new_token_needs_force() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("import").await.unwrap();
    let client = cp.admin_client().await.unwrap();
    let db = mariadb();
    let url = db.oms("apply");
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.yaml");
    std::fs::write(&template, TEMPLATE).unwrap();
    let kubeconfig = cp.admin_kubeconfig().to_str().unwrap().to_string();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("KUBECONFIG", kubeconfig.as_str()),
    ];
    let apply = |extra: &[&str]| {
        let mut args = vec![
            "--namespace",
            &ns,
            "--template",
            template.to_str().unwrap(),
            "--apply",
        ];
        args.extend_from_slice(extra);
        import(&env, &args)
    };
    let all = |action: &str| {
        GOOD.iter()
            .map(|(n, _)| (n.to_string(), action.to_string()))
            .collect::<BTreeMap<_, _>>()
    };

    let run = apply(&["--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(actions(&run.stdout), all("create"));
    assert!(
        api_state(&client, &ns).await.is_empty(),
        "a dry run wrote something"
    );

    let run = apply(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(actions(&run.stdout), all("create"));
    assert_skips_reported(&run.stderr);
    let first = api_state(&client, &ns).await;
    let mut want = BTreeMap::new();
    for (name, token) in GOOD {
        want.insert(format!("secret/{name}-shopify-token"), token.to_string());
        want.insert(format!("shop/{name}"), "oms.example.com".to_string());
    }
    let contents = |s: &BTreeMap<String, (String, String)>| {
        s.iter()
            .map(|(k, v)| (k.clone(), v.1.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(contents(&first), want);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let alpha = secrets.get("alpha-shopify-token").await.unwrap();
    assert!(
        alpha
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("shopify-operator-import"))
    );

    let run = apply(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(actions(&run.stdout), all("unchanged"));
    assert!(
        run.stderr.contains("imported 0, unchanged 3, skipped 4"),
        "{}",
        run.stderr
    );
    assert_eq!(api_state(&client, &ns).await, first, "an unchanged import wrote");

    db.sql("UPDATE t_apply.shopify_app_admin_clients SET token = 'shpat_changed_9999' WHERE shop_url = 'alpha.myshopify.com'");
    let run = apply(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let mut want_actions = all("unchanged");
    want_actions.insert("alpha".into(), "conflict".into());
    assert_eq!(actions(&run.stdout), want_actions);
    assert!(
        run.stderr.contains(
            "conflict alpha.myshopify.com: Secret alpha-shopify-token holds a different access-token"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(api_state(&client, &ns).await, first, "a conflict overwrote");

    let run = apply(&["--force", "--dry-run"]);
    want_actions.insert("alpha".into(), "update".into());
    assert_eq!(actions(&run.stdout), want_actions);
    assert_eq!(api_state(&client, &ns).await, first, "a dry run overwrote");

    let run = apply(&["--force"]);
    assert_eq!(actions(&run.stdout), want_actions);
    assert!(
        run.stdout.contains("access-token replaced (--force)"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("shpat_"),
        "token in the table:\n{}",
        run.stdout
    );
    let after = api_state(&client, &ns).await;
    assert_eq!(after["secret/alpha-shopify-token"].1, "shpat_changed_9999");
    assert_eq!(after["shop/alpha"], first["shop/alpha"]);
    assert_eq!(
        after["secret/bravo-shopify-token"],
        first["secret/bravo-shopify-token"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_the_crd_rejects_is_skipped_before_its_secret_is_written() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("import-invalid").await.unwrap();
    let client = cp.admin_client().await.unwrap();
    let url = mariadb().database(
        "invalid",
        "shopify_app_admin_clients",
        ("shop_url", "token"),
        &ROWS[..1],
    );
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.yaml");
    // Well-formed for serde; the CRD's CEL rule refuses compliance topics.
    std::fs::write(&template, TEMPLATE.replace("orders/create", "shop/redact")).unwrap();
    let kubeconfig = cp.admin_kubeconfig().to_str().unwrap().to_string();
    let run = import(
        &[("DATABASE_URL", &url), ("KUBECONFIG", &kubeconfig)],
        &[
            "--namespace",
            &ns,
            "--template",
            template.to_str().unwrap(),
            "--apply",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        actions(&run.stdout),
        BTreeMap::from([("alpha".to_string(), "skipped".to_string())])
    );
    assert!(
        run.stderr.contains("ShopifyShop refused by the apiserver")
            && run.stderr.contains("compliance topics"),
        "{}",
        run.stderr
    );
    assert!(
        api_state(&client, &ns).await.is_empty(),
        "the Secret was written for a refused shop"
    );
}
