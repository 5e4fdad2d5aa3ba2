//! Sign-in rate limits: failed sign-ins per account at an address and per address,
//! e-mails found taken per company, and sign-ins with Microsoft started per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// Failed sign-ins, counted per account *at* an address (five within fifteen minutes
/// pause that account from that address) and per address (fifty pause the address for
/// every account: one address guessing many accounts). An account is never paused for
/// an address that did not fail, so nobody can lock another person — the operator
/// included — out. Kept per node, in bounded memory.
#[derive(Debug, Default)]
pub struct SignInLimit {
    failures: Mutex<HashMap<LimitKey, Vec<Instant>>>,
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    /// One account from one address (or from an address nobody knows).
    AccountAt(String, Option<IpAddr>),
    /// One address, whatever account it tries.
    Address(IpAddr),
    /// A company adding accounts whose e-mail is taken (probing for who has accounts).
    Taken(kalsync_store::CompanyId),
    /// Sign-ins with Microsoft started from one address.
    Started(IpAddr),
}

/// Sign-ins with Microsoft one address may start in [`WINDOW`] (an office behind one
/// address signing in at nine included).
const STARTS_PER_ADDRESS: usize = 200;

/// E-mails found taken a company may try in [`WINDOW`] before adding accounts pauses.
const TAKEN_TRIES: usize = 5;

/// Failures of one account from one address allowed in [`WINDOW`].
const ACCOUNT_FAILURES: usize = 5;
/// Failures from one address allowed in [`WINDOW`], over all accounts.
const ADDRESS_FAILURES: usize = 50;
/// The window failures are counted in.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most keys kept: past it, the stalest are forgotten.
const MAX_KEYS: usize = 100_000;

