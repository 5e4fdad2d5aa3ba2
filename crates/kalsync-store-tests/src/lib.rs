//! The conformance suite every store backend passes: one story through the whole
//! [`Store`] trait, plus checks that nothing private is left in the database.

use jiff::{SignedDuration, Timestamp};
use kalsync_core::TenantId;
use kalsync_core::{
    Booking, BookingId, BookingTime, EmailAddress, Extension, InstanceSettings, Template, Timeline,
    Window, build_timeline,
};
use kalsync_store::{
    CompanyId, CompanyTenant, DeliveryState, EntraId, Grant, GraphCredential, NewAccount,
    NewApiToken, NewAuditEntry, NewDelivery, NewInstance, NewTarget, NewUser, Role, SecretBox,
    Session, SourceConfig, Store, StoreError, SyncState, SyncWrite, TargetConfig, UserId,
};
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Connection as _;

/// A store on a fresh database, and how to reopen and remove it.
pub struct Fixture {
    /// The store.
    pub store: SqlStore,
    /// Its URL.
    pub url: DatabaseUrl,
    /// Its key.
    pub secrets: SecretBox,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Database { admin: String, name: String },
}

impl Fixture {
    /// Closes the store and removes its database.
    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin, name } => {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            }
        }
    }

    /// The same database opened again (a restart).
    pub async fn reopen(&self) -> SqlStore {
        SqlStore::connect(&self.url, self.secrets.clone())
            .await
            .expect("reopens")
    }
}

