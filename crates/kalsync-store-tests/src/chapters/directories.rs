//! A chapter on directories (*Katalog Synk*): an instance's directory is due at once,
//! one node takes a run, what the run did and the state the next read starts from are
//! kept, changed settings keep the state, and a user's directory fields are written.

use jiff::SignedDuration;
use kalsync_core::Extension;
use kalsync_directory::{DirectorySettings, GroupRef};
use kalsync_store::{DirectoryRun, DirectorySecret, InstanceId, StoreError, UserProfile};
use secrecy::{ExposeSecret as _, SecretString};

use super::{Cast, at};

pub(crate) async fn directories(c: &Cast<'_>) {
    let s = c.s;
    let now = at("2026-11-23T09:00:00Z");
    let mut settings = DirectorySettings::entra(vec![GroupRef::parse("sales").expect("group")]);
    assert!(s.directory(c.instance.id).await.expect("read").is_none());
    assert!(matches!(
        s.set_directory(
            InstanceId::new(),
            Some(&settings),
            DirectorySecret::Clear,
            now
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    s.set_directory(c.instance.id, Some(&settings), DirectorySecret::Clear, now)
        .await
        .expect("set");
    let record = s
        .directory(c.instance.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(record.settings, settings);
    assert_eq!(record.state, serde_json::Value::Null);
    assert_eq!(record.next_run, now);
    assert!(record.last.is_none());
    assert!(record.password.is_none());

    // Due at once; one node takes the run, the other finds it taken.
    let due = s.due_directories(now).await.expect("due");
    assert_eq!(due.len(), 1);
    assert!(
        s.due_directories(now - SignedDuration::from_secs(1))
            .await
            .expect("due")
            .is_empty()
    );
    let next = now + SignedDuration::from_mins(15);
    assert!(
        s.claim_directory(c.instance.id, now, next)
            .await
            .expect("claim")
    );
    assert!(
        !s.claim_directory(c.instance.id, now, next)
            .await
            .expect("claim")
    );
    assert!(s.due_directories(now).await.expect("due").is_empty());

    // What the run did, and where the next read starts.
    let run = DirectoryRun {
        at: Some(now),
        applied: true,
        members: 2,
        added: 1,
        problems: vec![kalsync_directory::PersonProblem {
            key: "k-bo".into(),
            who: "Bo".into(),
            problem: kalsync_directory::Problem::NoEmail,
        }],
        problem_count: 1,
        requests: 3,
        full: true,
        ..DirectoryRun::default()
    };
    let state = serde_json::json!({"user_link": "https://graph.example/users/delta?x=1"});
    s.save_directory_run(c.instance.id, &run, Some(&state))
        .await
        .expect("save");
    let failed = DirectoryRun {
        at: Some(next),
        error: Some((
            "group_not_found".into(),
            "group sales does not exist".into(),
        )),
        ..DirectoryRun::default()
    };
    s.save_directory_run(c.instance.id, &failed, None)
        .await
        .expect("save");
    let record = s
        .directory(c.instance.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(record.last, Some(failed), "the last run");
    assert_eq!(record.state, state, "a failed run keeps the state");

    // New settings: due at once, the state kept.
    settings.enabled = true;
    s.set_directory(c.instance.id, Some(&settings), DirectorySecret::Clear, next)
        .await
        .expect("set");
    let record = s
        .directory(c.instance.id)
        .await
        .expect("read")
        .expect("there");
    assert!(record.settings.enabled);
    assert_eq!(record.state, state);
    assert_eq!(record.next_run, next);

    // A user's directory fields.
    let profile = UserProfile {
        display_name: Some("Anna Andersson".into()),
        extension: Some(Extension::parse("201").expect("ext")),
        department: Some("Sälj".into()),
        directory_key: Some("k-anna".into()),
        leaving_since: Some(now),
    };
    s.set_user_profile(c.anna.id, &profile)
        .await
        .expect("profile");
    let anna = s.user(c.anna.id).await.expect("anna");
    assert_eq!(anna.display_name.as_deref(), Some("Anna Andersson"));
    assert_eq!(anna.extension.as_ref().map(Extension::as_str), Some("201"));
    assert_eq!(anna.department.as_deref(), Some("Sälj"));
    assert_eq!(anna.directory_key.as_deref(), Some("k-anna"));
    assert_eq!(anna.leaving_since, Some(now));
    // Back as she was, for the chapters after.
    s.set_user_profile(
        c.anna.id,
        &UserProfile {
            display_name: c.anna.display_name.clone(),
            extension: c.anna.extension.clone(),
            department: None,
            directory_key: None,
            leaving_since: None,
        },
    )
    .await
    .expect("profile");
    assert_eq!(s.user(c.anna.id).await.expect("anna").directory_key, None);

    // An LDAP directory's password: sealed, kept while other settings change, replaced,
    // cleared; never in the due list.
    let ldap: DirectorySettings = serde_json::from_value(serde_json::json!({
        "kind": "ldap",
        "ldap": {"url": "ldaps://dc1.acme.test", "base": "DC=acme,DC=test", "bind_dn": "kalsync@acme.test"},
        "groups": ["CN=Sales,DC=acme,DC=test"],
    }))
    .expect("ldap settings");
    let first = SecretString::from("first-p4ss".to_owned());
    s.set_directory(
        c.instance.id,
        Some(&ldap),
        DirectorySecret::Set(&first),
        now,
    )
    .await
    .expect("ldap");
    let password = |r: Option<kalsync_store::DirectoryRecord>| {
        r.and_then(|r| r.password)
            .map(|p| p.expose_secret().to_owned())
    };
    assert_eq!(
        password(s.directory(c.instance.id).await.expect("read")).as_deref(),
        Some("first-p4ss")
    );
    let due = s
        .due_directories(now + SignedDuration::from_hours(1))
        .await
        .expect("due");
    assert!(
        due.iter().all(|d| d.password.is_none()),
        "not in the due list"
    );
    s.set_directory(
        c.instance.id,
        Some(&ldap),
        DirectorySecret::Keep(&ldap),
        now,
    )
    .await
    .expect("kept");
    assert_eq!(
        password(s.directory(c.instance.id).await.expect("read")).as_deref(),
        Some("first-p4ss")
    );
    let second = SecretString::from("second-p4ss".to_owned());
    s.set_directory(
        c.instance.id,
        Some(&ldap),
        DirectorySecret::Set(&second),
        now,
    )
    .await
    .expect("replaced");
    assert_eq!(
        password(s.directory(c.instance.id).await.expect("read")).as_deref(),
        Some("second-p4ss")
    );
    s.set_directory(c.instance.id, Some(&settings), DirectorySecret::Clear, now)
        .await
        .expect("cleared");
    assert_eq!(
        password(s.directory(c.instance.id).await.expect("read")),
        None
    );

    // Removed.
    s.set_directory(c.instance.id, None, DirectorySecret::Clear, now)
        .await
        .expect("remove");
    assert!(s.directory(c.instance.id).await.expect("read").is_none());
    assert!(s.due_directories(next).await.expect("due").is_empty());
}
