//! A chapter on PBX directories (who has a subscription on a company's PBX): uploaded
//! and fetched lists, the fetch secret sealed and always stored with its address, a
//! failed fetch keeping the list, one node taking a due fetch, and removal.

use jiff::SignedDuration;
use kalsync_directory::{PbxList, PbxSource};
use kalsync_store::CompanyId;
use secrecy::{ExposeSecret as _, SecretString};

use super::{Cast, at};

pub(crate) async fn pbx_directories(c: &Cast<'_>) {
    let s = c.s;
    let now = at("2026-11-23T09:00:00Z");
    let company = c.acme.id;
    assert!(s.pbx_directory(company).await.expect("read").is_none());
    assert!(
        s.set_pbx_directory(CompanyId::new(), Some(&PbxSource::Upload), None, now)
            .await
            .is_err(),
        "an unknown company"
    );

    // Uploaded: no schedule; the list is stored as given.
    s.set_pbx_directory(company, Some(&PbxSource::Upload), None, now)
        .await
        .expect("upload");
    let list = PbxList::from_csv("email,extension\nanna@acme.example,201\nbo@acme.example,202\n")
        .expect("list");
    s.save_pbx_list(company, None, Ok(&list), now)
        .await
        .expect("saved");
    let r = s
        .pbx_directory(company)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(r.list, list);
    assert_eq!(
        (r.updated, r.next_fetch, r.secret.is_none()),
        (Some(now), None, true)
    );
    assert!(s.due_pbx_directories(now).await.expect("due").is_empty());
    assert!(
        s.pbx_directory(c.other.id).await.expect("other").is_none(),
        "another company has none"
    );

    // Fetched: due at once with its secret (sealed); the list stays until a fetch.
    let source: PbxSource = serde_json::from_value(serde_json::json!({
        "kind": "url", "url": "https://pbx.acme.example/subscriptions", "auth": "bearer",
    }))
    .expect("source");
    let token = SecretString::from("pbx-t0ken".to_owned());
    s.set_pbx_directory(company, Some(&source), Some(&token), now)
        .await
        .expect("url");
    let r = s
        .pbx_directory(company)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        r.secret.as_ref().map(|t| t.expose_secret()),
        Some("pbx-t0ken")
    );
    assert_eq!(r.list.len(), 2, "the list stays until a fetch");
    assert_eq!(r.next_fetch, Some(now));
    assert_eq!(
        s.due_pbx_directories(now).await.expect("due"),
        vec![(company, now)]
    );
    let next = now + SignedDuration::from_hours(1);
    assert!(
        s.claim_pbx_directory(company, now, next)
            .await
            .expect("take")
    );
    assert!(
        !s.claim_pbx_directory(company, now, next)
            .await
            .expect("taken"),
        "another node finds it taken"
    );
    assert!(s.due_pbx_directories(now).await.expect("due").is_empty());

    // A failed fetch keeps the list and says why.
    s.save_pbx_list(company, Some(&source), Err("the PBX answered 503"), next)
        .await
        .expect("failed");
    let r = s
        .pbx_directory(company)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(r.list.len(), 2);
    assert_eq!(r.last_error.as_deref(), Some("the PBX answered 503"));
    assert_eq!((r.updated, r.last_try), (Some(now), Some(next)));
    // A good one clears it.
    let one = PbxList::from_csv("email,extension\nanna@acme.example,201\n").expect("one");
    assert!(
        s.save_pbx_list(company, Some(&source), Ok(&one), next)
            .await
            .expect("saved")
    );
    // A fetch for an address no longer stored (changed while it was under way) writes
    // nothing.
    let other: PbxSource = serde_json::from_value(serde_json::json!({
        "kind": "url", "url": "https://old.acme.example/subscriptions", "auth": "bearer",
    }))
    .expect("source");
    assert!(
        !s.save_pbx_list(company, Some(&other), Ok(&list), next)
            .await
            .expect("overtaken")
    );
    let r = s
        .pbx_directory(company)
        .await
        .expect("read")
        .expect("there");
    assert_eq!((r.list.len(), r.last_error), (1, None));

    // Back to an upload: the secret goes with its address.
    s.set_pbx_directory(company, Some(&PbxSource::Upload), None, next)
        .await
        .expect("upload again");
    let r = s
        .pbx_directory(company)
        .await
        .expect("read")
        .expect("there");
    assert!(r.secret.is_none() && r.next_fetch.is_none());

    // Removed, list and all.
    s.set_pbx_directory(company, None, None, next)
        .await
        .expect("removed");
    assert!(s.pbx_directory(company).await.expect("read").is_none());
}
