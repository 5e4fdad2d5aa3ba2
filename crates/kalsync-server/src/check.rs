//! `kalsync check`: an instance's set-up verified step by step — sign in, reach a test
//! mailbox (impersonation or delegate rights), read its calendar, subscribe to it — each
//! step saying what passed or exactly what the Exchange (or Microsoft 365) admin must do.

use jiff::{SignedDuration, Timestamp};
use kalsync_core::exchange::SignIn;
use kalsync_ews::request::{self, Subscription};
use kalsync_ews::{EwsError, Shape, response};
use kalsync_sources::Connections;
use kalsync_store::{InstanceId, SourceConfig, Store};

/// One step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was checked.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen, or what to do.
    pub detail: String,
}

fn step(name: &'static str, result: Result<String, String>) -> Step {
    match result {
        Ok(detail) => Step {
            name,
            ok: true,
            detail,
        },
        Err(detail) => Step {
            name,
            ok: false,
            detail,
        },
    }
}

/// What an EWS error means for the admin.
fn advice(e: &EwsError, sign_in: SignIn) -> String {
    // What Exchange said, as one sentence (its own full stop not doubled).
    let said = e.to_string();
    let said = said.trim_end().trim_end_matches('.');
    match (e, e.code()) {
        (EwsError::Unauthorized(_), _) if sign_in == SignIn::OAuth => format!(
            "{said}. Check the app's tenant, id and secret, and that it has the Exchange permission full_access_as_app with admin consent."
        ),
        (EwsError::Unauthorized(_), _) => format!(
            "{said}. Check the account name (DOMAIN\\user or user@domain) and password, and that the EWS virtual directory allows the chosen sign-in (Get-WebServicesVirtualDirectory | fl WindowsAuthentication, BasicAuthentication, ExtendedProtectionTokenChecking)."
        ),
        (EwsError::Transport(m), _) if m.contains("certificate") => format!(
            "{said}. The server's certificate is not trusted: if it comes from the company's own CA, export that CA's certificate (PEM) and name it with ca_file in the instance; check too that the address's host name is in the certificate."
        ),
        (EwsError::Transport(_), _) => format!(
            "{said}. Check the EWS address (…/EWS/Exchange.asmx), DNS and that the firewall lets this server reach it on TCP 443."
        ),
        (_, Some("ErrorImpersonateUserDenied")) => format!(
            "{said}. The account may not impersonate this mailbox: run the role assignment from `kalsync setup exchange` (New-ManagementRoleAssignment -Role ApplicationImpersonation), with a scope that includes the mailbox."
        ),
        (_, Some("ErrorAccessDenied")) => format!(
            "{said}. The account cannot read this calendar: give it Reviewer (Add-MailboxFolderPermission … -AccessRights Reviewer), or use impersonation."
        ),
        (_, Some("ErrorNonExistentMailbox")) => {
            format!("{said}. The test user has no mailbox on this server.")
        }
        (_, Some("ErrorExceededSubscriptionCount")) => format!(
            "{said}. The throttling policy limits subscriptions: associate the policy from `kalsync setup exchange` (EWSMaxSubscriptions)."
        ),
        _ => e.to_string(),
    }
}

