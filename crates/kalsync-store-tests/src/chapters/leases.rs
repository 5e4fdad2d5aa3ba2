//! The leases chapter: one node holds a user until its lease runs out, by the clock the
//! nodes pass in; a lease that ran out, or that a restarted node finds, asks for a read.

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
    let mut rows: Vec<_> = s
        .held_users("node-a")
        .await
        .expect("held users")
        .into_iter()
        .map(|u| u.id)
        .collect();
    rows.sort();
    let mut ids = held.clone();
    ids.sort();
    assert_eq!(rows, ids, "the users a node holds, read with their records");
    assert!(
        s.held_users("node-b").await.expect("none").is_empty(),
        "another node's users are not this node's"
    );
    // Earlier chapters' requests are node-a's now.
    s.claim_sync_requests("node-a").await.expect("claim");
    let claimed = |node: &'static str| async move {
        let mut users = s.claim_sync_requests(node).await.expect("claim");
        users.sort();
        users
    };
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
    assert!(
        claimed("node-a").await.is_empty(),
        "renewals ask for nothing"
    );
    let first = s
        .lease_users("node-b", now + ms(600), ttl, 1)
        .await
        .expect("take over");
    assert_eq!(
        first.len(),
        1,
        "an expired lease is taken, at most `limit` a time"
    );
    // node-a never released them: what it was told and had not read is lost with it,
    // so the node that takes a user reads it.
    assert_eq!(
        claimed("node-b").await,
        first,
        "a user taken from an expired lease is read"
    );
    let all = s
        .lease_users("node-b", now + ms(600), ttl, 100)
        .await
        .expect("take over");
    assert_eq!(all.len(), 2);
    let second: Vec<_> = all.iter().filter(|u| !first.contains(u)).copied().collect();
    assert_eq!(claimed("node-b").await, second);
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
    assert!(
        claimed("node-a").await.is_empty(),
        "a released lease asks for nothing: its node handed its reads over"
    );

    // node-a starts again under its name and finds its leases: it stopped without
    // releasing them, so it gives them up and asks for its users to be read.
    assert_eq!(
        s.recover_leases("node-a", now + ms(750))
            .await
            .expect("recover"),
        2
    );
    assert_eq!(
        s.recover_leases("node-a", now + ms(750))
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        s.lease_users("node-a", now + ms(800), ttl, 100)
            .await
            .expect("taken again")
            .len(),
        2
    );
    assert_eq!(
        claimed("node-a").await.len(),
        2,
        "every user it held is read"
    );

    // The census: the nodes seen within the lease time and the users they share.
    let census = s
        .lease_census("node-a", now + ms(800), ttl)
        .await
        .expect("census");
    assert_eq!((census.nodes, census.next_expiry), (1, None), "alone");
    let users = census.users;
    assert!(users >= 2, "every user of every company counts: {users}");
    let b = s
        .lease_census("node-b", now + ms(850), ttl)
        .await
        .expect("census");
    assert_eq!(b.nodes, 2);
    assert_eq!(
        b.next_expiry,
        Some(now + ms(800) + ttl),
        "node-a's leases run out a lease time after it was last seen"
    );
    assert_eq!(b.share(usize::MAX), users.div_ceil(2));
    assert_eq!(b.share(1), 1, "never more than a node may hold");
    let late = s
        .lease_census("node-b", now + ms(1150), ttl)
        .await
        .expect("census");
    assert_eq!(
        late.nodes, 1,
        "a node not seen within the lease time is not counted"
    );

    // A node lets its own users go, never another's.
    let mut held = s
        .lease_users("node-a", now + ms(1200), ttl, 0)
        .await
        .expect("renew");
    held.sort();
    assert_eq!(held.len(), 2);
    s.release_users("node-b", &held)
        .await
        .expect("not its users");
    assert_eq!(
        s.lease_users("node-a", now + ms(1250), ttl, 0)
            .await
            .expect("renew")
            .len(),
        2,
        "another node's release changes nothing"
    );
    s.release_users("node-a", &held[..1])
        .await
        .expect("release one");
    assert_eq!(
        s.lease_users("node-a", now + ms(1300), ttl, 0)
            .await
            .expect("renew"),
        held[1..].to_vec(),
        "a limit of 0 renews and takes nothing"
    );
    assert_eq!(
        s.lease_users("node-b", now + ms(1300), ttl, 100)
            .await
            .expect("taken"),
        held[..1].to_vec(),
        "a released user is free at once"
    );
    assert!(
        claimed("node-b").await.is_empty(),
        "a user let go asks for no read"
    );
    s.release_leases("node-b").await.expect("release");
    let after = s
        .lease_census("node-a", now + ms(1350), ttl)
        .await
        .expect("census");
    assert_eq!(
        (after.nodes, after.next_expiry),
        (1, None),
        "a node that stopped cleanly leaves the census at once"
    );
    let mut all = s
        .lease_users("node-a", now + ms(1400), ttl, 100)
        .await
        .expect("taken again");
    assert_eq!(all.len(), 2);

    // Reads asked for many users at once (one gone is passed over) reach the holder.
    let gone = kalsync_store::UserId::new();
    s.request_syncs(&[all[0], gone, all[1]])
        .await
        .expect("requests");
    all.sort();
    assert_eq!(claimed("node-a").await, all);
    assert!(claimed("node-a").await.is_empty(), "each request once");

    // node-a stops without a word; node-b and node-c take its users over at the same
    // moment, one each: neither renewal fails, and each reads the user it took.
    let run_out = now + ms(1800);
    let (b, c) = tokio::join!(
        s.lease_users("node-b", run_out, ttl, 1),
        s.lease_users("node-c", run_out, ttl, 1),
    );
    let (b, c) = (b.expect("node-b takes over"), c.expect("node-c takes over"));
    assert_eq!((b.len(), c.len()), (1, 1), "each its part: {b:?} {c:?}");
    assert_ne!(b, c);
    assert_eq!(claimed("node-b").await, b, "the user node-b took is read");
    assert_eq!(claimed("node-c").await, c, "the user node-c took is read");
    s.release_leases("node-b").await.expect("release");
    s.release_leases("node-c").await.expect("release");
    assert_eq!(
        s.lease_users("node-a", run_out + ms(50), ttl, 100)
            .await
            .expect("taken again")
            .len(),
        2
    );
}
