//! Companies, targets, instances and users declared in the settings file, applied at
//! start: what is missing is created; instances get the declared source and settings.
//! Several nodes may apply the same file at once: names are unique in the store, and a
//! node whose create loses the race takes the row the winner made.

use kalsync_core::{EmailAddress, Extension, InstanceSettings};
use kalsync_store::{
    GraphCredential, NewInstance, NewTarget, NewUser, SourceConfig, Store, StoreError, TargetConfig,
};

use crate::ServerError;
use crate::settings::{CompanyDecl, SourceDecl, TargetDecl, UserDecl};

fn source(decl: &SourceDecl) -> Result<SourceConfig, ServerError> {
    Ok(match decl {
        SourceDecl::Graph {
            tenant,
            client_id,
            client_secret,
            graph_url,
            login_url,
        } => SourceConfig::Graph {
            tenant: tenant.clone(),
            client_id: client_id.clone(),
            credential: GraphCredential::Secret(client_secret.clone()),
            graph_url: graph_url.clone(),
            login_url: login_url.clone(),
        },
        SourceDecl::Ews {
            url,
            username,
            password,
            auth,
            version,
            access,
            options,
            ca_file,
        } => {
            let mut options = options.clone();
            if let Some(path) = ca_file {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| ServerError::Config(format!("ca_file {}: {e}", path.display())))?;
                options.ca_pem = Some(pem);
            }
            SourceConfig::Ews {
                url: url.clone(),
                username: username.clone(),
                password: password.clone(),
                auth: *auth,
                version: *version,
                access: *access,
                options,
            }
        }
    })
}

