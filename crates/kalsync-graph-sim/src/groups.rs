//! The simulated tenant's directory beyond mailboxes: groups (with nested groups), the
//! directory attributes of users (mail, phones, department, extension attributes,
//! enabled), deleted users, and the change log that `/groups/delta` and `/users/delta`
//! answer from. Delta tokens are positions in that log; a token at or before
//! [`Groups::expired_before`] is refused as Entra refuses an expired one.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::world::{Directory, SpecError};

/// A group's direct member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Member {
    /// A user, by object id.
    User(String),
    /// A nested group, by id.
    Group(String),
}

/// A group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) members: BTreeSet<Member>,
    pub(crate) deleted: bool,
}

/// A user's directory attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    /// `mail` (the primary SMTP address); none: the UPN.
    pub mail: Option<String>,
    /// Mail removed altogether (a user without a mailbox address).
    pub no_mail: bool,
    /// `accountEnabled` is false.
    pub disabled: bool,
    /// `businessPhones`.
    pub business_phones: Vec<String>,
    /// `mobilePhone`.
    pub mobile_phone: Option<String>,
    /// `department`.
    pub department: Option<String>,
    /// `onPremisesExtensionAttributes` (`extensionAttribute1` … `15`).
    pub extension_attributes: BTreeMap<String, String>,
}

/// One change, as the deltas report them.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A user's attributes changed, or they were deleted.
    User(String),
    /// A member was added to (`true`) or removed from a group.
    Membership(String, Member, bool),
    /// A group was deleted.
    GroupDeleted(String),
}

/// A group as the control API creates it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Its id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// `displayName`.
    pub name: String,
    /// Members: users by UPN or id, nested groups as `group:<id>`.
    #[serde(default)]
    pub members: Vec<String>,
}

/// The directory's groups and attributes, and its change log.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) profiles: HashMap<String, Profile>,
    pub(crate) deleted_users: BTreeSet<String>,
    /// Change `n` (from 1) is `log[n - 1]`.
    pub(crate) log: Vec<Change>,
    /// Delta tokens at or before this position are expired.
    pub(crate) expired_before: Option<u64>,
}

impl Groups {
    /// The position of the newest change.
    pub(crate) fn head(&self) -> u64 {
        self.log.len() as u64
    }

    fn member(&self, users: &Directory, text: &str) -> Result<Member, SpecError> {
        if let Some(g) = text.strip_prefix("group:") {
            return match self.groups.get(g) {
                Some(found) if !found.deleted => Ok(Member::Group(g.to_owned())),
                _ => Err(SpecError::NotFound(format!("group `{g}`"))),
            };
        }
        let id = users
            .resolve(text)
            .ok_or_else(|| SpecError::NotFound(format!("user `{text}`")))?;
        if self.deleted_users.contains(id) {
            return Err(SpecError::NotFound(format!("user `{text}`")));
        }
        Ok(Member::User(id.to_owned()))
    }

    /// Adds a group; its id.
    pub(crate) fn add_group(
        &mut self,
        users: &Directory,
        spec: GroupSpec,
    ) -> Result<String, SpecError> {
        let id = spec.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if self.groups.contains_key(&id) {
            return Err(SpecError::Conflict(format!("group `{id}`")));
        }
        let mut members = BTreeSet::new();
        for m in &spec.members {
            members.insert(self.member(users, m)?);
        }
        self.groups.insert(
            id.clone(),
            Group {
                name: spec.name,
                members: BTreeSet::new(),
                deleted: false,
            },
        );
        for m in members {
            self.set_member(&id, m, true)?;
        }
        Ok(id)
    }

    fn set_member(&mut self, group: &str, member: Member, add: bool) -> Result<(), SpecError> {
        let g = self
            .groups
            .get_mut(group)
            .filter(|g| !g.deleted)
            .ok_or_else(|| SpecError::NotFound(format!("group `{group}`")))?;
        let changed = if add {
            g.members.insert(member.clone())
        } else {
            g.members.remove(&member)
        };
        if changed {
            self.log
                .push(Change::Membership(group.to_owned(), member, add));
        }
        Ok(())
    }

    /// Adds (`true`) or removes a member by UPN, id or `group:<id>`.
    pub(crate) fn change_member(
        &mut self,
        users: &Directory,
        group: &str,
        member: &str,
        add: bool,
    ) -> Result<(), SpecError> {
        let m = self.member(users, member)?;
        self.set_member(group, m, add)
    }

    /// Deletes a group (its memberships go with it).
    pub(crate) fn delete_group(&mut self, group: &str) -> Result<(), SpecError> {
        let g = self
            .groups
            .get_mut(group)
            .filter(|g| !g.deleted)
            .ok_or_else(|| SpecError::NotFound(format!("group `{group}`")))?;
        g.deleted = true;
        self.log.push(Change::GroupDeleted(group.to_owned()));
        Ok(())
    }

    /// Sets a user's attributes.
    pub(crate) fn set_profile(
        &mut self,
        users: &Directory,
        user: &str,
        profile: Profile,
    ) -> Result<(), SpecError> {
        let id = users
            .resolve(user)
            .ok_or_else(|| SpecError::NotFound(format!("user `{user}`")))?
            .to_owned();
        self.profiles.insert(id.clone(), profile);
        self.log.push(Change::User(id));
        Ok(())
    }

    /// Deletes a user from the directory: out of every group, gone from lists.
    pub(crate) fn delete_user(&mut self, users: &Directory, user: &str) -> Result<(), SpecError> {
        let id = users
            .resolve(user)
            .ok_or_else(|| SpecError::NotFound(format!("user `{user}`")))?
            .to_owned();
        let groups: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.members.contains(&Member::User(id.clone())))
            .map(|(k, _)| k.clone())
            .collect();
        for g in groups {
            self.set_member(&g, Member::User(id.clone()), false)?;
        }
        self.deleted_users.insert(id.clone());
        self.log.push(Change::User(id));
        Ok(())
    }

    /// Every user in `group` and the groups nested in it (each once, cycles and all),
    /// in a stable order; none when the group does not exist.
    pub(crate) fn transitive(&self, group: &str) -> Option<Vec<Member>> {
        if self.groups.get(group).is_none_or(|g| g.deleted) {
            return None;
        }
        let mut seen = BTreeSet::from([Member::Group(group.to_owned())]);
        let mut out = Vec::new();
        let mut queue = VecDeque::from([group.to_owned()]);
        while let Some(g) = queue.pop_front() {
            let Some(found) = self.groups.get(&g).filter(|g| !g.deleted) else {
                continue;
            };
            for m in &found.members {
                if let Member::User(u) = m
                    && self.deleted_users.contains(u)
                {
                    continue;
                }
                if seen.insert(m.clone()) {
                    out.push(m.clone());
                    if let Member::Group(nested) = m {
                        queue.push_back(nested.clone());
                    }
                }
            }
        }
        Some(out)
    }
}
