//! The outbox chapter: per user and target sequences, deliveries due for the node that
//! holds the user, retries, dead letters.

use jiff::{SignedDuration, Timestamp};
use kalsync_store::{DeliveryState, NewDelivery, StoreError, Target};

use super::{Cast, at};

/// Outbox: per user and target sequences, only the latest pending state survives.
/// Deliveries go to the node that holds the user. The story's clock is fixed, never
/// the machine's: a delivery is first due at its `due` time. Node-a holds both users
/// afterwards; the clock (`now`, an hour `later`), for the chapters after.
pub(crate) async fn outbox(c: &Cast<'_>, hook: &Target) -> (Timestamp, Timestamp) {
    let Cast {
        s,
        acme,
        other,
        anna,
        bo,
        ..
    } = c;
    let now = at("2026-11-23 13:30");
    assert_eq!(
        s.lease_users("node-a", now, SignedDuration::from_secs(60), 100)
            .await
            .expect("lease")
            .len(),
        2
    );
    assert_eq!(
        s.claim_sync_requests("node-a").await.expect("claim"),
        [bo.id]
    );
    assert!(
        s.claim_sync_requests("node-a")
            .await
            .expect("claimed once")
            .is_empty()
    );
    // An instance's rules changed: each of its users is read again, once.
    s.request_instance_sync(c.instance.id)
        .await
        .expect("instance request");
    let mut claimed = s.claim_sync_requests("node-a").await.expect("claim");
    claimed.sort();
    let mut both = vec![anna.id, bo.id];
    both.sort();
    assert_eq!(claimed, both);
    assert!(
        s.claim_sync_requests("node-a")
            .await
            .expect("claimed once")
            .is_empty()
    );
    let payload = |reason: &str| serde_json::json!({"reason": reason, "user": anna.id.to_string()});
    let first = s
        .enqueue(NewDelivery {
            user: anna.id,
            target: hook.id,
            payload: payload("lunch"),
            due: at("2026-11-23 12:00"),
            ahead: false,
        })
        .await
        .expect("enqueue");
    assert_eq!(first.sequence, 1);
    let second = s
        .enqueue(NewDelivery {
            user: anna.id,
            target: hook.id,
            payload: payload("meeting"),
            due: at("2026-11-23 13:00"),
            ahead: false,
        })
        .await
        .expect("enqueue");
    assert_eq!(second.sequence, 2);
    assert_eq!(
        s.delivery(first.id).await.expect("first").state,
        DeliveryState::Superseded
    );
    let for_bo = s
        .enqueue(NewDelivery {
            user: bo.id,
            target: hook.id,
            payload: payload("busy"),
            due: at("2026-11-23 13:00"),
            ahead: false,
        })
        .await
        .expect("enqueue");
    assert_eq!(for_bo.sequence, 1, "sequences are per user");
    assert_eq!(s.outbox_depth().await.expect("depth"), 2);
    assert!(
        s.due_deliveries("node-a", at("2026-11-23 12:59"), 10)
            .await
            .expect("due")
            .is_empty(),
        "a delivery is not due before its time"
    );
    let later = now + SignedDuration::from_hours(1);
    let due = s.due_deliveries("node-a", later, 10).await.expect("due");
    // Both became due at 13:00: the order between them is not part of the contract.
    let mut ids = due.iter().map(|d| d.id.to_string()).collect::<Vec<_>>();
    ids.sort();
    let mut expected = vec![second.id.to_string(), for_bo.id.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        s.due_deliveries("node-a", later, 1)
            .await
            .expect("due")
            .len(),
        1
    );
    s.mark_retry(second.id, later, "503 from the PBX")
        .await
        .expect("retry");
    let due_now = s.due_deliveries("node-a", now, 10).await.expect("due");
    assert_eq!(
        due_now.iter().map(|d| d.id).collect::<Vec<_>>(),
        [for_bo.id],
        "a retried delivery waits"
    );
    assert_eq!(
        s.next_due().await.expect("next").map(|t| t <= now),
        Some(true)
    );
    s.mark_delivered(for_bo.id, now).await.expect("delivered");
    let retried = s.delivery(second.id).await.expect("retried");
    assert_eq!(
        (retried.attempts, retried.last_error.as_deref()),
        (1, Some("503 from the PBX"))
    );
    s.mark_dead(second.id, "retry budget spent")
        .await
        .expect("dead");
    let dead = s
        .deliveries(acme.id, DeliveryState::Dead, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload["reason"], "meeting");
    assert!(
        s.deliveries(other.id, DeliveryState::Dead, 10)
            .await
            .expect("other")
            .is_empty()
    );
    assert_eq!(
        s.last_delivery(anna.id, hook.id)
            .await
            .expect("last")
            .map(|d| d.sequence),
        Some(2)
    );
    assert_eq!(s.outbox_depth().await.expect("depth"), 0);
    assert!(
        matches!(
            s.mark_retry(second.id, later, "x").await,
            Err(StoreError::NotFound(_))
        ),
        "only pending deliveries are retried"
    );
    // A status for one target supersedes what is pending for that target only: another
    // target's pending status for the same user still goes out.
    let second_target = s
        .create_target(kalsync_store::NewTarget {
            company: acme.id,
            name: "second".into(),
            config: kalsync_store::TargetConfig::Simulator,
        })
        .await
        .expect("second target");
    let to_hook = s
        .enqueue(NewDelivery {
            user: anna.id,
            target: hook.id,
            payload: payload("lunch"),
            due: now,
            ahead: false,
        })
        .await
        .expect("to the hook");
    s.enqueue_many(vec![NewDelivery {
        user: anna.id,
        target: second_target.id,
        payload: payload("lunch"),
        due: now,
        ahead: false,
    }])
    .await
    .expect("to the second target");
    assert_eq!(
        s.delivery(to_hook.id).await.expect("hook's").state,
        DeliveryState::Pending,
        "the hook's pending status is not the second target's to supersede"
    );
    let due = s.due_deliveries("node-a", now, 10).await.expect("due");
    assert_eq!(due.len(), 2);
    for d in due {
        s.mark_delivered(d.id, now).await.expect("delivered");
    }
    s.delete_target(second_target.id).await.expect("removed");
    written_ahead(c, hook).await;
    (now, later)
}

