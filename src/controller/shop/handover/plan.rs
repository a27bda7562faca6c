//! Where a shop's move between Shopify apps stands, from its stored status
//! and the app `spec.appRef` names (pure): the stage a pass is in, and the
//! topics the new app's token must cover before anything switches.

use crate::crd::{HandoverPhase, LiveApp, ShopifyShopStatus, WebhooksSpec};

/// What this pass does about the shop's app.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Nothing to hand over: the live app is the one `spec.appRef` names
    /// (or none was recorded yet, and it becomes the live one).
    Steady,
    /// `spec.appRef` names the live app again while a move still waited:
    /// the move is called off, nothing was switched.
    Cancelled,
    /// `spec.appRef` names another app than the live one: its token
    /// decides whether the pass waits, is blocked or switches.
    Moving {
        /// The live app, whose token and subscriptions are in use.
        from: LiveApp,
    },
    /// The switch happened in an earlier pass; the previous app's
    /// subscriptions are still to be deleted.
    Retiring,
}

/// Whether `a` and `b` are one Shopify app: the same ShopifyApp, or two
/// ShopifyApps with one client id (a rename moves nothing on Shopify).
pub fn same_app(a: &LiveApp, b: &LiveApp) -> bool {
    a.name == b.name || matches!((&a.client_id, &b.client_id), (Some(x), Some(y)) if x == y)
}

/// The stage of a pass for a shop whose `spec.appRef` resolves to
/// `target`, given what its status recorded.
pub fn stage(status: Option<&ShopifyShopStatus>, target: &LiveApp) -> Stage {
    let Some(live) = status.and_then(|s| s.app.as_ref()) else {
        return Stage::Steady;
    };
    if !same_app(live, target) {
        return Stage::Moving { from: live.clone() };
    }
    match status.and_then(|s| s.handover.as_ref()).map(|h| h.phase) {
        Some(HandoverPhase::Switching) => Stage::Retiring,
        Some(HandoverPhase::WaitingForInstall | HandoverPhase::Blocked) => Stage::Cancelled,
        _ => Stage::Steady,
    }
}

/// Every topic the shop's webhooks subscribe (`extra`: the operator's own
/// besides the spec's), for the new app's scope check.
pub fn topics(spec: Option<&WebhooksSpec>, extra: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = spec
        .into_iter()
        .flat_map(|w| {
            w.topics
                .iter()
                .chain(w.subscriptions.iter().flat_map(|s| s.topics.iter()))
                .cloned()
        })
        .chain(extra)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, client_id: Option<&str>) -> LiveApp {
        LiveApp {
            name: name.into(),
            client_id: client_id.map(Into::into),
            token_secret: format!("{name}-token"),
        }
    }

    fn status(yaml: &str) -> ShopifyShopStatus {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn a_shop_without_a_recorded_app_takes_the_one_it_names() {
        assert_eq!(stage(None, &app("oms", None)), Stage::Steady);
        assert_eq!(stage(Some(&status("{}")), &app("oms", None)), Stage::Steady);
    }

    #[test]
    fn another_app_is_a_move_and_a_rename_is_not() {
        let s = status("{app: {name: oms-legacy, clientId: legacy, tokenSecret: online-shopify-token}}");
        assert_eq!(
            stage(Some(&s), &app("oms", Some("new"))),
            Stage::Moving {
                from: app("oms-legacy", Some("legacy")).with_secret("online-shopify-token")
            }
        );
        // Another ShopifyApp with the same client id: the same Shopify app.
        assert_eq!(
            stage(Some(&s), &app("oms-renamed", Some("legacy"))),
            Stage::Steady
        );
        // An unknown client id on either side: the names decide.
        assert!(matches!(stage(Some(&s), &app("oms", None)), Stage::Moving { .. }));
    }

    #[test]
    fn naming_the_live_app_again_cancels_a_wait_and_finishes_a_switch() {
        let waiting = status(
            "{app: {name: oms-legacy, tokenSecret: t}, handover: {phase: WaitingForInstall, to: oms, from: {name: oms-legacy, tokenSecret: t}}}",
        );
        assert_eq!(stage(Some(&waiting), &app("oms-legacy", None)), Stage::Cancelled);
        let blocked = status(
            "{app: {name: oms-legacy, tokenSecret: t}, handover: {phase: Blocked, to: oms, from: {name: oms-legacy, tokenSecret: t}}}",
        );
        assert_eq!(stage(Some(&blocked), &app("oms-legacy", None)), Stage::Cancelled);
        let switching = status(
            "{app: {name: oms, tokenSecret: n}, handover: {phase: Switching, to: oms, from: {name: oms-legacy, tokenSecret: t}}}",
        );
        assert_eq!(stage(Some(&switching), &app("oms", None)), Stage::Retiring);
        let done = status(
            "{app: {name: oms, tokenSecret: n}, handover: {phase: Complete, to: oms, from: {name: oms-legacy, tokenSecret: t}}}",
        );
        assert_eq!(stage(Some(&done), &app("oms", None)), Stage::Steady);
        // Setting appRef back mid-switch is a move the other way.
        assert!(matches!(
            stage(Some(&switching), &app("oms-legacy", None)),
            Stage::Moving { from } if from.name == "oms"
        ));
    }

    #[test]
    fn the_scope_check_covers_every_topic_once() {
        let spec: WebhooksSpec = serde_norway::from_str(
            "{endpoint: {host: oms.example.com}, topics: [orders/create, products/update], \
             subscriptions: [{topics: [orders/create, orders/paid], uri: 'pubsub://p:t'}]}",
        )
        .unwrap();
        assert_eq!(
            topics(Some(&spec), ["app/uninstalled".to_string()]),
            [
                "app/uninstalled",
                "orders/create",
                "orders/paid",
                "products/update"
            ]
        );
        assert!(topics(None, []).is_empty());
    }

    impl LiveApp {
        fn with_secret(mut self, s: &str) -> Self {
            self.token_secret = s.into();
            self
        }
    }
}
