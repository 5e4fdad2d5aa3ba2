//! Chapters on companies, their instances and targets: created, read back with their
//! secrets, listed, and finally removed with everything under them.

use kalsync_core::exchange::{Access, SignIn, Version};
use kalsync_core::{InstanceSettings, Template};
use kalsync_store::{
    Company, GraphCredential, Instance, NewInstance, NewTarget, SourceConfig, Store, StoreError,
    Target, TargetConfig,
};
use secrecy::{ExposeSecret, SecretString};

use super::Cast;

/// Companies: created, listed by name and read back.
pub(crate) async fn companies(s: &dyn Store) -> (Company, Company) {
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
    (acme, other)
}

/// Instances keep their settings and their secret, sealed; one names an existing
/// company. Acme's instance and its settings, for the chapters after.
pub(crate) async fn instances(
    s: &dyn Store,
    acme: &Company,
    other: &Company,
) -> (Instance, InstanceSettings) {
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
    (instance, settings)
}

/// Targets keep their secrets sealed. Acme's webhook, for the chapters after.
pub(crate) async fn targets(c: &Cast<'_>) -> Target {
    let Cast { f, s, acme, .. } = c;
    let hook = s
        .create_target(NewTarget {
            company: acme.id,
            name: "PBX webhook".into(),
            config: TargetConfig::Webhook {
                url: "https://pbx.example/hook".into(),
                signing_secret: SecretString::from("whsec_c2VjcmV0LXNpZ25pbmcta2V5"),
                batch: false,
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
    hook
}

/// Removing an instance, then a company, removes the rest.
pub(crate) async fn removing_the_rest(c: &Cast<'_>, hook: &Target) {
    let Cast {
        s,
        acme,
        instance,
        bo,
        ..
    } = c;
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

/// An instance whose row cannot be read is an error for its company only: the active
/// instances every node syncs are read without it.
pub(crate) async fn an_unreadable_instance(c: &Cast<'_>) {
    let Cast { f, s, acme, .. } = c;
    let broken = s
        .create_instance(NewInstance {
            company: acme.id,
            name: "Old Exchange".into(),
            source: SourceConfig::Ews {
                url: "https://mail.acme.example/EWS/Exchange.asmx".into(),
                username: "ACME\\svc".into(),
                password: "p".to_owned().into(),
                auth: SignIn::Ntlm,
                version: Version::Exchange2010Sp2,
                access: Access::Impersonation,
                options: Default::default(),
            },
            settings: Default::default(),
        })
        .await
        .expect("created");
    f.store
        .execute_for_tests(&format!(
            "UPDATE instances SET source = replace(source, '\"auth\":\"ntlm\"', '\"auth\":\"kerberos\"') WHERE id = '{}'",
            broken.id
        ))
        .await
        .expect("corrupt");
    assert!(matches!(
        s.instance(broken.id).await,
        Err(StoreError::Corrupt { .. })
    ));
    let active = s.active_instances().await.expect("the others are read");
    assert!(!active.is_empty(), "Acme's own instance still syncs");
    assert!(active.iter().all(|i| i.id != broken.id));
    s.delete_instance(broken.id).await.expect("removed");
}
