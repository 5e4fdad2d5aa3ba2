//! The leases chapter: one node holds a user until its lease runs out, by the clock the
//! nodes pass in.

use jiff::{SignedDuration, Timestamp};

use super::Cast;

/// Leases: one node holds a user until its lease runs out, by the clock the nodes
/// pass in. Starts with node-a holding both users (the outbox chapter); ends with
/// node-a holding them again.
pub(crate) async fn leases(c: &Cast<'_>, now: Timestamp, later: Timestamp) {
    let Cast { s, .. } = c;
    // Another node holds nobody, so nothing is due for it; node-a lets its users go.
    assert!(
        s.due_deliveries("node-b", later, 10)
            .await
            .expect("other node")
            .is_empty()
    );
    s.release_leases("node-a").await.expect("release");

    // Held until the lease runs out, renewed, taken over, released.
    let ttl = SignedDuration::from_millis(300);
    let ms = SignedDuration::from_millis;
    let held = s.lease_users("node-a", now, ttl, 100).await.expect("lease");
    assert_eq!(held.len(), 2);
    assert!(
        s.lease_users("node-b", now + ms(100), ttl, 100)
            .await
            .expect("lease")
            .is_empty(),
        "held users stay with node-a"
    );
    assert_eq!(
        s.lease_users("node-a", now + ms(200), ttl, 100)
            .await
            .expect("renew")
            .len(),
        2
    );
    assert!(
        s.lease_users("node-b", now + ms(450), ttl, 100)
            .await
            .expect("renewed")
            .is_empty(),
        "a renewed lease holds past its first expiry"
    );
    assert_eq!(
        s.lease_users("node-b", now + ms(600), ttl, 1)
            .await
            .expect("take over")
            .len(),
        1,
        "an expired lease is taken, at most `limit` a time"
    );
    assert_eq!(
        s.lease_users("node-b", now + ms(600), ttl, 100)
            .await
            .expect("take over")
            .len(),
        2
    );
    assert!(
        s.lease_users("node-a", now + ms(650), ttl, 100)
            .await
            .expect("lost")
            .is_empty()
    );
    s.release_leases("node-b").await.expect("release");
    assert_eq!(
        s.lease_users("node-a", now + ms(700), ttl, 100)
            .await
            .expect("free again")
            .len(),
        2
    );
}
