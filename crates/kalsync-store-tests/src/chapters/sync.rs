//! Chapters on what a sync stores: bookings (subjects only when kept, retention),
//! timelines, a whole read in one write, timelines paged by node, and a corrupted row.

use kalsync_core::{Booking, Timeline, Window, build_timeline};
use kalsync_store::{StoreError, SyncWrite, UserId};

use super::{Cast, at, booking};

/// Bookings: diffs, subjects only when kept, retention. Anna's week, for the chapters
/// after.
pub(crate) async fn bookings(c: &Cast<'_>) -> Vec<Booking> {
    let Cast { f, s, anna, .. } = c;
    let week = vec![
        booking("b1", "2026-11-23 12:00", "2026-11-23 13:00", "LUN: Lunch"),
        booking(
            "b2",
            "2026-11-24 09:00",
            "2026-11-24 10:00",
            "Hemligt kundmöte",
        ),
    ];
    let diff = s
        .replace_bookings(anna.id, &week, false)
        .await
        .expect("replace");
    assert_eq!((diff.added, diff.changed, diff.removed), (2, 0, 0));
    assert!(
        s.replace_bookings(anna.id, &week, false)
            .await
            .expect("again")
            .is_empty()
    );
    assert!(
        s.bookings(anna.id)
            .await
            .expect("bookings")
            .iter()
            .all(|b| b.subject.is_none() && b.location.is_none())
    );
    assert!(
        !f.store.dump_for_tests().await.contains("Hemligt"),
        "no subject is stored when titles are not kept"
    );
    let mut moved = week.clone();
    moved[1] = booking(
        "b2",
        "2026-11-24 10:00",
        "2026-11-24 11:00",
        "Hemligt kundmöte",
    );
    moved.remove(0);
    moved.push(booking("b3", "2026-10-01 09:00", "2026-10-01 10:00", "Old"));
    let diff = s
        .replace_bookings(anna.id, &moved, true)
        .await
        .expect("replace");
    assert_eq!((diff.added, diff.changed, diff.removed), (1, 1, 1));
    assert!(
        s.bookings(anna.id)
            .await
            .expect("bookings")
            .iter()
            .any(|b| b.subject.as_deref() == Some("Hemligt kundmöte"))
    );
    assert_eq!(
        s.delete_bookings_ended_before(at("2026-10-23 00:00"))
            .await
            .expect("retention"),
        1
    );
    assert_eq!(s.bookings(anna.id).await.expect("bookings").len(), 1);
    week
}

/// Timelines: saved, read back, overwritten. Anna's timeline of the week, for the
/// chapters after.
pub(crate) async fn timelines(c: &Cast<'_>, week: &[Booking]) -> Timeline {
    let Cast {
        s,
        settings,
        anna,
        bo,
        ..
    } = c;
    let timeline = build_timeline(
        week,
        settings,
        Window {
            start: at("2026-11-20 00:00"),
            end: at("2026-12-20 00:00"),
        },
    );
    s.save_timeline(anna.id, &timeline, Some(at("2026-11-23 12:00")))
        .await
        .expect("save");
    assert_eq!(
        s.timeline(anna.id).await.expect("load"),
        Some(timeline.clone())
    );
    assert_eq!(s.timeline(bo.id).await.expect("load"), None);
    s.save_timeline(anna.id, &Timeline::default(), None)
        .await
        .expect("overwrite");
    assert_eq!(
        s.timeline(anna.id).await.expect("load"),
        Some(Timeline::default())
    );
    s.save_timeline(anna.id, &timeline, None)
        .await
        .expect("save");
    timeline
}

