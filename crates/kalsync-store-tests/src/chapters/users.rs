//! Chapters on users: unique e-mails per instance, their sync state and its keys, the
//! subscription and push token that name them, and their removal without a trace.

use kalsync_core::{EmailAddress, Extension};
use kalsync_store::{Instance, NewUser, Store, StoreError, SyncState, Target, User, UserId};

use super::{Cast, at};

/// Users: unique e-mail per instance; sync state, its keys and the last sync kept.
/// Anna and Bo, for the chapters after.
pub(crate) async fn users(s: &dyn Store, instance: &Instance) -> (User, User) {
    let new_user = |email: &str| NewUser {
        instance: instance.id,
        email: EmailAddress::parse(email).expect("email"),
        display_name: Some("Anna Berg".into()),
        extension: Some(Extension::parse("1234").expect("ext")),
    };
    let anna = s
        .add_user(new_user("anna@acme.example"))
        .await
        .expect("user");
    let bo = s.add_user(new_user("bo@acme.example")).await.expect("user");
    assert!(matches!(
        s.add_user(new_user("ANNA@acme.example")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.users(instance.id)
            .await
            .expect("users")
            .iter()
            .map(|u| u.email.as_str())
            .collect::<Vec<_>>(),
        ["anna@acme.example", "bo@acme.example"]
    );
    s.set_sync_state(
        anna.id,
        &SyncState(serde_json::json!({"subscription": "sub-1"})),
    )
    .await
    .expect("state");
    s.record_sync(anna.id, at("2026-11-23 08:00"), Some("throttled"))
        .await
        .expect("sync");
    // One key set or removed leaves the others.
    s.set_sync_key(anna.id, "cursor", Some(&serde_json::json!("c-1")))
        .await
        .expect("key");
    s.set_sync_key(anna.id, "watermark", Some(&serde_json::json!({"w": 7})))
        .await
        .expect("key");
    s.set_sync_key(anna.id, "watermark", None)
        .await
        .expect("gone");
    s.set_sync_key(anna.id, "missing", None)
        .await
        .expect("no-op");
    assert!(matches!(
        s.set_sync_key(anna.id, "a'b", None).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.set_sync_key(UserId(uuid::Uuid::nil()), "cursor", None)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // A new user's empty state takes a key too.
    let fresh = s
        .users(anna.instance)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.id != anna.id && u.sync_state == SyncState::default())
        .expect("a user with no state yet");
    s.set_sync_key(fresh.id, "cursor", Some(&serde_json::json!("c-0")))
        .await
        .expect("key");
    assert_eq!(
        s.user(fresh.id).await.expect("user").sync_state.0["cursor"],
        "c-0"
    );
    let a = s.user(anna.id).await.expect("user");
    assert_eq!(a.sync_state.0["subscription"], "sub-1");
    assert_eq!(a.sync_state.0["cursor"], "c-1");
    assert!(
        a.sync_state.0.get("watermark").is_none(),
        "{:?}",
        a.sync_state
    );
    assert_eq!(a.last_error.as_deref(), Some("throttled"));
    assert_eq!(a.last_sync, Some(at("2026-11-23 08:00")));
    (anna, bo)
}

/// Notifications find their user on any node; read requests go to the holder.
pub(crate) async fn notifications(c: &Cast<'_>) {
    let Cast { s, anna, bo, .. } = c;
    s.set_subscription(anna.id, Some("sub-anna"))
        .await
        .expect("subscription");
    assert_eq!(
        s.user_by_subscription("sub-anna")
            .await
            .expect("lookup")
            .map(|u| u.id),
        Some(anna.id)
    );
    assert_eq!(
        s.user_by_subscription("sub-none").await.expect("lookup"),
        None
    );
    // EWS push tokens are a namespace of their own: neither kind names a user as the
    // other.
    s.set_push_token(bo.id, Some("push-bo"))
        .await
        .expect("push token");
    assert_eq!(
        s.user_by_push_token("push-bo")
            .await
            .expect("lookup")
            .map(|u| u.id),
        Some(bo.id)
    );
    assert_eq!(
        s.user_by_push_token("sub-anna").await.expect("lookup"),
        None,
        "a Graph subscription id is no push token"
    );
    assert_eq!(
        s.user_by_subscription("push-bo").await.expect("lookup"),
        None,
        "a push token is no Graph subscription id"
    );
    s.set_push_token(bo.id, None).await.expect("cleared");
    assert_eq!(s.user_by_push_token("push-bo").await.expect("lookup"), None);
    s.request_sync(bo.id).await.expect("request");
    assert!(
        s.claim_sync_requests("node-a")
            .await
            .expect("claim")
            .is_empty(),
        "nobody holds bo yet"
    );
}

/// Removing a user removes everything of it, the e-mail included.
pub(crate) async fn removing_a_user(c: &Cast<'_>, hook: &Target) {
    let Cast { f, s, anna, .. } = c;
    s.remove_user(anna.id).await.expect("remove");
    assert!(matches!(
        s.user(anna.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s.bookings(anna.id).await.expect("bookings").is_empty());
    assert_eq!(
        s.last_delivery(anna.id, hook.id).await.expect("deliveries"),
        None
    );
    assert!(
        !f.store.dump_for_tests().await.contains("anna@acme.example"),
        "no trace of the removed user's address"
    );
    assert!(matches!(
        s.remove_user(anna.id).await,
        Err(StoreError::NotFound(_))
    ));
}