/// A store on a new SQLite file.
pub async fn sqlite() -> Fixture {
    let dir = std::env::temp_dir().join(format!("kalsync-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = DatabaseUrl::new(format!("sqlite:{}", dir.join("kalsync.db").display()));
    let secrets = SecretBox::ephemeral();
    let store = SqlStore::connect(&url, secrets.clone())
        .await
        .expect("sqlite store");
    Fixture {
        store,
        url,
        secrets,
        cleanup: Cleanup::File(dir),
    }
}

/// A store on a new PostgreSQL database, when `KALSYNC_TEST_POSTGRES_URL` is set.
pub async fn postgres() -> Option<Fixture> {
    let admin = std::env::var("KALSYNC_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let name = format!("kalsync_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("KALSYNC_TEST_POSTGRES_URL reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    let url = DatabaseUrl::new(format!("{base}/{name}"));
    let secrets = SecretBox::ephemeral();
    let store = SqlStore::connect(&url, secrets.clone())
        .await
        .expect("postgres store");
    Some(Fixture {
        store,
        url,
        secrets,
        cleanup: Cleanup::Database { admin, name },
    })
}

fn at(s: &str) -> Timestamp {
    kalsync_core::Zone::stockholm()
        .parse_instant(s)
        .expect("time")
}

fn booking(id: &str, from: &str, to: &str, subject: &str) -> Booking {
    let mut b = Booking::new(
        BookingId::parse(id).expect("id"),
        BookingTime::timed(at(from), at(to)).expect("time"),
    );
    b.subject = Some(subject.into());
    b.location = Some("Room Kastanjen".into());
    b
}

/// The story: every part of the trait, as the engine and the API use it.
pub async fn story(f: &Fixture) {
    let s: &dyn Store = &f.store;

    // Companies.
    let acme = s.create_company("Acme AB").await.expect("company");
    let other = s.create_company("Beta AB").await.expect("company");
    assert_eq!(
        s.companies()
            .await
            .expect("list")
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["Acme AB", "Beta AB"]
    );
    assert_eq!(s.company(acme.id).await.expect("get"), acme);

    // Instances keep their settings and their secret, sealed.
    let mut settings = InstanceSettings::with_template(Template::PrefixThenShowas);
    settings.days_ahead = 21;
    let instance = s
        .create_instance(NewInstance {
            company: acme.id,
            name: "Microsoft 365".into(),
            source: SourceConfig::Graph {
                tenant: "contoso.onmicrosoft.com".into(),
                client_id: "app-1".into(),
                credential: GraphCredential::Secret(SecretString::from("very-secret-client-value")),
                graph_url: None,
                login_url: None,
            },
            settings: settings.clone(),
        })
        .await
        .expect("instance");
    let read = s.instance(instance.id).await.expect("instance back");
    assert_eq!(read.settings, settings);
    assert_eq!(read.name, "Microsoft 365");
    let SourceConfig::Graph {
        credential: GraphCredential::Secret(secret),
        ..
    } = &read.source
    else {
        panic!("graph secret")
    };
    assert_eq!(secret.expose_secret(), "very-secret-client-value");
    assert_eq!(s.instances(acme.id).await.expect("list").len(), 1);
    assert!(s.instances(other.id).await.expect("list").is_empty());
    let mut renamed = read.clone();
    renamed.name = "M365".into();
    renamed.active = false;
    s.update_instance(&renamed).await.expect("update");
    assert!(s.active_instances().await.expect("active").is_empty());
    renamed.active = true;
    s.update_instance(&renamed).await.expect("update");
    assert_eq!(s.active_instances().await.expect("active").len(), 1);
    assert!(matches!(
        s.create_instance(NewInstance {
            company: kalsync_store::CompanyId::new(),
            ..NewInstance {
                company: acme.id,
                name: "x".into(),
                source: read.source.clone(),
                settings: settings.clone()
            }
        })
        .await,
        Err(StoreError::NotFound(_))
    ));

    // Users: unique e-mail per instance.
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

    // Bookings: diffs, subjects only when kept, retention.
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

    // Timelines.
    let timeline = build_timeline(
        &week,
        &settings,
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

    // A read is stored at once: bookings, timeline and the sync's outcome.
    let write = SyncWrite {
        user: bo.id,
        bookings: &week,
        keep_subjects: false,
        timeline: &timeline,
        next_change: Some(at("2026-11-23 12:00")),
        at: at("2026-11-23 09:00"),
        note: Some("1 booking(s) could not be read"),
    };
    let diff = s.save_sync(write).await.expect("save sync");
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
    assert!(s.save_sync(write).await.expect("again").is_empty());
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

    // Targets keep their secrets sealed.
    let hook = s
        .create_target(NewTarget {
            company: acme.id,
            name: "PBX webhook".into(),
            config: TargetConfig::Webhook {
                url: "https://pbx.example/hook".into(),
                signing_secret: SecretString::from("whsec_c2VjcmV0LXNpZ25pbmcta2V5"),
            },
        })
        .await
        .expect("target");
    let TargetConfig::Webhook { signing_secret, .. } =
        s.target(hook.id).await.expect("target").config
    else {
        panic!("webhook")
    };
    assert_eq!(
        signing_secret.expose_secret(),
        "whsec_c2VjcmV0LXNpZ25pbmcta2V5"
    );
    let sim = s
        .create_target(NewTarget {
            company: acme.id,
            name: "Simulator".into(),
            config: TargetConfig::Simulator,
        })
        .await
        .expect("target");
    assert_eq!(s.targets(acme.id).await.expect("targets").len(), 2);
    s.set_target_active(sim.id, false).await.expect("off");
    assert!(!s.target(sim.id).await.expect("target").active);
    let dump = f.store.dump_for_tests().await;
    assert!(
        !dump.contains("very-secret-client-value") && !dump.contains("whsec_c2VjcmV0"),
        "secrets are sealed at rest"
    );

    // Notifications find their user on any node; read requests go to the holder.
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

    // Outbox: per user and target sequences, only the latest pending state survives.
    // Deliveries go to the node that holds the user. The story's clock is fixed, never
    // the machine's: a delivery is first due at its `due` time.
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
    let payload = |reason: &str| serde_json::json!({"reason": reason, "user": anna.id.to_string()});
    let first = s
        .enqueue(NewDelivery {
            user: anna.id,
            target: hook.id,
            payload: payload("lunch"),
            due: at("2026-11-23 12:00"),
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

    // Audit.
    s.audit(NewAuditEntry {
        company: Some(acme.id),
        actor: "admin".into(),
        action: "user.added".into(),
        detail: serde_json::json!({"user": anna.id.to_string()}),
    })
    .await
    .expect("audit");
    s.audit(NewAuditEntry {
        company: None,
        actor: "system".into(),
        action: "node.started".into(),
        detail: serde_json::json!({}),
    })
    .await
    .expect("audit");
    assert_eq!(s.audit_log(Some(acme.id), 10).await.expect("log").len(), 1);
    assert_eq!(
        s.audit_log(None, 10).await.expect("log")[0].action,
        "node.started"
    );

    assert!(
        s.due_deliveries("node-b", later, 10)
            .await
            .expect("other node")
            .is_empty()
    );
    s.release_leases("node-a").await.expect("release");

    // Leases: one node holds a user until its lease runs out, by the clock the nodes
    // pass in.
    let ttl = SignedDuration::from_millis(300);
    let ms = SignedDuration::from_millis;
    let held = s.lease_users("node-a", now, ttl, 100).await.expect("lease");
    assert_eq!(held.len(), 2);
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
    assert_eq!(
        s.lease_users("node-b", now + ms(600), ttl, 1)
            .await
            .expect("take over")
            .len(),
        1,
        "an expired lease is taken, at most `limit` a time"
    );
    assert_eq!(
        s.lease_users("node-b", now + ms(600), ttl, 100)
            .await
            .expect("take over")
            .len(),
        2
    );
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

    // A node reads its users' timelines page by page, in user-id order.
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

    // A corrupted row is an error for that user only.
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

    // Removing a user removes everything of it, the e-mail included.
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

    accounts_story(s, acme.id, other.id).await;
    entra_story(s, acme.id, other.id).await;

    // Removing an instance, then a company, removes the rest.
    s.delete_instance(instance.id)
        .await
        .expect("delete instance");
    assert!(matches!(s.user(bo.id).await, Err(StoreError::NotFound(_))));
    s.delete_company(acme.id).await.expect("delete company");
    assert!(matches!(
        s.target(hook.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.companies().await.expect("companies").len(), 1);
    assert!(
        s.accounts(Some(acme.id))
            .await
            .expect("accounts")
            .is_empty(),
        "a removed company's accounts are gone"
    );
}

/// Accounts, sessions and API tokens: unique e-mails, grants kept, sessions ended by a
/// new password or their expiry, tokens found by hash and only within their company.
async fn accounts_story(s: &dyn Store, acme: CompanyId, beta: CompanyId) {
    let operator = s
        .create_account(NewAccount {
            email: " Ops@Operator.example ".into(),
            display_name: Some("Ops".into()),
            grant: Grant::operator(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            entra: None,
        })
        .await
        .expect("operator");
    assert_eq!(operator.email, "ops@operator.example");
    let admin = s
        .create_account(NewAccount {
            email: "it@acme.example".into(),
            display_name: None,
            grant: Grant::company(Role::CompanyAdmin, acme).expect("grant"),
            password_hash: "h1".into(),
            entra: None,
        })
        .await
        .expect("admin");
    assert!(matches!(
        s.create_account(NewAccount {
            email: "IT@acme.example".into(),
            display_name: None,
            grant: Grant::company(Role::Reader, beta).expect("grant"),
            password_hash: "h2".into(),
            entra: None,
        })
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(Grant::company(Role::Operator, acme).is_err());
    assert_eq!(
        s.account_by_email("IT@ACME.example")
            .await
            .expect("by e-mail"),
        Some(admin.clone())
    );
    assert_eq!(s.account(admin.id).await.expect("get"), admin);
    assert_eq!(
        s.accounts(Some(acme)).await.expect("acme"),
        std::slice::from_ref(&admin)
    );
    assert_eq!(
        s.accounts(None).await.expect("operator"),
        std::slice::from_ref(&operator)
    );
    assert!(s.accounts(Some(beta)).await.expect("beta").is_empty());
    let grant = admin.grant;
    assert!(grant.sees(acme) && grant.manages(acme));
    assert!(!grant.sees(beta) && !grant.manages(beta));
    assert!(operator.grant.manages(beta));

    // Sessions: found until they expire; a new password ends them.
    let session = Session {
        id_hash: "s-hash".into(),
        account: admin.id,
        csrf: "csrf".into(),
        expires: at("2026-11-23 10:00"),
    };
    s.create_session(&session).await.expect("session");
    assert_eq!(
        s.session("s-hash", at("2026-11-23 09:00"))
            .await
            .expect("get"),
        Some(session.clone())
    );
    assert_eq!(
        s.session("s-hash", at("2026-11-23 10:00"))
            .await
            .expect("expired"),
        None
    );
    s.set_password(admin.id, "h3").await.expect("password");
    assert_eq!(s.account(admin.id).await.expect("get").password_hash, "h3");
    assert_eq!(
        s.session("s-hash", at("2026-11-23 09:00"))
            .await
            .expect("gone"),
        None
    );
    s.create_session(&Session {
        id_hash: "old".into(),
        ..session.clone()
    })
    .await
    .expect("session");
    assert_eq!(
        s.delete_expired_sessions(at("2026-11-23 11:00"))
            .await
            .expect("expired"),
        1
    );
    s.create_session(&session).await.expect("again");
    s.delete_session("s-hash").await.expect("sign out");
    assert_eq!(
        s.session("s-hash", at("2026-11-23 09:00"))
            .await
            .expect("get"),
        None
    );

    // API tokens: one company's, found by hash until they expire, revoked only by that
    // company.
    let new_token = |grant: Grant, hash: &'static str| NewApiToken {
        grant,
        name: "switchboard",
        token_hash: hash,
        owner: admin.id,
        created: at("2026-11-23 09:00"),
        expires: at("2026-12-23 09:00"),
    };
    let token = s
        .create_api_token(new_token(grant, "t-hash"))
        .await
        .expect("token");
    assert_eq!(token.owner, Some(admin.id));
    assert!(matches!(
        s.create_api_token(new_token(Grant::operator(), "t2")).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.use_api_token("t-hash", at("2026-12-23 09:00"))
            .await
            .expect("use"),
        None,
        "expired"
    );
    let used = s
        .use_api_token("t-hash", at("2026-11-23 09:30"))
        .await
        .expect("use")
        .expect("found");
    assert_eq!(used.grant, grant);
    assert_eq!(used.last_used, Some(at("2026-11-23 09:30")));
    assert_eq!(
        s.use_api_token("nope", at("2026-11-23 09:30"))
            .await
            .expect("use"),
        None
    );
    assert_eq!(s.api_tokens(acme).await.expect("tokens").len(), 1);
    assert!(matches!(
        s.delete_api_token(beta, token.id).await,
        Err(StoreError::NotFound(_))
    ));
    s.delete_api_token(acme, token.id).await.expect("revoke");
    assert!(s.api_tokens(acme).await.expect("tokens").is_empty());

    // Removing an account ends its sessions and revokes its tokens.
    s.create_api_token(new_token(grant, "t3-hash"))
        .await
        .expect("token");
    s.create_session(&session).await.expect("session");
    s.delete_account(admin.id).await.expect("delete");
    assert!(matches!(
        s.account(admin.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.session("s-hash", at("2026-11-23 09:00"))
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        s.use_api_token("t3-hash", at("2026-11-23 09:30"))
            .await
            .expect("use"),
        None,
        "the account's tokens went with it"
    );
    s.create_account(NewAccount {
        email: "it@acme.example".into(),
        display_name: None,
        grant,
        password_hash: "h4".into(),
        entra: None,
    })
    .await
    .expect("the e-mail is free again");
}

/// People signing in with Microsoft: accounts matched by tenant and object id (never by
/// e-mail), one account per person, a tenant owned by one company.
async fn entra_story(s: &dyn Store, acme: CompanyId, beta: CompanyId) {
    let tenant = TenantId::parse("84bd8158-6d4d-4958-8b9f-9d6445542f95").expect("tenant");
    let anna = EntraId {
        tenant: tenant.clone(),
        object: "0b0e3a52-52a4-4a5f-9a4c-8d3c3e9f1a01".into(),
    };
    let admin = Grant::company(Role::CompanyAdmin, acme).expect("grant");
    let made = s
        .create_account(NewAccount {
            email: "anna@contoso.example".into(),
            display_name: Some("Anna Berg".into()),
            grant: admin,
            password_hash: String::new(),
            entra: Some(anna.clone()),
        })
        .await
        .expect("a Microsoft account");
    assert_eq!(made.entra.as_ref(), Some(&anna));
    let found = s
        .account_by_entra(&anna)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(found.id, made.id);
    assert_eq!(found.entra.as_ref(), Some(&anna));
    let stranger = EntraId {
        tenant: tenant.clone(),
        object: "ffffffff-52a4-4a5f-9a4c-8d3c3e9f1a01".into(),
    };
    assert_eq!(s.account_by_entra(&stranger).await.expect("get"), None);

    // One person signs in as one account.
    let local = s
        .create_account(NewAccount {
            email: "local@acme.example".into(),
            display_name: None,
            grant: admin,
            password_hash: "h5".into(),
            entra: None,
        })
        .await
        .expect("local");
    assert!(matches!(
        s.link_entra(local.id, Some(&anna)).await,
        Err(StoreError::Conflict(_))
    ));
    s.link_entra(local.id, Some(&stranger)).await.expect("link");
    assert_eq!(
        s.account_by_entra(&stranger)
            .await
            .expect("get")
            .map(|a| a.id),
        Some(local.id)
    );
    s.link_entra(local.id, None).await.expect("unlink");
    assert_eq!(s.account_by_entra(&stranger).await.expect("get"), None);

    // A changed grant ends the account's sessions.
    s.create_session(&Session {
        id_hash: "anna-session".into(),
        account: made.id,
        csrf: "c".into(),
        expires: at("2026-11-24 09:00"),
    })
    .await
    .expect("session");
    s.set_grant(made.id, admin).await.expect("same grant");
    assert!(
        s.session("anna-session", at("2026-11-23 09:00"))
            .await
            .expect("get")
            .is_some(),
        "an unchanged grant keeps the session"
    );
    // Access taken away where it came from ends the sessions.
    s.revoke_access(made.id).await.expect("revoke");
    assert_eq!(
        s.session("anna-session", at("2026-11-23 09:00"))
            .await
            .expect("get"),
        None
    );
    s.create_session(&Session {
        id_hash: "anna-session".into(),
        account: made.id,
        csrf: "c".into(),
        expires: at("2026-11-24 09:00"),
    })
    .await
    .expect("session");
    let reader = Grant::company(Role::Reader, acme).expect("grant");
    s.set_grant(made.id, reader).await.expect("grant");
    assert_eq!(s.account(made.id).await.expect("get").grant, reader);
    assert_eq!(
        s.session("anna-session", at("2026-11-23 09:00"))
            .await
            .expect("get"),
        None
    );

    // A tenant belongs to one company.
    let claim = CompanyTenant::with_default_roles(tenant.clone(), acme, at("2026-11-23 09:00"));
    assert_eq!(
        s.claim_tenant(&claim).await.expect("claim"),
        (claim.clone(), true)
    );
    assert_eq!(
        s.claim_tenant(&CompanyTenant {
            admins: vec!["other".into()],
            ..claim.clone()
        })
        .await
        .expect("claimed again by its owner"),
        (claim.clone(), false),
        "a second claim by its owner changes nothing"
    );
    assert!(matches!(
        s.claim_tenant(&CompanyTenant::with_default_roles(
            tenant.clone(),
            beta,
            at("2026-11-23 10:00")
        ))
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.company_tenant(&tenant)
            .await
            .expect("get")
            .map(|t| t.company),
        Some(acme)
    );
    let changed = CompanyTenant {
        admins: vec![
            "Kalsync.Admin".into(),
            "5d2b0a1e-1111-4222-8333-944455556666".into(),
        ],
        readers: Vec::new(),
        ..claim.clone()
    };
    s.set_tenant_roles(&changed).await.expect("roles");
    assert_eq!(
        s.company_tenants(acme).await.expect("list"),
        vec![changed.clone()]
    );
    assert!(matches!(
        s.set_tenant_roles(&CompanyTenant {
            company: beta,
            ..changed.clone()
        })
        .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.release_tenant(beta, &tenant).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s.company_tenants(beta).await.expect("list").is_empty());
    s.release_tenant(acme, &tenant).await.expect("release");
    assert_eq!(s.company_tenant(&tenant).await.expect("get"), None);
    s.delete_account(made.id).await.expect("delete");
    s.delete_account(local.id).await.expect("delete");
}

/// What a node wrote is there after a restart, secrets included.
pub async fn survives_a_restart(f: &Fixture) {
    let company = f.store.create_company("Restart AB").await.expect("company");
    let target = f
        .store
        .create_target(NewTarget {
            company: company.id,
            name: "hook".into(),
            config: TargetConfig::Webhook {
                url: "https://x.example".into(),
                signing_secret: SecretString::from("whsec_abc"),
            },
        })
        .await
        .expect("target");
    f.store.close().await;
    let again = f.reopen().await;
    let TargetConfig::Webhook { signing_secret, .. } =
        again.target(target.id).await.expect("target").config
    else {
        panic!("webhook")
    };
    assert_eq!(signing_secret.expose_secret(), "whsec_abc");
    let wrong_key = SqlStore::connect(&f.url, SecretBox::ephemeral())
        .await
        .expect("opens");
    assert!(
        matches!(
            wrong_key.target(target.id).await,
            Err(StoreError::Crypto(_))
        ),
        "another key cannot open the secrets"
    );
    again.close().await;
    wrong_key.close().await;
}
