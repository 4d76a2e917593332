//! Once a minute, what the console's Activity page draws and no counter holds: how many
//! registrations wait, and how much of each organizer's GoTo budget this gateway used.

use std::time::Duration;

use crate::organizers::Organizers;
use crate::state::Shared;

/// Samples now and then every minute (until aborted).
pub(crate) async fn sample_every_minute(shared: Shared, organizers: Organizers) {
    let mut granted: Vec<u64> = organizers
        .all()
        .iter()
        .map(|o| o.client.limiter().granted())
        .collect();
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let waiting = shared
            .store
            .registration_gauges()
            .await
            .map(|g| g.pending + g.delivering)
            .unwrap_or(0);
        let calls = organizers
            .all()
            .iter()
            .zip(granted.iter_mut())
            .map(|(o, before)| {
                let now = o.client.limiter().granted();
                let made = now.saturating_sub(*before);
                *before = now;
                (
                    o.profile.clone(),
                    made,
                    o.client.rate_limit().map(|r| r * 60.0),
                )
            })
            .collect();
        shared.metrics.sample(waiting, calls);
    }
}
