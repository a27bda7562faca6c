//! `make demo`, one of the README's two commands, keeps working: the demo
//! binary (debug build here) runs its own control plane, simulator and
//! operator, switches the Ingress host and, with `DEMO_EXIT=1` as the
//! README says, stops once every shop is repointed. Its simulator serves
//! today's calendar of API versions.

use std::process::Command;

#[test]
fn the_demo_repoints_every_seed_shop_and_exits_with_demo_exit_1() {
    let out = Command::new(env!("CARGO_BIN_EXE_shopify-demo"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("DEMO_EXIT", "1")
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stdout}\n{stderr}");
    assert!(stdout.contains("==> done"), "{stdout}");
    // One ShopifyApp, its three shops Ready.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("oms ") && l.contains("fake-client-id-seed-0000") && l.contains("3/3")),
        "{stdout}"
    );
    // offline also has a filtered subscription (at the host too) and one to
    // Pub/Sub, which stays where it is.
    assert_eq!(
        stdout.matches("7/7 subscriptions at the new host").count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("8/9 subscriptions at the new host").count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains("cutover at the same host: 2 Shopify mutations"),
        "{stdout}"
    );
    assert!(stdout.contains("filter=\"financial_status:paid\""), "{stdout}");
    assert!(
        stdout.contains("pubsub://ps-analytics:shopify-orders"),
        "{stdout}"
    );
    // The seed shops ask for 2025-07, which Shopify's calendar stopped
    // serving on 2026-07-01: each says so once.
    assert_eq!(stdout.matches("ApiVersionFellForward").count(), 3, "{stdout}");
}
