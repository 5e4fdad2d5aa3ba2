//! A chapter on overrides (absences from other sources than bookings): one per user and
//! source, replaced and cleared, ended ones left out, gone with their user.

use jiff::SignedDuration;
use kalsync_core::{Mode, Override, ReasonCode, Source};
use kalsync_store::{StoreError, UserId};

use super::{Cast, at};

pub(crate) async fn overrides(c: &Cast<'_>) {
    let s = c.s;
    let now = at("2026-11-23T09:00:00Z");
    let anna = c.anna.id;
    assert!(s.overrides(anna, now).await.expect("none").is_empty());
    let sick = Override {
        source: Source::Manual,
        id: String::new(),
        start: now,
        end: None,
        status: Some((ReasonCode::parse("sick").expect("code"), Mode::Divert)),
    };
    assert!(matches!(
        s.set_override(
            UserId::new(),
            Source::Manual,
            Some(&sick),
            "reception@acme.example"
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    s.set_override(anna, Source::Manual, Some(&sick), "reception@acme.example")
        .await
        .expect("set");
    let back = Override {
        source: Source::Phone,
        id: String::new(),
        start: now,
        end: Some(now + SignedDuration::from_mins(30)),
        status: None,
    };
    s.set_override(anna, Source::Phone, Some(&back), "pbx")
        .await
        .expect("phone");
    let got = s.overrides(anna, now).await.expect("read");
    assert_eq!(got.len(), 2);
    let manual = got
        .iter()
        .find(|o| o.source == Source::Manual)
        .expect("manual");
    assert_eq!((manual.end, &manual.status), (None, &sick.status));
    assert_eq!(manual.id, "reception@acme.example", "who set it");
    let phone = got
        .iter()
        .find(|o| o.source == Source::Phone)
        .expect("phone");
    assert_eq!((phone.end, phone.status.is_none()), (back.end, true));
    // Ended ones are left out.
    let later = now + SignedDuration::from_hours(1);
    assert_eq!(s.overrides(anna, later).await.expect("read").len(), 1);
    // Replaced, then cleared.
    let lunch = Override {
        status: Some((ReasonCode::parse("lunch").expect("code"), Mode::Info)),
        end: Some(later),
        ..sick.clone()
    };
    s.set_override(anna, Source::Manual, Some(&lunch), "it@acme.example")
        .await
        .expect("replaced");
    let got = s.overrides(anna, now).await.expect("read");
    assert_eq!(got.len(), 2);
    assert!(got.iter().any(|o| o.status == lunch.status));
    s.set_override(anna, Source::Manual, None, "it@acme.example")
        .await
        .expect("cleared");
    s.set_override(anna, Source::Phone, None, "pbx")
        .await
        .expect("cleared");
    assert!(s.overrides(anna, now).await.expect("read").is_empty());
    // Bo's stays Bo's, and another user's are not Anna's.
    s.set_override(c.bo.id, Source::Manual, Some(&sick), "it@acme.example")
        .await
        .expect("bo");
    assert!(s.overrides(anna, now).await.expect("read").is_empty());
    s.set_override(c.bo.id, Source::Manual, None, "it@acme.example")
        .await
        .expect("cleared");
}
