//! The demo's last act, the cutover's first risk: one seed shop moves from
//! the Rails app's Shopify app to a new one (`spec.appRef` edited), the
//! merchant's install simulated by an authorization code the new app
//! exchanges, and shopify-sim's timeline measuring the gap (none) and how
//! long both apps delivered. Local only (the simulator and the control
//! plane on loopback).

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use shopify_admin::{ClientSecret, ShopifyClient};
use shopify_operator::crd::{ShopifyApp, ShopifyShop};
use shopify_sim::{self as sim, AppFixture, Fixture};
use testenv::ControlPlane;

use super::{BoxError, events, kubectl};

/// The new app: a made-up client that only the simulator knows.
const NEW_APP: &str = "oms-next";
const NEW_CLIENT_ID: &str = "fake-client-id-next-0000";
const NEW_CLIENT_SECRET: &str = "fake-client-secret-next-0000";
/// The shop that moves, and the Secret for the new app's token.
const SHOP: &str = "diff";
const NEW_TOKEN_SECRET: &str = "diff-oms-next-shopify-token";

/// Moves shop `diff` from ShopifyApp `oms` to a new `oms-next` and prints
/// the steps, the gap and the overlap.
/// `old_client_id`: the app the seed shops were installed with.
pub async fn run(
    cp: &ControlPlane,
    client: &kube::Client,
    sim: &sim::Sim,
    shopify: &ShopifyClient,
    old_client_id: &str,
) -> Result<(), BoxError> {
    println!("==> handing shop {SHOP} over to a new Shopify app ({NEW_APP}), with no gap");
    sim.load(Fixture {
        apps: vec![AppFixture {
            client_id: NEW_CLIENT_ID.into(),
            client_secret: NEW_CLIENT_SECRET.into(),
            previous_client_secret: None,
        }],
        ..Default::default()
    });
    create_new_app(client).await?;
    let shops: Api<ShopifyShop> = Api::namespaced(client.clone(), "oms");
    let domain = shops.get(SHOP).await?.spec.domain;
    let since = SystemTime::now();
    println!("    1. in Git: spec.appRef {NEW_APP}, spec.token.secretRef {NEW_TOKEN_SECRET}");
    let patch = serde_json::json!({"spec": {"appRef": {"name": NEW_APP},
        "token": {"secretRef": {"name": NEW_TOKEN_SECRET}}}});
    shops
        .patch(SHOP, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let shop = format!("shop/{SHOP}");
    kubectl(
        cp,
        &[
            "wait",
            "--for=condition=AppHandover=False",
            &shop,
            "-n",
            "oms",
            "--timeout=60s",
        ],
    )?;
    let waiting = format!("shopifyapp/{NEW_APP}");
    kubectl(
        cp,
        &[
            "wait",
            "--for=jsonpath={.status.shopsWaiting}=1",
            &waiting,
            "-n",
            "oms",
            "--timeout=60s",
        ],
    )?;
    println!("    2. waiting for the merchant; the old app keeps the webhooks and syncs:");
    print!("{}", kubectl(cp, &["get", &shop, "-n", "oms", "-o", "wide"])?);
    print!("{}", kubectl(cp, &["get", "shopifyapps", "-n", "oms"])?);

    println!("    3. the merchant installs {NEW_APP} (simulated: a code exchanged for its token)");
    install(client, sim, shopify, &domain).await?;
    let t = Instant::now();
    kubectl(
        cp,
        &[
            "wait",
            "--for=condition=AppHandover",
            &shop,
            "-n",
            "oms",
            "--timeout=60s",
        ],
    )?;
    println!("    4. switched in {:.2}s:", t.elapsed().as_secs_f64());
    print!("{}", kubectl(cp, &["get", &shop, "-n", "oms", "-o", "wide"])?);
    print!("{}", events(cp, "HandedOver")?);
    report(sim, &domain, old_client_id, since);
    Ok(())
}

/// ShopifyApp `oms-next`: `oms`'s spec with its own credentials.
async fn create_new_app(client: &kube::Client) -> Result<(), BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "oms");
    let creds = serde_json::json!({"metadata": {"name": "oms-next-credentials"},
        "stringData": {"client-id": NEW_CLIENT_ID, "client-secret": NEW_CLIENT_SECRET}});
    secrets
        .create(&PostParams::default(), &serde_json::from_value(creds)?)
        .await?;
    let apps: Api<ShopifyApp> = Api::namespaced(client.clone(), "oms");
    let mut spec = apps.get("oms").await?.spec;
    spec.credentials_secret_ref.name = "oms-next-credentials".into();
    let mut app = ShopifyApp::new(NEW_APP, spec);
    app.metadata.namespace = Some("oms".into());
    apps.create(&PostParams::default(), &app).await?;
    Ok(())
}

/// What the operator's OAuth callback does once the merchant consents:
/// the new app exchanges the code and its token lands in the new Secret.
async fn install(
    client: &kube::Client,
    sim: &sim::Sim,
    shopify: &ShopifyClient,
    domain: &str,
) -> Result<(), BoxError> {
    let code = sim
        .issue_code_for(domain, NEW_CLIENT_ID, None)
        .ok_or("the simulator does not know the shop")?;
    let secret = ClientSecret::new(NEW_CLIENT_SECRET.into());
    let grant = shopify
        .exchange_code(domain, NEW_CLIENT_ID, &secret, &code, false)
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "oms");
    let token = serde_json::json!({"metadata": {"name": NEW_TOKEN_SECRET},
        "stringData": {"access-token": grant.access_token.expose()}});
    secrets
        .create(&PostParams::default(), &serde_json::from_value(token)?)
        .await?;
    Ok(())
}

/// Each app's subscriptions now, and from the timeline since the move
/// began: the longest time any topic had no live subscription (the gap)
/// and the longest both apps delivered it (the overlap).
fn report(sim: &sim::Sim, domain: &str, old_id: &str, since: SystemTime) {
    let old = sim.subscriptions_of(domain, old_id);
    let new = sim.subscriptions_of(domain, NEW_CLIENT_ID);
    println!(
        "    shopify-sim: {} subscriptions of the old app left, {} of {NEW_APP}",
        old.len(),
        new.len()
    );
    let timeline = sim.timeline(domain);
    let now = SystemTime::now();
    let (mut gap, mut overlap) = (Duration::ZERO, Duration::ZERO);
    for s in &new {
        let topic = topic_of(&timeline, &s.id);
        gap = gap.max(sim::timeline::uncovered(
            &timeline, &topic, &s.address, since, now,
        ));
        overlap = overlap.max(sim::timeline::overlap(
            &timeline,
            &topic,
            &s.address,
            old_id,
            NEW_CLIENT_ID,
        ));
    }
    println!(
        "    measured on shopify-sim's timeline: gap {:.3}s, both apps delivered for at most {:.3}s",
        gap.as_secs_f64(),
        overlap.as_secs_f64()
    );
}

/// The REST topic the timeline records for subscription `id`.
fn topic_of(timeline: &[sim::TimelineEntry], id: &str) -> String {
    timeline
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.topic.clone())
        .unwrap_or_default()
}
