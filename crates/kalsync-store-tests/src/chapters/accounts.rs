//! The accounts chapter: accounts, sessions and API tokens of the admin UI and the API.

use kalsync_store::{CompanyId, Grant, NewAccount, NewApiToken, Role, Session, Store, StoreError};

use super::at;

/// Accounts, sessions and API tokens: unique e-mails, grants kept, sessions ended by a
/// new password or their expiry, tokens found by hash and only within their company.
pub(crate) async fn accounts_story(s: &dyn Store, acme: CompanyId, beta: CompanyId) {
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
