//! The conformance suite every store backend passes: one story through the whole
//! [`Store`] trait, plus checks that nothing private is left in the database.
//!
//! The story is told in chapters (`chapters/`), one area of the trait each, in an order
//! that matters: later chapters use the companies, users, bookings and deliveries earlier
//! ones created.

use kalsync_store::{NewTarget, SecretBox, Store, StoreError, TargetConfig};
use kalsync_store_sql::SqlStore;
use secrecy::{ExposeSecret, SecretString};

mod chapters;
mod fixture;
pub mod release;

use chapters::{
    Cast, accounts, audit, directories, entra, leases, outbox, overrides, pbx, phone, sync, teams,
    tenancy, users,
};
pub use fixture::{Fixture, postgres, sqlite};

/// The story: every part of the trait, as the engine and the API use it.
pub async fn story(f: &Fixture) {
    let s: &dyn Store = &f.store;
    let (acme, other) = tenancy::companies(s).await;
    let (instance, settings) = tenancy::instances(s, &acme, &other).await;
    let (anna, bo) = users::users(s, &instance).await;
    let c = Cast {
        f,
        s,
        acme,
        other,
        instance,
        settings,
        anna,
        bo,
    };
    let week = sync::bookings(&c).await;
    let timeline = sync::timelines(&c, &week).await;
    sync::a_read_is_stored_at_once(&c, &week, &timeline).await;
    directories::directories(&c).await;
    pbx::pbx_directories(&c).await;
    phone::phone(&c).await;
    teams::teams(&c).await;
    let hook = tenancy::targets(&c).await;
    users::notifications(&c).await;
    let (now, later) = outbox::outbox(&c, &hook).await;
    audit::audit(&c).await;
    leases::leases(&c, now, later).await;
    sync::held_timelines(&c, &timeline).await;
    sync::a_corrupted_row(&c).await;
    tenancy::an_unreadable_instance(&c).await;
    // Late: each change asks for its user to be read again.
    overrides::overrides(&c).await;
    users::removing_a_user(&c, &hook).await;
    accounts::accounts_story(s, c.acme.id, c.other.id).await;
    entra::entra_story(s, c.acme.id, c.other.id).await;
    tenancy::removing_the_rest(&c, &hook).await;
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
                batch: false,
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