/// Records, for every instance of the operator's app (`operator_app`), its tenant as
/// its company's — instances connected before tenants were recorded — so that the
/// tenant is no other company's and its people can sign in with Microsoft.
pub(crate) async fn tenants_of_operator_app(
    store: &dyn Store,
    operator_app: &crate::settings::Microsoft365Settings,
) -> Result<(), ServerError> {
    use secrecy::ExposeSecret as _;
    for company in store.companies().await? {
        for instance in store.instances(company.id).await? {
            let SourceConfig::Graph {
                tenant,
                client_id,
                credential,
                ..
            } = &instance.source
            else {
                continue;
            };
            // Only instances that really sign in with the operator's app (its secret).
            let operators = client_id == operator_app.client_id.trim()
                && matches!(credential, kalsync_store::GraphCredential::Secret(s)
                    if s.expose_secret() == operator_app.client_secret.expose_secret());
            if !operators {
                continue;
            }
            let Ok(tenant) = kalsync_core::TenantId::parse(tenant) else {
                tracing::warn!(
                    instance = %instance.id,
                    %tenant,
                    "an instance of the operator's app names its tenant by a domain: it is not recorded as its company's; connect it again"
                );
                continue;
            };
            {
                let claim = kalsync_store::CompanyTenant::with_default_roles(
                    tenant.clone(),
                    company.id,
                    jiff::Timestamp::now(),
                );
                match store.claim_tenant(&claim).await {
                    Ok(_) => {}
                    Err(kalsync_store::StoreError::Conflict(_)) => tracing::warn!(
                        %tenant,
                        company = %company.name,
                        "an instance of the operator's app reads a tenant another company holds"
                    ),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

/// Creates the declared accounts that do not exist yet.
pub(crate) async fn accounts(
    store: &dyn Store,
    accounts: &[crate::settings::AccountDecl],
) -> Result<(), ServerError> {
    use kalsync_store::{Grant, NewAccount, Role};
    let bad = |email: &str, why: String| ServerError::Config(format!("accounts ({email}): {why}"));
    for decl in accounts {
        if let Some(existing) = store.account_by_email(&decl.email).await? {
            if existing.password_hash.is_empty() {
                // Made by someone signing in with Microsoft under that name: the
                // declaration does not become theirs, and the operator should know.
                tracing::warn!(
                    email = %decl.email,
                    "a declared account's e-mail is taken by an account that signs in with Microsoft; the declaration is not applied"
                );
            }
            continue;
        }
        let role = Role::parse(&decl.role).map_err(|e| bad(&decl.email, e))?;
        let grant = match (role, &decl.company) {
            (Role::Operator, None) => Grant::operator(),
            (Role::Operator, Some(_)) => {
                return Err(bad(&decl.email, "an operator belongs to no company".into()));
            }
            (role, Some(name)) => {
                let company = store
                    .companies()
                    .await?
                    .into_iter()
                    .find(|c| &c.name == name)
                    .ok_or_else(|| bad(&decl.email, format!("no company named {name}")))?;
                Grant::company(role, company.id).map_err(|e| bad(&decl.email, e))?
            }
            (_, None) => return Err(bad(&decl.email, "company is required for this role".into())),
        };
        let password = secrecy::ExposeSecret::expose_secret(&decl.password).to_owned();
        kalsync_web::auth::check_password(&password)
            .map_err(|e| bad(&decl.email, e.to_string()))?;
        let password_hash = kalsync_web::auth::hash_password(password)
            .await
            .map_err(|e| bad(&decl.email, e.to_string()))?;
        let made = store
            .create_account(NewAccount {
                email: decl.email.clone(),
                display_name: None,
                grant,
                password_hash,
                entra: None,
            })
            .await;
        match made {
            Ok(_) => tracing::info!(email = %decl.email, role = role.as_str(), "account created"),
            // Another node starting at the same time made it.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Applies the declarations.
pub(crate) async fn apply(store: &dyn Store, companies: &[CompanyDecl]) -> Result<(), ServerError> {
    for decl in companies {
        let named = async || -> Result<Option<kalsync_store::Company>, ServerError> {
            Ok(store
                .companies()
                .await?
                .into_iter()
                .find(|c| c.name == decl.name))
        };
        let company = match named().await? {
            Some(c) => c,
            None => match store.create_company(&decl.name).await {
                Ok(c) => c,
                Err(StoreError::Conflict(_)) => named().await?.ok_or_else(|| {
                    ServerError::Config(format!("company {} vanished as it was made", decl.name))
                })?,
                Err(e) => return Err(e.into()),
            },
        };
        let targets = store.targets(company.id).await?;
        for t in &decl.targets {
            let (name, config) = match t {
                TargetDecl::Webhook {
                    name,
                    url,
                    signing_secret,
                    batch,
                } => (
                    name,
                    TargetConfig::Webhook {
                        url: url.clone(),
                        signing_secret: signing_secret.clone(),
                        batch: *batch,
                    },
                ),
                TargetDecl::Simulator { name } => (name, TargetConfig::Simulator),
                TargetDecl::Teams {
                    name,
                    presence,
                    language,
                } => (
                    name,
                    TargetConfig::Teams {
                        presence: *presence,
                        language: (*language).into(),
                    },
                ),
                TargetDecl::Ami {
                    name,
                    host,
                    port,
                    username,
                    secret,
                    announcement,
                } => (
                    name,
                    TargetConfig::Ami {
                        host: host.clone(),
                        port: *port,
                        username: username.clone(),
                        secret: secret.clone(),
                        announcement: announcement.clone(),
                    },
                ),
                TargetDecl::Sip {
                    name,
                    proxy,
                    domain,
                    username,
                    password,
                    ca_file,
                } => (
                    name,
                    TargetConfig::Sip {
                        proxy: proxy.clone(),
                        domain: domain.clone(),
                        username: username.clone(),
                        password: password.clone(),
                        ca: match ca_file {
                            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                                ServerError::Config(format!("ca_file {}: {e}", path.display()))
                            })?),
                            None => None,
                        },
                    },
                ),
            };
            if !targets.iter().any(|x| &x.name == name) {
                let made = store
                    .create_target(NewTarget {
                        company: company.id,
                        name: name.clone(),
                        config,
                    })
                    .await;
                match made {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let instances = store.instances(company.id).await?;
        for i in &decl.instances {
            let settings = match &i.settings {
                Some(table) => {
                    let text =
                        toml::to_string(table).map_err(|e| ServerError::Config(e.to_string()))?;
                    InstanceSettings::from_toml(&text).map_err(|e| {
                        ServerError::Config(format!(
                            "companies[{}].instances[{}].settings: {e}",
                            decl.name, i.name
                        ))
                    })?
                }
                None => InstanceSettings::default(),
            };
            let instance = match instances.iter().find(|x| x.name == i.name) {
                Some(existing) => {
                    let mut updated = existing.clone();
                    updated.source = source(&i.source)?;
                    updated.settings = settings;
                    store.update_instance(&updated).await?;
                    // Rules changed in the file: the stored timelines follow the old
                    // ones, so every user is read again, not at its next poll.
                    if updated.settings != existing.settings {
                        store.request_instance_sync(updated.id).await?;
                    }
                    updated
                }
                None => {
                    let made = store
                        .create_instance(NewInstance {
                            company: company.id,
                            name: i.name.clone(),
                            source: source(&i.source)?,
                            settings,
                        })
                        .await;
                    match made {
                        Ok(instance) => instance,
                        // Another node made it a moment ago, from the same file.
                        Err(StoreError::Conflict(_)) => store
                            .instances(company.id)
                            .await?
                            .into_iter()
                            .find(|x| x.name == i.name)
                            .ok_or_else(|| {
                                ServerError::Config(format!(
                                    "instance {} vanished as it was made",
                                    i.name
                                ))
                            })?,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            if let Some(directory) = &i.directory {
                // No secrets in the settings file's directory: an LDAP server or an Entra
                // app of its own (with a password or client secret) is set in the UI or
                // the API.
                if directory.kind != kalsync_directory::DirectoryKind::Entra
                    || directory.entra_app.is_some()
                    || !matches!(instance.source, SourceConfig::Graph { .. })
                {
                    return Err(ServerError::Config(format!(
                        "companies[{}].instances[{}].directory: an Entra ID directory on a Microsoft 365 (Graph) instance is what this version reads",
                        decl.name, i.name
                    )));
                }
                // Set again only when changed: each start would make it due at once.
                let stored = store.directory(instance.id).await?;
                if stored.as_ref().map(|d| &d.settings) != Some(directory) {
                    store
                        .set_directory(
                            instance.id,
                            Some(directory),
                            // Entra ID only here: no password.
                            kalsync_store::DirectorySecret::Clear,
                            jiff::Timestamp::now(),
                        )
                        .await?;
                }
            }
            for u in &i.users {
                let (email, name, extension) = match u {
                    UserDecl::Email(e) => (e, None, None),
                    UserDecl::Full {
                        email,
                        name,
                        extension,
                    } => (email, name.clone(), extension.clone()),
                };
                let where_ = format!("companies[{}].instances[{}].users", decl.name, i.name);
                let email = EmailAddress::parse(email)
                    .map_err(|e| ServerError::Config(format!("{where_}: {e}")))?;
                let extension = extension
                    .map(|x| Extension::parse(&x))
                    .transpose()
                    .map_err(|e| ServerError::Config(format!("{where_}: {e}")))?;
                match store
                    .add_user(NewUser {
                        instance: instance.id,
                        email,
                        display_name: name,
                        extension,
                    })
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}