/// A status written ahead of its time (the engine writes coming transitions early)
/// replaces only what is pending at or after its time: the status in force until then
/// still goes out. One written at its time replaces everything pending.
async fn written_ahead(c: &Cast<'_>, hook: &Target) {
    let Cast { s, anna, .. } = c;
    let write = |due: &str, reason: &str, ahead: bool| NewDelivery {
        user: anna.id,
        target: hook.id,
        payload: serde_json::json!({ "reason": reason }),
        due: at(due),
        ahead,
    };
    let state = |id| async move { s.delivery(id).await.expect("delivery").state };
    let now = s
        .enqueue(write("2026-11-23 14:00", "meeting", false))
        .await
        .expect("now");
    let at_three = s
        .enqueue(write("2026-11-23 15:00", "lunch", true))
        .await
        .expect("ahead");
    assert_eq!(
        state(now.id).await,
        DeliveryState::Pending,
        "the status in force still goes out"
    );
    // The plan changed: the transition at three written again (with the other path).
    let again = s
        .enqueue_many(vec![write("2026-11-23 15:00", "busy", true)])
        .await
        .expect("again")
        .remove(0);
    assert_eq!(state(at_three.id).await, DeliveryState::Superseded);
    assert_eq!(state(now.id).await, DeliveryState::Pending);
    // An earlier transition written ahead replaces the later one, not the one in force.
    let half_past = s
        .enqueue(write("2026-11-23 14:30", "meeting", true))
        .await
        .expect("half past");
    assert_eq!(state(again.id).await, DeliveryState::Superseded);
    assert_eq!(state(now.id).await, DeliveryState::Pending);
    assert!(
        s.due_deliveries("node-a", at("2026-11-23 14:29"), 10)
            .await
            .expect("due")
            .iter()
            .all(|d| d.id != half_past.id),
        "not sent before its time"
    );
    // A status written ahead that no longer holds is withdrawn; the one in force stays.
    let withdrawn = s
        .enqueue(write("2026-11-23 14:45", "lunch", true))
        .await
        .expect("ahead");
    assert_eq!(state(half_past.id).await, DeliveryState::Pending);
    assert_eq!(
        s.withdraw_ahead(anna.id, hook.id, at("2026-11-23 14:45"))
            .await
            .expect("withdrawn"),
        1
    );
    assert_eq!(state(withdrawn.id).await, DeliveryState::Superseded);
    assert_eq!(state(half_past.id).await, DeliveryState::Pending);
    // A change written at its time replaces everything pending.
    let changed = s
        .enqueue_many(vec![write("2026-11-23 14:10", "sick", false)])
        .await
        .expect("changed")
        .remove(0);
    assert_eq!(state(now.id).await, DeliveryState::Superseded);
    assert_eq!(state(half_past.id).await, DeliveryState::Superseded);
    let due = s
        .due_deliveries("node-a", at("2026-11-23 16:00"), 10)
        .await
        .expect("due");
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), [changed.id]);
    s.mark_delivered(changed.id, at("2026-11-23 14:10"))
        .await
        .expect("delivered");
}