/// Checks instance `id` with the mailbox `user` (the instance's first user when none).
pub async fn check_instance(
    store: &dyn Store,
    connections: &Connections,
    id: InstanceId,
    user: Option<&str>,
) -> Result<Vec<Step>, String> {
    let instance = store.instance(id).await.map_err(|e| e.to_string())?;
    let mailbox = match user {
        Some(u) => u.to_owned(),
        None => store
            .users(id)
            .await
            .map_err(|e| e.to_string())?
            .first()
            .map(|u| u.email.to_string())
            .ok_or("the instance has no users: name a test mailbox with --user")?,
    };
    let zone = instance.settings.time_zone.clone();
    let now = Timestamp::now();
    let (start, end) = (now, now + SignedDuration::from_hours(24 * 14));
    match &instance.source {
        SourceConfig::Ews { .. } => {
            let sign_in = match &instance.source {
                SourceConfig::Ews { auth, .. } => *auth,
                SourceConfig::Graph { .. } => SignIn::OAuth,
            };
            let connection = connections.fresh(&instance).map_err(|e| e.to_string())?;
            let client = connection.ews().ok_or("not an EWS instance")?;
            let mut steps = Vec::new();
            // A one-hour view: signs in and reaches the mailbox in one request.
            let ctx = client.context(&mailbox);
            let probe = client
                .call(
                    &request::find_calendar_view(
                        &ctx,
                        start,
                        start + SignedDuration::from_hours(1),
                        1,
                    ),
                    &mailbox,
                )
                .await;
            let reached = probe.and_then(|a| response::calendar_view(&a));
            let signed_in = !matches!(
                reached,
                Err(EwsError::Unauthorized(_) | EwsError::Transport(_))
            );
            steps.push(step(
                "sign in",
                match &reached {
                    Err(e @ (EwsError::Unauthorized(_) | EwsError::Transport(_))) => {
                        Err(advice(e, sign_in))
                    }
                    _ => Ok(format!("{} accepted the account", client.settings().url)),
                },
            ));
            if !signed_in {
                return Ok(steps);
            }
            let access = match client.settings().access {
                kalsync_ews::Access::Impersonation => "impersonate",
                kalsync_ews::Access::Delegate => "open as a delegate",
            };
            steps.push(step(
                "reach the test mailbox",
                reached
                    .as_ref()
                    .map(|_| format!("may {access} {mailbox}"))
                    .map_err(|e| advice(e, sign_in)),
            ));
            if reached.is_err() {
                return Ok(steps);
            }
            steps.push(step(
                "read the calendar",
                client
                    .read_window(&mailbox, start, end, Shape::default(), &zone)
                    .await
                    .map(|r| {
                        format!(
                            "{} bookings in the next 14 days, {} unreadable",
                            r.bookings.len(),
                            r.rejected.len()
                        )
                    })
                    .map_err(|e| advice(&e, sign_in)),
            ));
            let streaming = client.settings().version.has_streaming()
                && client.settings().access == kalsync_ews::Access::Impersonation;
            let subscribed = if streaming {
                let made = client
                    .call(
                        &request::subscribe(&ctx, &Subscription::Streaming),
                        &mailbox,
                    )
                    .await
                    .and_then(|a| response::subscribed(&a));
                if let Ok(s) = &made {
                    let _ = client
                        .call(&request::unsubscribe(&ctx, &s.id), &mailbox)
                        .await;
                }
                made.map(|_| "a streaming subscription was made (and removed)".to_owned())
                    .map_err(|e| advice(&e, sign_in))
            } else {
                Ok(
                    "no streaming on this version or with delegate access: the mailbox is polled"
                        .to_owned(),
                )
            };
            steps.push(step("subscribe to changes", subscribed));
            if instance.settings.automatic_replies.enabled {
                steps.push(automatic_replies_step(
                    client.automatic_replies(&mailbox).await.map_err(|e| {
                        format!(
                            "{} — the service account must be able to read the mailbox's automatic replies (impersonation, or Full Access for a delegate)",
                            advice(&e, sign_in)
                        )
                    }),
                ));
            }
            if let Some(d) = directory_step(store, connections, id, None).await? {
                steps.push(d);
            }
            Ok(steps)
        }
        SourceConfig::Graph { .. } => {
            let connection = connections.fresh(&instance).map_err(|e| e.to_string())?;
            let source = connection.source();
            let client = connection.graph().ok_or("not a Graph instance")?;
            let mut steps = vec![step(
                "sign in",
                client
                    .check_credentials()
                    .await
                    .map(|()| "the app's credentials give a token".to_owned())
                    .map_err(|e| e.to_string()),
            )];
            if steps[0].ok {
                let email =
                    kalsync_core::EmailAddress::parse(&mailbox).map_err(|e| e.to_string())?;
                steps.push(step(
                    "read the calendar",
                    source
                        .read(&email, kalsync_core::Window { start, end }, false)
                        .await
                        .map(|r| format!("{} bookings in the next 14 days", r.bookings.len()))
                        .map_err(|e| e.to_string()),
                ));
                if instance.settings.automatic_replies.enabled {
                    let answer = source
                        .automatic_replies(std::slice::from_ref(&email))
                        .await
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| {
                            Err(kalsync_engine::SourceError::Failed("no answer".into()))
                        });
                    steps.push(automatic_replies_step(answer.map_err(|e| match e {
                        kalsync_engine::SourceError::Forbidden(why) => format!(
                            "{why} — grant the app MailboxSettings.Read (Application) with admin consent, or turn automatic replies off in the instance's settings"
                        ),
                        other => other.to_string(),
                    })));
                }
                if let Some(d) = directory_step(store, connections, id, Some(client)).await? {
                    steps.push(d);
                }
            }
            Ok(steps)
        }
    }
}

