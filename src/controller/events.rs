//! Publishing Events about shops (`events.k8s.io/v1`): a create, or, for
//! the same Event again within six minutes, a higher count on the first
//! one's `series`. Touches only Events; a failure is logged, never raised
//! (an Event that cannot be written must not hold back a reconcile).
//!
//! Why not kube-runtime's `Recorder`: it keeps a full copy of each Event it
//! published, with its key and object reference, for six minutes — about
//! 4 KB per shop after a host change, the second-largest thing in the
//! operator's memory at 10,000 shops. Its key also holds the shop's
//! resourceVersion, so a shop whose status was written in between never
//! matched, and it leaves out the note, so a repeat with a new message
//! kept the old one. Here a repeat is the same type, reason, action and
//! note about the same object (by uid), and what is kept of it is a hash,
//! the Event's name and its count.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// How long a published Event takes repeats into its series (client-go's
/// and kube-runtime's window).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// One Event to publish: `type_` is `Normal` or `Warning`.
pub(super) struct Draft<'a> {
    pub type_: &'static str,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: &'a str,
}

/// An Event published recently, as much as a repeat needs.
struct Published {
    name: String,
    count: i32,
    last: Instant,
}

#[derive(Default)]
struct Recent {
    by_key: HashMap<u64, Published>,
    pruned: Option<Instant>,
}

impl Recent {
    /// Forgets what is past the window, at most every few seconds (a host
    /// change publishes an Event per shop; scanning every entry for each
    /// one would be quadratic).
    fn prune(&mut self, now: Instant) {
        if self
            .pruned
            .is_some_and(|p| now.duration_since(p) < Duration::from_secs(10))
        {
            return;
        }
        self.pruned = Some(now);
        self.by_key
            .retain(|_, p| now.duration_since(p.last) < SERIES_WINDOW);
    }
}

/// Publishes Events as one reporting controller and instance.
pub(super) struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

impl Publisher {
    /// A publisher reporting as `controller` (instance: the Pod's name, or
    /// the controller's).
    pub(super) fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Publisher {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Mutex::new(Recent::default()),
        }
    }

    /// Publishes `draft` about `regarding`.
    pub(super) async fn publish(&self, draft: &Draft<'_>, regarding: &ObjectReference) {
        let key = key(draft, regarding);
        let repeat = {
            let mut recent = self.recent.lock().expect("recent events");
            let now = Instant::now();
            recent.prune(now);
            recent
                .by_key
                .get(&key)
                .filter(|p| now.duration_since(p.last) < SERIES_WINDOW)
                .map(|p| (p.name.clone(), p.count + 1))
        };
        let ns = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<Event> = Api::namespaced(self.client.clone(), ns);
        let written = match repeat {
            Some((name, count)) => match repeated(&events, &self.controller, &name, count).await {
                // The first one is gone (deleted, or its TTL passed): a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => self.create(&events, draft, regarding).await,
                r => r.map(|()| (name, count)),
            },
            None => self.create(&events, draft, regarding).await,
        };
        match written {
            Ok((name, count)) => {
                let published = Published {
                    name,
                    count,
                    last: Instant::now(),
                };
                self.recent
                    .lock()
                    .expect("recent events")
                    .by_key
                    .insert(key, published);
            }
            Err(e) => tracing::debug!(error = %e, reason = draft.reason, "event not published"),
        }
    }

    /// Creates the Event; its name and count (1).
    async fn create(
        &self,
        events: &Api<Event>,
        draft: &Draft<'_>,
        regarding: &ObjectReference,
    ) -> Result<(String, i32), kube::Error> {
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                // Unique per object and instant, as client-go names them.
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                namespace: regarding.namespace.clone(),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(draft.type_.into()),
            reason: Some(draft.reason.into()),
            action: Some(draft.action.into()),
            note: Some(draft.note.into()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let created = events
            .create(
                &PostParams {
                    field_manager: Some(self.controller.clone()),
                    ..Default::default()
                },
                &event,
            )
            .await?;
        Ok((created.metadata.name.unwrap_or_default(), 1))
    }
}

/// Counts a repeat on the Event `name`'s series (written as `manager`).
async fn repeated(events: &Api<Event>, manager: &str, name: &str, count: i32) -> Result<(), kube::Error> {
    let series = EventSeries {
        count,
        last_observed_time: MicroTime(jiff::Timestamp::now()),
    };
    let patch = serde_json::json!({ "series": series });
    events
        .patch(
            name,
            &PatchParams {
                field_manager: Some(manager.to_string()),
                ..Default::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
}

/// What makes two Events the same: type, reason, action, note, and the
/// object (its uid; its kind, namespace and name without one).
fn key(draft: &Draft<'_>, regarding: &ObjectReference) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (draft.type_, draft.reason, draft.action, draft.note).hash(&mut h);
    match &regarding.uid {
        Some(uid) => uid.hash(&mut h),
        None => (&regarding.kind, &regarding.namespace, &regarding.name).hash(&mut h),
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(uid: &str, resource_version: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("ShopifyShop".into()),
            namespace: Some("oms".into()),
            name: Some("online".into()),
            uid: Some(uid.into()),
            resource_version: Some(resource_version.into()),
            ..Default::default()
        }
    }

    fn draft(note: &str) -> Draft<'_> {
        Draft {
            type_: "Normal",
            reason: "SubscriptionsUpdated",
            action: "Reconcile",
            note,
        }
    }

    #[test]
    fn a_repeat_is_the_same_note_about_the_same_object_whatever_its_version() {
        let a = key(&draft("8 repointed to new.example"), &shop("u1", "10"));
        assert_eq!(a, key(&draft("8 repointed to new.example"), &shop("u1", "11")));
        assert_ne!(a, key(&draft("8 repointed to newer.example"), &shop("u1", "10")));
        assert_ne!(a, key(&draft("8 repointed to new.example"), &shop("u2", "10")));
    }

    #[test]
    fn what_is_past_the_window_is_forgotten() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        for (key, last) in [(1, t0), (2, t0 + SERIES_WINDOW)] {
            let published = Published {
                name: format!("e{key}"),
                count: 1,
                last,
            };
            recent.by_key.insert(key, published);
        }
        recent.prune(t0 + SERIES_WINDOW + Duration::from_secs(1));
        assert_eq!(recent.by_key.keys().collect::<Vec<_>>(), vec![&2]);
    }
}