impl SignInLimit {
    fn keys(ip: Option<IpAddr>, email: &str) -> Vec<(LimitKey, usize)> {
        let mut keys = vec![(
            LimitKey::AccountAt(email.trim().to_lowercase(), ip),
            ACCOUNT_FAILURES,
        )];
        if let Some(ip) = ip {
            keys.push((LimitKey::Address(ip), ADDRESS_FAILURES));
        }
        keys
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<LimitKey, Vec<Instant>>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(TooMany(seconds until a retry))` while the account at this address, or the
    /// address, is paused.
    pub fn check(&self, ip: Option<IpAddr>, email: &str) -> Result<(), ApiError> {
        Self::paused(&mut self.failures(), &Self::keys(ip, email), Instant::now())
    }

    fn paused(
        failures: &mut HashMap<LimitKey, Vec<Instant>>,
        keys: &[(LimitKey, usize)],
        now: Instant,
    ) -> Result<(), ApiError> {
        for (key, allowed) in keys {
            if let Some(list) = failures.get_mut(key) {
                list.retain(|t| now.duration_since(*t) < WINDOW);
                if list.len() >= *allowed {
                    let oldest = list[list.len() - allowed];
                    let wait = WINDOW.saturating_sub(now.duration_since(oldest));
                    return Err(ApiError::TooMany(wait.as_secs().max(1)));
                }
            }
        }
        Ok(())
    }

    /// Checks and counts an attempt as failed in one step, before the (slow) password
    /// check, so that many attempts at once cannot all pass the check first; the
    /// attempt's mark, for [`SignInLimit::succeeded_attempt`].
    pub fn attempt(&self, ip: Option<IpAddr>, email: &str) -> Result<Instant, ApiError> {
        let now = Instant::now();
        let keys = Self::keys(ip, email);
        let mut failures = self.failures();
        Self::paused(&mut failures, &keys, now)?;
        Self::count(&mut failures, &keys, now);
        Ok(now)
    }

    /// The attempt marked `at` succeeded: it no longer counts, and the account's
    /// failures at this address are forgotten.
    pub fn succeeded_attempt(&self, ip: Option<IpAddr>, email: &str, at: Instant) {
        let mut failures = self.failures();
        for (key, _) in Self::keys(ip, email) {
            if let Some(list) = failures.get_mut(&key)
                && let Some(i) = list.iter().position(|t| *t == at)
            {
                list.remove(i);
            }
        }
        failures.remove(&LimitKey::AccountAt(email.trim().to_lowercase(), ip));
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, ip: Option<IpAddr>, email: &str) {
        Self::count(&mut self.failures(), &Self::keys(ip, email), Instant::now());
    }

    fn count(
        failures: &mut HashMap<LimitKey, Vec<Instant>>,
        keys: &[(LimitKey, usize)],
        now: Instant,
    ) {
        if failures.len() >= MAX_KEYS {
            // A spray of addresses or e-mails: forget what is over, then the stalest.
            failures.retain(|_, list| list.iter().any(|t| now.duration_since(*t) < WINDOW));
            if failures.len() >= MAX_KEYS {
                let mut last: Vec<(Instant, LimitKey)> = failures
                    .iter()
                    .map(|(k, list)| (list.last().copied().unwrap_or(now), k.clone()))
                    .collect();
                last.sort_by_key(|(t, _)| *t);
                for (_, key) in last.into_iter().take(MAX_KEYS / 10) {
                    failures.remove(&key);
                }
            }
        }
        for (key, allowed) in keys {
            let list = failures.entry(key.clone()).or_default();
            list.push(now);
            // Only the last `allowed` matter.
            if list.len() > *allowed {
                list.drain(..list.len() - allowed);
            }
        }
    }

    /// `Err(TooMany)` while `company` may not add accounts: it tried too many e-mails
    /// that were taken. E-mails are unique across the operator (they sign in), so
    /// whether one is taken cannot be hidden from whoever adds it; this keeps the
    /// answer from becoming a way to list another company's people.
    pub fn check_taken(&self, company: kalsync_store::CompanyId) -> Result<(), ApiError> {
        Self::paused(
            &mut self.failures(),
            &[(LimitKey::Taken(company), TAKEN_TRIES)],
            Instant::now(),
        )
    }

    /// Counts a sign-in with Microsoft started from `ip`; `Err(TooMany)` past
    /// [`STARTS_PER_ADDRESS`] in the window, so one address cannot crowd everyone's
    /// sign-ins under way out of memory.
    pub fn start_sign_in(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = ip else { return Ok(()) };
        let keys = [(LimitKey::Started(ip), STARTS_PER_ADDRESS)];
        let now = Instant::now();
        let mut failures = self.failures();
        Self::paused(&mut failures, &keys, now)?;
        Self::count(&mut failures, &keys, now);
        Ok(())
    }

    /// Counts an e-mail `company` tried that was taken.
    pub fn taken(&self, company: kalsync_store::CompanyId) {
        Self::count(
            &mut self.failures(),
            &[(LimitKey::Taken(company), TAKEN_TRIES)],
            Instant::now(),
        );
    }

    /// Forgets an account's failures at an address after it signed in there.
    pub fn succeeded(&self, ip: Option<IpAddr>, email: &str) {
        self.failures()
            .remove(&LimitKey::AccountAt(email.trim().to_lowercase(), ip));
    }

    /// How many keys are kept (for tests of the bound).
    pub fn keys_kept(&self) -> usize {
        self.failures().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_within_the_window_is_paused() {
        let limit = SignInLimit::default();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..ACCOUNT_FAILURES {
            assert!(limit.check(ip, "a@x.example").is_ok());
            limit.failed(ip, "a@x.example");
        }
        assert!(matches!(
            limit.check(ip, "A@x.example"),
            Err(ApiError::TooMany(s)) if s > 0 && s <= 900
        ));
        // Another account at the same address is not paused (behind one proxy, that is
        // everyone); the same account from an address that did not fail is not either.
        assert!(limit.check(ip, "b@x.example").is_ok());
        assert!(
            limit
                .check(Some(IpAddr::from([10, 0, 0, 1])), "a@x.example")
                .is_ok()
        );
        limit.succeeded(ip, "a@x.example");
        assert!(limit.check(ip, "a@x.example").is_ok());
    }

    #[test]
    fn one_address_starts_a_bounded_number_of_microsoft_sign_ins() {
        let limit = SignInLimit::default();
        let ip = Some(IpAddr::from([192, 0, 2, 9]));
        for _ in 0..STARTS_PER_ADDRESS {
            limit.start_sign_in(ip).expect("under the limit");
        }
        assert!(matches!(
            limit.start_sign_in(ip),
            Err(ApiError::TooMany(s)) if s > 0 && s <= 900
        ));
        // Others start theirs, and password sign-ins from the address are not paused.
        limit
            .start_sign_in(Some(IpAddr::from([192, 0, 2, 10])))
            .expect("another address");
        assert!(limit.check(ip, "a@x.example").is_ok());
    }

    #[test]
    fn an_address_guessing_many_accounts_is_paused_for_all_of_them() {
        let limit = SignInLimit::default();
        let ip = Some(IpAddr::from([192, 0, 2, 7]));
        for i in 0..ADDRESS_FAILURES {
            limit.failed(ip, &format!("user{i}@x.example"));
        }
        assert!(limit.check(ip, "operator@x.example").is_err());
        assert!(
            limit
                .check(Some(IpAddr::from([192, 0, 2, 8])), "operator@x.example")
                .is_ok()
        );
    }

    #[test]
    fn a_spray_of_addresses_keeps_memory_bounded() {
        let limit = SignInLimit::default();
        for i in 0..(MAX_KEYS as u32 + 5_000) {
            limit.failed(Some(IpAddr::from(i.to_be_bytes())), "a@x.example");
        }
        assert!(limit.keys_kept() <= MAX_KEYS + 2, "{}", limit.keys_kept());
    }

    #[test]
    fn attempts_count_before_their_answer_and_a_success_does_not() {
        let limit = SignInLimit::default();
        let ip = Some(IpAddr::from([127, 0, 0, 2]));
        // Many at once, none answered yet: the sixth is already refused.
        for _ in 0..ACCOUNT_FAILURES {
            assert!(limit.attempt(ip, "c@x.example").is_ok());
        }
        assert!(limit.attempt(ip, "c@x.example").is_err());
        // Successful sign-ins never pause an address.
        let other = Some(IpAddr::from([127, 0, 0, 3]));
        for _ in 0..ACCOUNT_FAILURES * 2 {
            let at = limit.attempt(other, "d@x.example").expect("not paused");
            limit.succeeded_attempt(other, "d@x.example", at);
        }
    }
}
