//! The task that fires schedule rules: it sleeps until the earliest next
//! slot of any enabled schedule rule (or until a rule changes), then fires
//! every rule that is due, once.
//!
//! Each rule's last fired slot is committed before its targets are
//! invoked, so no slot ever fires twice: a crash between the two loses that
//! one firing instead. A rule whose slots passed while the controller was
//! down (or busy) fires once, for the latest of them, then keeps its
//! schedule: no burst of missed firings.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::bus::timestamp;
use super::{millis, Loaded};
use crate::engine::Engine;

/// Longest sleep with nothing scheduled: rules wake it when they change.
const IDLE: Duration = Duration::from_secs(3600);

/// Fire schedule rules until `stop`.
pub async fn run(engine: Arc<Engine>, stop: CancellationToken) {
    let bus = engine.bus();
    loop {
        let now = bus.clock().now();
        for loaded in bus.rules() {
            let Some(schedule) = loaded.schedule.as_ref().filter(|_| loaded.rule.enabled()) else { continue };
            let (anchor, fired) = (millis(loaded.rule.anchor_ms), millis(loaded.rule.fired_ms));
            if let Some(slot) = schedule.latest_due(anchor, fired, now) {
                if schedule.next_after(anchor, fired).is_some_and(|first| first < slot) {
                    tracing::info!(rule = %loaded.rule.name, %slot, "schedule slots were missed; firing once for the latest");
                }
                fire(&engine, &loaded, slot).await;
            }
        }
        let next = bus.rules().iter().filter_map(|l| bus.next_firing(l)).min();
        let sleep = next.map_or(IDLE, |t| bus.clock().until(t));
        tokio::select! {
            () = stop.cancelled() => return,
            () = bus.changed.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Fire `loaded` for `slot`: record the slot, then queue the scheduled
/// event (or each target's input) for every target.
async fn fire(engine: &Engine, loaded: &Loaded, slot: DateTime<Utc>) {
    let bus = engine.bus();
    let name = &loaded.rule.name;
    match bus.mark_fired(name, &loaded.rule, slot) {
        Ok(true) => {}
        // Changed meanwhile: the next round sees the new rule.
        Ok(false) => return,
        Err(e) => {
            tracing::error!(rule = %name, error = %e, "cannot record a schedule's slot; not firing it");
            return;
        }
    }
    let event = bus.envelope("aws.events", "Scheduled Event", vec![bus.rule_arn(name)], json!({}), slot);
    for delivery in bus.deliveries(loaded, &event, &timestamp(Utc::now())) {
        if let Err(e) = engine.deliver(&delivery).await {
            tracing::error!(rule = %name, target = %delivery.target, error = %e, "scheduled event not queued");
        }
    }
    tracing::debug!(rule = %name, %slot, "schedule fired");
}