/// Whether the test mailbox's automatic replies can be read, and what they say (never
/// their texts).
fn automatic_replies_step(answer: Result<kalsync_core::AutomaticReplies, String>) -> Step {
    step(
        "read automatic replies",
        answer.map(|r| match r {
            kalsync_core::AutomaticReplies::Off => "readable: off".to_owned(),
            kalsync_core::AutomaticReplies::Always => "readable: on, until turned off".to_owned(),
            kalsync_core::AutomaticReplies::Scheduled { start, end } => {
                format!("readable: scheduled from {start} to {end}")
            }
        }),
    )
}

/// With a directory (Katalog Synk): whether its groups and people can be read — through
/// the instance's Graph app (Entra ID), or signing in to the LDAP server.
async fn directory_step(
    store: &dyn Store,
    connections: &Connections,
    id: InstanceId,
    graph: Option<&kalsync_graph::GraphClient>,
) -> Result<Option<Step>, String> {
    let Some(directory) = store.directory(id).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let groups = &directory.settings.groups;
    let outbound = connections.outbound().clone();
    let checked = match (directory.settings.kind, graph, directory.settings.ldap) {
        (kalsync_directory::DirectoryKind::Entra, _, _)
            if directory.settings.entra_app.is_some() =>
        {
            match (&directory.settings.entra_app, directory.password) {
                (Some(app), Some(secret)) => {
                    match crate::directory::entra_client(app, secret, &outbound) {
                        Ok(client) => kalsync_graph::GraphDirectory::new(client)
                            .check(groups)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    }
                }
                _ => Err("no client secret is stored for the directory's app".to_owned()),
            }
        }
        (kalsync_directory::DirectoryKind::Entra, Some(client), _) => {
            kalsync_graph::GraphDirectory::new(client.clone())
                .check(groups)
                .await
                .map_err(|e| e.to_string())
        }
        (kalsync_directory::DirectoryKind::Ldap, _, Some(server)) => match directory.password {
            Some(password) => match kalsync_ldap::LdapDirectory::new(server, password, outbound) {
                Ok(reader) => reader.check(groups).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            None => Err("no password is stored for the directory's account".to_owned()),
        },
        _ => Err("the directory does not suit this instance".to_owned()),
    };
    Ok(Some(step("read the directory", checked)))
}

/// The admin UI's and API's connection check: [`check_instance`] over the service's store,
/// through the instances' own connections.
pub(crate) struct Checker(
    pub(crate) std::sync::Arc<dyn Store>,
    pub(crate) std::sync::Arc<Connections>,
);

impl kalsync_web::ConnectionCheck for Checker {
    fn check<'a>(
        &'a self,
        instance: InstanceId,
        mailbox: Option<&'a str>,
    ) -> kalsync_web::Hook<'a, Result<Vec<kalsync_web::CheckStep>, String>> {
        Box::pin(async move {
            let steps = check_instance(self.0.as_ref(), &self.1, instance, mailbox).await?;
            Ok(steps
                .into_iter()
                .map(|s| kalsync_web::CheckStep {
                    name: s.name.to_owned(),
                    ok: s.ok,
                    detail: s.detail,
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_is_one_clean_sentence_for_the_instance_s_own_sign_in() {
        let refused = EwsError::Unauthorized("Exchange refused the account.".into());
        let ntlm = advice(&refused, SignIn::Ntlm);
        assert!(!ntlm.contains(".."), "{ntlm}");
        assert!(ntlm.contains("password"), "{ntlm}");
        assert!(
            !ntlm.contains("full_access_as_app"),
            "no OAuth hint: {ntlm}"
        );
        let oauth = advice(&refused, SignIn::OAuth);
        assert!(oauth.contains("full_access_as_app"), "{oauth}");
        assert!(!oauth.contains("WindowsAuthentication"), "{oauth}");
    }
}
