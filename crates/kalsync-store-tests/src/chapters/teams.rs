//! A chapter on Teams presence: what Kalsync knows of a person in Teams (nothing at
//! first; each writer's part kept without undoing another's; many at once; only for
//! people still there), and a request budget shared by every node (all or none, never
//! past its limit, per window and key).

use jiff::SignedDuration;
use kalsync_store::{TeamsPart, TeamsPerson, UserId};

use super::{Cast, at};

pub(crate) async fn teams(c: &Cast<'_>) {
    let s = c.s;
    let now = at("2026-11-23T12:00:00Z");
    let (anna, bo) = (c.anna.id, c.bo.id);

    let nothing = |user| TeamsPerson {
        user,
        ..TeamsPerson::default()
    };
    assert_eq!(s.teams_person(anna).await.expect("read"), nothing(anna));
    // The target sets a message and a session.
    let set = TeamsPerson {
        object_id: Some("3f2a".into()),
        message: Some("Lunch, åter 13.00".into()),
        message_until: Some(now + SignedDuration::from_hours(1)),
        session: Some("Away/Away".into()),
        session_until: Some(now + SignedDuration::from_mins(60)),
        session_set: Some(now),
        ..nothing(anna)
    };
    s.put_teams_people(std::slice::from_ref(&set), TeamsPart::Message)
        .await
        .expect("kept");
    assert_eq!(s.teams_person(anna).await.expect("read"), set);
    // A PBX call and a poll write their own parts from older snapshots: the message
    // stays; the object id is never forgotten.
    let call = TeamsPerson {
        call_until: Some(now + SignedDuration::from_hours(2)),
        session_set: Some(now + SignedDuration::from_mins(1)),
        ..nothing(anna)
    };
    s.put_teams_people(std::slice::from_ref(&call), TeamsPart::Call)
        .await
        .expect("call");
    let read = TeamsPerson {
        presence: Some("Busy/InACall".into()),
        read_at: Some(now),
        ..nothing(anna)
    };
    s.put_teams_people(std::slice::from_ref(&read), TeamsPart::Presence)
        .await
        .expect("poll");
    let all = TeamsPerson {
        call_until: call.call_until,
        session_set: call.session_set,
        presence: read.presence.clone(),
        read_at: read.read_at,
        ..set.clone()
    };
    assert_eq!(s.teams_person(anna).await.expect("read"), all);
    assert_eq!(
        s.teams_people(c.instance.id).await.expect("people"),
        vec![all.clone()]
    );
    // Many at once, in their order, a default for whom nothing is known.
    assert_eq!(
        s.teams_persons(&[bo, anna]).await.expect("both"),
        vec![nothing(bo), all.clone()]
    );
    // Someone no longer there is passed over; the others are kept.
    let bo_known = TeamsPerson {
        object_id: Some("9c1e".into()),
        ..nothing(bo)
    };
    s.put_teams_people(
        &[nothing(UserId::new()), bo_known.clone()],
        TeamsPart::Message,
    )
    .await
    .expect("kept together");
    assert_eq!(
        s.teams_persons(&[anna, bo]).await.expect("both"),
        vec![all, bo_known]
    );

    // A budget: all or none, never past its limit, per window and key.
    let window = now;
    assert!(
        s.take_budget("tenant-a", window, 6, 10)
            .await
            .expect("take")
    );
    assert!(
        s.take_budget("tenant-a", window, 4, 10)
            .await
            .expect("take")
    );
    assert!(
        !s.take_budget("tenant-a", window, 1, 10)
            .await
            .expect("full")
    );
    assert!(
        s.take_budget("tenant-b", window, 10, 10)
            .await
            .expect("other key")
    );
    assert!(
        !s.take_budget("tenant-c", window, 11, 10)
            .await
            .expect("too many")
    );
    let next = window + SignedDuration::from_secs(1);
    assert!(
        s.take_budget("tenant-a", next, 10, 10)
            .await
            .expect("next window")
    );
}
