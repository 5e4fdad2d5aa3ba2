//! A chapter on what lets the phone and the switchboard change a status: the secret a
//! company's PBX signs its events with (sealed, per company, replaced and removed), an
//! event id taken once only (a replay is refused, old ids forgotten), and whether a
//! company's readers may set a status by hand.

use jiff::SignedDuration;
use kalsync_store::CompanyId;
use secrecy::{ExposeSecret as _, SecretString};

use super::{Cast, at};

pub(crate) async fn phone(c: &Cast<'_>) {
    let s = c.s;
    let now = at("2026-11-23T09:00:00Z");
    let company = c.acme.id;

    // Readers may not set a status until the company allows it.
    assert!(
        !s.company(company)
            .await
            .expect("company")
            .readers_set_status
    );
    s.set_readers_set_status(company, true)
        .await
        .expect("allowed");
    assert!(
        s.company(company)
            .await
            .expect("company")
            .readers_set_status
    );
    assert!(
        !s.company(c.other.id)
            .await
            .expect("other")
            .readers_set_status,
        "another company's setting is its own"
    );
    assert!(
        s.companies()
            .await
            .expect("all")
            .iter()
            .any(|k| k.id == company && k.readers_set_status)
    );
    s.set_readers_set_status(company, false)
        .await
        .expect("stopped");
    assert!(
        !s.company(company)
            .await
            .expect("company")
            .readers_set_status
    );
    assert!(
        s.set_readers_set_status(CompanyId::new(), true)
            .await
            .is_err(),
        "an unknown company"
    );

    // The event secret: sealed, per company, replaced and removed.
    assert!(s.pbx_event_secret(company).await.expect("none").is_none());
    let first = SecretString::from("whsec_Zmlyc3Qtc2VjcmV0LWtleS0xMjM0NTY=".to_owned());
    s.set_pbx_event_secret(company, Some(&first), now)
        .await
        .expect("set");
    let (read, made) = s
        .pbx_event_secret(company)
        .await
        .expect("read")
        .expect("there");
    assert_eq!((read.expose_secret(), made), (first.expose_secret(), now));
    assert!(
        s.pbx_event_secret(c.other.id)
            .await
            .expect("other")
            .is_none(),
        "another company has none"
    );
    let later = now + SignedDuration::from_mins(5);
    let second = SecretString::from("whsec_c2Vjb25kLXNlY3JldC1rZXktNjU0MzIx".to_owned());
    s.set_pbx_event_secret(company, Some(&second), later)
        .await
        .expect("replaced");
    let (read, made) = s
        .pbx_event_secret(company)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        (read.expose_secret(), made),
        (second.expose_secret(), later)
    );
    assert!(
        s.set_pbx_event_secret(CompanyId::new(), Some(&first), now)
            .await
            .is_err(),
        "an unknown company"
    );

    // An event is taken once; another company's same id is its own; old ids are
    // forgotten.
    let forget = now - SignedDuration::from_hours(1);
    assert!(
        s.take_pbx_event(company, "evt_1", now, forget)
            .await
            .expect("take")
    );
    assert!(
        !s.take_pbx_event(company, "evt_1", later, forget)
            .await
            .expect("replay"),
        "a replay is refused"
    );
    assert!(
        s.take_pbx_event(c.other.id, "evt_1", now, forget)
            .await
            .expect("other")
    );
    let much_later = now + SignedDuration::from_hours(3);
    assert!(
        s.take_pbx_event(
            company,
            "evt_1",
            much_later,
            much_later - SignedDuration::from_hours(1)
        )
        .await
        .expect("forgotten"),
        "an id older than kept is forgotten"
    );

    // An id given back (its event was refused) is taken again.
    assert!(
        s.take_pbx_event(company, "evt_2", now, forget)
            .await
            .expect("take")
    );
    s.forget_pbx_event(company, "evt_2")
        .await
        .expect("given back");
    assert!(
        s.take_pbx_event(company, "evt_2", now, forget)
            .await
            .expect("again"),
        "a given-back id is taken again"
    );

    s.set_pbx_event_secret(company, None, now)
        .await
        .expect("removed");
    assert!(s.pbx_event_secret(company).await.expect("none").is_none());
}