/// A read is stored at once: bookings, timeline and the sync's outcome — only over the
/// revision it began from: a read overtaken by another's write stores nothing.
pub(crate) async fn a_read_is_stored_at_once(c: &Cast<'_>, week: &[Booking], timeline: &Timeline) {
    let Cast { s, bo, .. } = c;
    let began = s.user(bo.id).await.expect("bo").sync_revision;
    let write = SyncWrite {
        user: bo.id,
        bookings: week,
        keep_subjects: false,
        timeline,
        next_change: Some(at("2026-11-23 12:00")),
        at: at("2026-11-23 09:00"),
        note: Some("1 booking(s) could not be read"),
        revision: began,
    };
    let saved = s.save_sync(write).await.expect("save sync");
    assert_eq!(saved.revision, began + 1);
    assert_eq!(s.user(bo.id).await.expect("bo").sync_revision, began + 1);
    let diff = saved.diff;
    assert_eq!((diff.added, diff.changed, diff.removed), (2, 0, 0));
    assert_eq!(s.bookings(bo.id).await.expect("bookings").len(), 2);
    assert_eq!(
        s.timeline(bo.id).await.expect("timeline"),
        Some(timeline.clone())
    );
    let synced = s.user(bo.id).await.expect("bo");
    assert_eq!(synced.last_sync, Some(at("2026-11-23 09:00")));
    assert_eq!(
        synced.last_error.as_deref(),
        Some("1 booking(s) could not be read")
    );
    // A read that began at the old revision (another node's, which held the user
    // before) is overtaken: it writes nothing, neither bookings nor timeline nor time.
    assert!(matches!(
        s.save_sync(SyncWrite {
            bookings: &[],
            timeline: &Timeline::default(),
            at: at("2026-11-23 09:30"),
            ..write
        })
        .await,
        Err(StoreError::Overtaken { revision }) if revision == began + 1
    ));
    assert_eq!(s.bookings(bo.id).await.expect("bookings").len(), 2);
    assert_eq!(
        s.timeline(bo.id).await.expect("timeline"),
        Some(timeline.clone())
    );
    assert_eq!(
        s.user(bo.id).await.expect("bo").last_sync,
        Some(at("2026-11-23 09:00"))
    );
    assert!(
        s.save_sync(SyncWrite {
            revision: began + 1,
            ..write
        })
        .await
        .expect("again")
        .diff
        .is_empty()
    );
    assert!(matches!(
        s.save_sync(SyncWrite {
            user: UserId(uuid::Uuid::new_v4()),
            ..write
        })
        .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        s.replace_bookings(bo.id, &[], false)
            .await
            .expect("clear")
            .removed
            == 2
    );
}

/// A node reads its users' timelines page by page, in user-id order.
pub(crate) async fn held_timelines(c: &Cast<'_>, timeline: &Timeline) {
    let Cast { s, anna, bo, .. } = c;
    s.save_timeline(bo.id, &Timeline::default(), None)
        .await
        .expect("save");
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = s.held_timelines("node-a", after, 1).await.expect("page");
        assert!(page.len() <= 1);
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        paged.extend(page.into_iter().map(|(u, t)| (u, t.expect("readable"))));
    }
    let mut expected = vec![(anna.id, timeline.clone()), (bo.id, Timeline::default())];
    expected.sort_by_key(|(u, _)| u.to_string());
    assert_eq!(paged, expected);
    assert!(
        s.held_timelines("node-b", None, 10)
            .await
            .expect("none")
            .is_empty()
    );
}

/// A corrupted row is an error for that user only.
pub(crate) async fn a_corrupted_row(c: &Cast<'_>) {
    let Cast { f, s, anna, bo, .. } = c;
    f.store
        .execute_for_tests(&format!(
            "UPDATE timelines SET data = 'not json' WHERE user_id = '{}'",
            anna.id
        ))
        .await
        .expect("corrupt");
    assert!(matches!(
        s.timeline(anna.id).await,
        Err(StoreError::Corrupt { .. })
    ));
    let held = s
        .held_timelines("node-a", None, 10)
        .await
        .expect("the other rows are still read");
    assert_eq!(held.len(), 2);
    for (user, timeline) in held {
        assert_eq!(timeline.is_err(), user == anna.id, "only anna's row is bad");
    }
    assert_eq!(
        s.timeline(bo.id).await.expect("bo unaffected"),
        Some(Timeline::default())
    );
}
