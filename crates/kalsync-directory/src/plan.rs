//! What a sync changes: the directory's complete read compared with the stored users —
//! joiners to add, changed attributes, leavers (after the grace period) to remove with
//! their data, and each person's problem. A dry run is this plan shown, not applied.
//! The plan is built only from a complete read; a failed or partial one never reaches
//! it, so an error can never look like "everyone left".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use kalsync_core::{EmailAddress, Extension};
use serde::{Deserialize, Serialize};

use crate::mapping::{Member, Person, Problem, map};
use crate::pbx::PbxList;
use crate::settings::{DirectorySettings, ManualUsers};

/// A stored user as the plan sees it; `U` is the store's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current<U> {
    /// The user.
    pub id: U,
    /// Mailbox.
    pub email: EmailAddress,
    /// Name.
    pub name: Option<String>,
    /// Extension.
    pub extension: Option<Extension>,
    /// Department.
    pub department: Option<String>,
    /// The directory's id when the directory added (or adopted) them; none: added by
    /// hand.
    pub key: Option<String>,
    /// When they were first seen gone (the grace period runs from here).
    pub leaving_since: Option<Timestamp>,
}

/// Which of a user's fields a sync changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The name.
    Name,
    /// The extension.
    Extension,
    /// The department.
    Department,
}

/// A stored user the directory changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update<U> {
    /// The user.
    pub id: U,
    /// What they are now.
    pub member: Member,
    /// The fields that differ.
    pub changed: Vec<Field>,
    /// Added by hand (or by another directory entry) until now: the directory takes
    /// them over.
    pub adopted: bool,
}

/// Why a user is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gone {
    /// Not a member any more, disabled or deleted.
    Left,
    /// Added by hand, and only the directory decides.
    NotInDirectory,
    /// Their directory entry now has another mailbox: the old one's data goes, the new
    /// mailbox is added.
    MailboxChanged,
}

/// A user to remove with their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal<U> {
    /// The user.
    pub id: U,
    /// Their mailbox.
    pub email: EmailAddress,
    /// Why.
    pub why: Gone,
}

/// One person's problem, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonProblem {
    /// The directory's id.
    pub key: String,
    /// Their name or mailbox as the directory has it.
    pub who: String,
    /// What is wrong.
    pub problem: Problem,
}

/// Removals held back: more than half of the directory's users at once looks like a
/// broken directory or a wrong group, not like people leaving. An admin confirms them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// How many would go.
    pub would_go: usize,
    /// Of how many the directory added.
    pub of: usize,
}

/// What a sync changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<U> {
    /// People to add (and read at once).
    pub add: Vec<Member>,
    /// Users whose attributes change, or whom the directory takes over.
    pub update: Vec<Update<U>>,
    /// Users gone from the directory whose grace period starts now.
    pub leaving: Vec<U>,
    /// Users back within their grace period.
    pub returned: Vec<U>,
    /// Users to remove with their data.
    pub remove: Vec<Removal<U>>,
    /// People left out, or left as they are, and why.
    pub problems: Vec<PersonProblem>,
    /// Removals and leavers held back; none when they go ahead.
    pub held: Option<Held>,
    /// Members read (enabled accounts).
    pub members: usize,
}

impl<U> Plan<U> {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.update.is_empty()
            && self.leaving.is_empty()
            && self.returned.is_empty()
            && self.remove.is_empty()
    }
}

/// Removals past which a sync holds back (with more than half of the users going).
pub const HOLD_ABOVE: usize = 5;

/// The plan for a complete read of `people` against the stored users. `confirmed`
/// lets removals through that would otherwise be [`Held`].
pub fn plan<U: Clone + Ord>(
    people: &[Person],
    current: &[Current<U>],
    settings: &DirectorySettings,
    now: Timestamp,
    confirmed: bool,
) -> Plan<U> {
    plan_with(people, current, settings, now, confirmed, None)
}

