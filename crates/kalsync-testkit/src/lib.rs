//! What Kalsync's tests share (a dev-dependency only): times and bookings written the way
//! a person reads them, a free loopback port, and where
//! the third-party payloads live — Microsoft's EWS schema and answers, Graph responses
//! and notifications, Outlook `.ics` files, kept in the `shared/` folder beside the
//! checkout, not in the repository — and what a test does when they are not there.
//!
//! On a plain clone the folder is absent: a test that needs it says it is skipped and
//! passes. With `KALSYNC_REQUIRE_FIXTURES` set (CI sets it when the folder is there),
//! an absent folder fails the test instead, so a wrong path can never pass as a skip.

use std::path::PathBuf;

/// The variable that makes absent fixtures a failure.
pub const REQUIRE: &str = "KALSYNC_REQUIRE_FIXTURES";

/// `../shared/fixtures/<part>` beside the checkout, when it is there; `None` (after
/// saying the test is skipped) when it is not and nothing requires it.
///
/// # Panics
/// When the folder is absent and `KALSYNC_REQUIRE_FIXTURES` is set.
pub fn fixtures(part: &str) -> Option<PathBuf> {
    let dir = checkout().join("../shared/fixtures").join(part);
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{REQUIRE} is set but the shared fixtures are not at {} (the checkout's sibling `shared/`)",
        dir.display()
    );
    eprintln!(
        "skipped: ../shared/fixtures not present ({} not found beside the checkout)",
        dir.display()
    );
    None
}

/// A loopback port nothing listens on when this returns: for a server a test starts
/// itself (it binds the port), or for a peer that is down (nothing ever binds it).
///
/// # Panics
/// When no port can be bound on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `"2026-11-24 12:00"` (or `"2026-11-24"`, midnight) in Stockholm, where the sample
/// company is.
///
/// # Panics
/// When `s` is not such a time.
pub fn at(s: &str) -> jiff::Timestamp {
    kalsync_core::Zone::stockholm()
        .parse_instant(s)
        .expect("a Stockholm time")
}

/// A booking `id` from `from` to `to` (Stockholm times, [`at`]) with `subject`.
///
/// # Panics
/// When the id or the times are not valid.
pub fn booking(id: &str, from: &str, to: &str, subject: &str) -> kalsync_core::Booking {
    let mut b = kalsync_core::Booking::new(
        kalsync_core::BookingId::parse(id).expect("an id"),
        kalsync_core::BookingTime::timed(at(from), at(to)).expect("a time"),
    );
    b.subject = Some(subject.into());
    b
}

/// The checkout the running test belongs to: the nearest folder holding `Cargo.lock`
/// above the package cargo runs the test for. Read when the test runs, not when this
/// crate was compiled — a build shared by several checkouts (one target directory)
/// would otherwise point every one of them at the first.
fn checkout() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(PathBuf::from)
        .unwrap_or(package)
}

/// A benchmark's setting from the environment variable `name`, or `default` when it is
/// unset or unreadable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0 to 1) of figures sorted in ascending order, the nearest rank
/// below; NaN when there are none.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_part_is_none_unless_required() {
        if std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0") {
            return;
        }
        assert_eq!(fixtures("no-such-part-of-the-fixtures"), None);
    }
}
