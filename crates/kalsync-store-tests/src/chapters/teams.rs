//! A chapter on Teams presence: what Kalsync knows of a person in Teams (nothing at
//! first, kept whole, replaced, only for the instance's own people), and a request
//! budget shared by every node (all or none, never past its limit, per window and key).

use jiff::SignedDuration;
use kalsync_store::{TeamsPerson, UserId};

use super::{Cast, at};

pub(crate) async fn teams(c: &Cast<'_>) {
    let s = c.s;
    let now = at("2026-11-23T12:00:00Z");
    let anna = c.anna.id;

    let none = s.teams_person(anna).await.expect("read");
    assert_eq!(
        none,
        TeamsPerson {
            user: anna,
            ..TeamsPerson::default()
        }
    );
    let set = TeamsPerson {
        user: anna,
        object_id: Some("3f2a".into()),
        message: Some("Lunch, åter 13.00".into()),
        message_until: Some(now + SignedDuration::from_hours(1)),
        session: Some("Away/Away".into()),
        session_until: Some(now + SignedDuration::from_mins(60)),
        session_set: Some(now),
        call_until: None,
        presence: Some("Available/Available".into()),
        read_at: Some(now),
    };
    s.put_teams_person(&set).await.expect("kept");
    assert_eq!(s.teams_person(anna).await.expect("read"), set);
    let cleared = TeamsPerson {
        message: None,
        message_until: None,
        session: None,
        session_until: None,
        session_set: None,
        call_until: Some(now + SignedDuration::from_mins(30)),
        ..set.clone()
    };
    s.put_teams_person(&cleared).await.expect("replaced");
    assert_eq!(s.teams_person(anna).await.expect("read"), cleared);
    let people = s.teams_people(c.instance.id).await.expect("people");
    assert_eq!(people, vec![cleared.clone()]);
    // Many at once, in their order, a default for whom nothing is known.
    let bo = c.bo.id;
    let both = s.teams_persons(&[bo, anna]).await.expect("both");
    assert_eq!(
        both,
        vec![
            TeamsPerson {
                user: bo,
                ..TeamsPerson::default()
            },
            cleared.clone()
        ]
    );
    let bo_known = TeamsPerson {
        user: bo,
        object_id: Some("9c1e".into()),
        ..TeamsPerson::default()
    };
    s.put_teams_people(&[bo_known.clone(), cleared.clone()])
        .await
        .expect("kept together");
    assert_eq!(
        s.teams_persons(&[anna, bo]).await.expect("both"),
        vec![cleared, bo_known]
    );
    assert!(
        s.put_teams_person(&TeamsPerson {
            user: UserId::new(),
            ..TeamsPerson::default()
        })
        .await
        .is_err(),
        "nobody's record"
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
