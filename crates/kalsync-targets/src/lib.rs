//! Kalsync's targets wired: each stored target configuration made into the engine's
//! [`Target`] — a webhook, a SIP presence server, an Asterisk/FreePBX manager, Microsoft
//! Teams, or the in-process PBX simulator where a service runs one. The engine builds a target through
//! [`factory`] the first time it delivers to it and again when its configuration
//! changes.

use std::sync::Arc;
use std::time::Duration;

use kalsync_engine::{Target, TargetFactory};
use kalsync_pbx_sim::PbxSimulator;
use kalsync_store::TargetConfig;

/// How long a webhook may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SIP PUBLISH lasts before it is refreshed.
const SIP_EXPIRES: Duration = Duration::from_secs(600);
/// How long a SIP transaction may take.
const SIP_TIMEOUT: Duration = Duration::from_secs(8);

/// The target a configuration describes, reaching only where `outbound` permits; a
/// `simulator` target is `pbx`, when the service runs one.
pub fn build(
    config: &TargetConfig,
    outbound: &kalsync_outbound::OutboundPolicy,
    pbx: Option<&PbxSimulator>,
    teams: Option<&kalsync_teams::Teams>,
) -> Result<Arc<dyn Target>, String> {
    Ok(match config {
        TargetConfig::Teams { presence, language } => match teams {
            Some(teams) => teams.target(*presence, *language),
            None => return Err("this service has no Teams presence".into()),
        },
        TargetConfig::Webhook {
            url,
            signing_secret,
            batch,
        } => Arc::new(
            kalsync_target_webhook::WebhookTarget::new(
                url,
                signing_secret,
                WEBHOOK_TIMEOUT,
                outbound,
            )
            .map_err(|e| e.to_string())?
            .batched(*batch),
        ),
        TargetConfig::Simulator => match pbx {
            Some(pbx) => Arc::new(pbx.clone()),
            None => return Err("this service runs no PBX simulator".into()),
        },
        TargetConfig::Ami {
            host,
            port,
            username,
            secret,
            announcement,
        } => Arc::new(kalsync_target_ami::AmiTarget::new(
            host,
            *port,
            username,
            secret.clone(),
            announcement,
            outbound.clone(),
        )),
        TargetConfig::Sip {
            proxy,
            domain,
            username,
            password,
            ca,
        } => Arc::new(kalsync_target_sip::SipTarget::new(
            kalsync_target_sip::SipSettings {
                proxy: proxy.clone(),
                domain: domain.clone(),
                username: username.clone(),
                password: password.clone(),
                expires: SIP_EXPIRES,
                timeout: SIP_TIMEOUT,
                outbound: outbound.clone(),
                ca: ca.clone(),
            },
        )),
    })
}

/// The engine's way in: [`build`] for every target it delivers to.
pub fn factory(
    outbound: kalsync_outbound::OutboundPolicy,
    pbx: Option<PbxSimulator>,
    teams: Option<kalsync_teams::Teams>,
) -> TargetFactory {
    Arc::new(move |target| build(&target.config, &outbound, pbx.as_ref(), teams.as_ref()))
}
