//! Waiting for what the service does in its own time: a check asked again every little
//! while until it holds or a limit passes.
//!
//! The clock is the real one: the service, the simulators and the browser answer over
//! real sockets, and a paused tokio clock would jump past their answers.

use std::time::Duration;

use tokio::time::Instant;

/// How often [`eventually`] and [`eventually_within`] ask.
const EVERY: Duration = Duration::from_millis(50);

/// Asks `check` every 50 ms until it holds, giving up after five seconds of waiting;
/// whether it did.
pub(crate) async fn eventually(check: impl AsyncFnMut() -> bool) -> bool {
    eventually_within(Duration::from_secs(5), check).await
}

/// Asks `check` every 50 ms until it holds, giving up after `limit` of waiting; whether
/// it did.
pub(crate) async fn eventually_within(limit: Duration, check: impl AsyncFnMut() -> bool) -> bool {
    polling(EVERY, limit, check).await
}

/// Asks `check` until it holds, sleeping `every` between asks for `limit` in all (the
/// asks' own time comes on top, so a slow check is not cut short); whether it did.
pub(crate) async fn polling(
    every: Duration,
    limit: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> bool {
    let sleeps = limit.as_millis().div_ceil(every.as_millis().max(1));
    for _ in 0..sleeps {
        if check().await {
            return true;
        }
        tokio::time::sleep(every).await;
    }
    check().await
}

/// Waits until `value` has stayed the same for `quiet` (at most a minute); that value.
///
/// # Panics
/// When it still changes after a minute.
pub(crate) async fn settled<T: PartialEq>(quiet: Duration, mut value: impl FnMut() -> T) -> T {
    let mut last = value();
    let mut since = Instant::now();
    let steady = eventually_within(Duration::from_secs(60), async || {
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        }
        since.elapsed() >= quiet
    })
    .await;
    assert!(steady, "still changing after a minute");
    last
}
