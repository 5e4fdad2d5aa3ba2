//! The Microsoft sign-in chapter: accounts linked to Entra ids, grants and access taken
//! away, and the tenants companies claim.

use kalsync_core::TenantId;
use kalsync_store::{
    CompanyId, CompanyTenant, EntraId, Grant, NewAccount, Role, Session, Store, StoreError,
};

use super::at;

/// People signing in with Microsoft: accounts matched by tenant and object id (never by
/// e-mail), one account per person, a tenant owned by one company.
pub(crate) async fn entra_story(s: &dyn Store, acme: CompanyId, beta: CompanyId) {
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
