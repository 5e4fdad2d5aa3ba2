//! Deliberately broken behaviour for the convergence harness's self-check, and nothing
//! else: with the `harness-self-check` feature (the binary's `chaos` feature) and
//! `KALSYNC_HARNESS_BROKEN=read-before-subscribe`, a streaming subscription Exchange lost
//! is read at once and made again only at the next maintenance pass, without a read
//! after — the order that lost changes. The harness must then report divergences. A
//! build without the feature has no switch at all.

/// Whether the old read-then-subscribe order is restored on the EWS streaming path.
#[cfg(feature = "harness-self-check")]
pub(crate) fn read_before_subscribe() -> bool {
    static BROKEN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BROKEN.get_or_init(|| {
        let broken = std::env::var("KALSYNC_HARNESS_BROKEN")
            .is_ok_and(|v| v == "read-before-subscribe");
        if broken {
            tracing::warn!(
                "KALSYNC_HARNESS_BROKEN: lost EWS streaming subscriptions are read before they are made again (the harness's self-check; never in production)"
            );
        }
        broken
    })
}

/// Without the feature, never.
#[cfg(not(feature = "harness-self-check"))]
pub(crate) const fn read_before_subscribe() -> bool {
    false
}