/// [`plan`], checked against the company's PBX directory where it has one: a person
/// the PBX has no subscription for is a problem (not added; a user already here stays
/// as they are), and everyone's extension is the PBX's.
pub fn plan_with<U: Clone + Ord>(
    people: &[Person],
    current: &[Current<U>],
    settings: &DirectorySettings,
    now: Timestamp,
    confirmed: bool,
    pbx: Option<&PbxList>,
) -> Plan<U> {
    let mut problems = Vec::new();
    let who = |p: &Person| {
        p.name
            .clone()
            .or_else(|| p.email.clone())
            .unwrap_or_else(|| p.key.clone())
    };
    // Everyone enabled in the directory, mapped or not: a person with a problem is
    // still there, and is never removed for it.
    let present: BTreeSet<&str> = people
        .iter()
        .filter(|p| p.enabled)
        .map(|p| p.key.as_str())
        .collect();
    // Their mailboxes too, as written: someone added by hand whose entry cannot be
    // mapped is still there.
    let present_mail: BTreeSet<String> = people
        .iter()
        .filter(|p| p.enabled)
        .filter_map(|p| p.email.as_deref())
        .map(|e| e.trim().to_lowercase())
        .collect();
    let mut members: Vec<Member> = Vec::new();
    let mut seen = BTreeSet::new();
    for p in people.iter().filter(|p| p.enabled) {
        if !seen.insert(p.key.as_str()) {
            continue;
        }
        let mapped = match (
            map(
                p,
                settings.extension.as_ref(),
                settings.department.as_deref(),
            ),
            pbx,
        ) {
            (Ok(mut m), Some(list)) => match list.get(&m.email) {
                None => Err(Problem::NotInPbx),
                // The PBX decides which phone is whose: its extension, whatever the
                // directory's attribute says (a stale one would ring someone else).
                Some(known) => {
                    m.extension = Some(known.extension.clone());
                    Ok(m)
                }
            },
            (mapped, _) => mapped,
        };
        match mapped {
            Ok(m) => members.push(m),
            Err(problem) => problems.push(PersonProblem {
                key: p.key.clone(),
                who: who(p),
                problem,
            }),
        }
    }
    let count = members.len() + problems.len();
    let by_key: HashMap<&str, &Current<U>> = current
        .iter()
        .filter_map(|c| c.key.as_deref().map(|k| (k, c)))
        .collect();
    let by_email: HashMap<&str, &Current<U>> =
        current.iter().map(|c| (c.email.as_str(), c)).collect();

    // Two entries with one mailbox: neither is taken (which one is meant is unknown).
    let mut emails: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &members {
        emails
            .entry(m.email.as_str().to_owned())
            .or_default()
            .push(m.key.clone());
    }
    members.retain(|m| {
        let keys = &emails[m.email.as_str()];
        if keys.len() == 1 {
            return true;
        }
        let other = keys
            .iter()
            .find(|k| **k != m.key)
            .cloned()
            .unwrap_or_default();
        problems.push(PersonProblem {
            key: m.key.clone(),
            who: m.name.clone().unwrap_or_else(|| m.email.to_string()),
            problem: Problem::SameEmail { other },
        });
        false
    });

    // Which stored user each member is: by the directory's id, else by mailbox
    // (someone added by hand, or an entry made again); a user another entry already
    // matched is not matched twice.
    let mut matched: BTreeSet<U> = BTreeSet::new();
    let mut match_of: Vec<Option<&Current<U>>> = Vec::with_capacity(members.len());
    for m in &members {
        let free = |c: &&Current<U>| !matched.contains(&c.id);
        let found = by_key
            .get(m.key.as_str())
            .copied()
            .filter(free)
            .or_else(|| by_email.get(m.email.as_str()).copied().filter(free));
        if let Some(cur) = found {
            matched.insert(cur.id.clone());
        }
        match_of.push(found);
    }

    // One extension, two people: the user who has it keeps it (whoever that user is
    // matched to); otherwise, when nobody has it, only a single claimant gets it.
    let holders: HashMap<&str, &Current<U>> = current
        .iter()
        .filter_map(|c| c.extension.as_ref().map(|x| (x.as_str(), c)))
        .collect();
    let mut by_extension: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        if let Some(x) = &m.extension {
            by_extension.entry(x.to_string()).or_default().push(i);
        }
    }
    let mut refused: BTreeSet<usize> = BTreeSet::new();
    for (ext, idx) in &by_extension {
        let held_by = holders.get(ext.as_str()).copied();
        for &i in idx {
            let m = &members[i];
            let keeps = match held_by {
                Some(h) => match_of[i].is_some_and(|c| c.id == h.id),
                None => idx.len() == 1,
            };
            if !keeps {
                let other = held_by
                    .map(|h| h.email.to_string())
                    .or_else(|| {
                        idx.iter()
                            .find(|&&j| j != i)
                            .map(|&j| members[j].email.to_string())
                    })
                    .unwrap_or_default();
                problems.push(PersonProblem {
                    key: m.key.clone(),
                    who: m.name.clone().unwrap_or_else(|| m.email.to_string()),
                    problem: Problem::SameExtension {
                        extension: ext.clone(),
                        other,
                    },
                });
                refused.insert(i);
            }
        }
    }

    let mut add = Vec::new();
    let mut update = Vec::new();
    let mut returned = Vec::new();
    let mut remove = Vec::new();
    let mut moved: Vec<(&Current<U>, Option<Member>)> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let Some(cur) = match_of[i] else {
            // Never a mailbox a user has already (another entry matched that user).
            if !refused.contains(&i) && !by_email.contains_key(m.email.as_str()) {
                add.push(m.clone());
            }
            continue;
        };
        if cur.leaving_since.is_some() {
            returned.push(cur.id.clone());
        }
        if cur.email != m.email {
            // The same entry, another mailbox: another calendar. The old one's data
            // goes — counted with the removals, so a renamed mail domain is held.
            let replacement = (!refused.contains(&i) && !by_email.contains_key(m.email.as_str()))
                .then(|| m.clone());
            moved.push((cur, replacement));
            continue;
        }
        let mut changed = Vec::new();
        if m.name.is_some() && cur.name != m.name {
            changed.push(Field::Name);
        }
        // A refused extension leaves the stored one as it is.
        if !refused.contains(&i) && cur.extension != m.extension {
            changed.push(Field::Extension);
        }
        if settings.department.is_some() && cur.department != m.department {
            changed.push(Field::Department);
        }
        let adopted = cur.key.as_deref() != Some(m.key.as_str());
        if !changed.is_empty() || adopted {
            let mut member = m.clone();
            if refused.contains(&i) {
                member.extension = cur.extension.clone();
            }
            update.push(Update {
                id: cur.id.clone(),
                member,
                changed,
                adopted,
            });
        }
    }

    // Who is gone: the directory's own users not there any more, and with "directory
    // only" everyone else too. A person still there with a problem is not gone.
    let mut leaving = Vec::new();
    let mut going = Vec::new();
    for cur in current {
        if matched.contains(&cur.id) {
            continue;
        }
        let why = match cur.key.as_deref() {
            Some(k) if present.contains(k) => continue,
            Some(_) => Gone::Left,
            None if settings.manual == ManualUsers::Refuse
                && !present_mail.contains(cur.email.as_str()) =>
            {
                Gone::NotInDirectory
            }
            None => continue,
        };
        match cur.leaving_since {
            _ if settings.grace.is_zero() => going.push((cur, why)),
            None => leaving.push(cur.id.clone()),
            Some(since) if since + settings.grace <= now => going.push((cur, why)),
            Some(_) => {}
        }
    }
    let ours = current
        .iter()
        .filter(|c| c.key.is_some() || settings.manual == ManualUsers::Refuse)
        .count();
    let would_go = going.len() + leaving.len() + moved.len();
    // More than half going (past a few), or every one of several: a wrong group or a
    // broken directory looks like this, people leaving rarely do.
    let suspicious =
        (would_go > HOLD_ABOVE && would_go * 2 > ours) || (ours >= 2 && would_go >= ours);
    let held = (!confirmed && suspicious).then_some(Held { would_go, of: ours });
    if held.is_some() {
        leaving.clear();
    } else {
        remove.extend(going.into_iter().map(|(cur, why)| Removal {
            id: cur.id.clone(),
            email: cur.email.clone(),
            why,
        }));
        for (cur, replacement) in moved {
            remove.push(Removal {
                id: cur.id.clone(),
                email: cur.email.clone(),
                why: Gone::MailboxChanged,
            });
            add.extend(replacement);
        }
    }
    add.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
    remove.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
    problems.sort_by(|a, b| a.who.cmp(&b.who));
    Plan {
        add,
        update,
        leaving,
        returned,
        remove,
        problems,
        held,
        members: count,
    }
}
