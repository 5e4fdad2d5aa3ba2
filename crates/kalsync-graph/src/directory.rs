//! Entra ID groups as a directory (*Katalog Synk* on Microsoft 365): a full read takes
//! every group's `transitiveMembers` (nested groups included) with `$select` of only the
//! attributes needed; later reads follow two delta links — `/groups/delta`
//! (`members@delta`, changes to groups not involved passed over) and `/users/delta` —
//! so an unchanged directory costs two requests. A membership change reads the members
//! again; a changed person is taken from the user delta. An expired delta (`syncStateNotFound`, `resyncRequired`,
//! 410 Gone) starts over with a full read. Needs `GroupMember.Read.All` and
//! `User.Read.All`.

use std::collections::{BTreeMap, BTreeSet};

use kalsync_directory::{Directory, DirectoryError, GroupRef, MAX_PEOPLE, Person, Read};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::client::{GraphClient, status_error};
use crate::error::GraphError;

/// The user attributes always read; the mapping adds only the ones it uses.
const BASE_SELECT: &str = "id,displayName,mail,accountEnabled";
/// Graph user properties a mapping may name (the `extensionAttribute1`…`15` of
/// `onPremisesExtensionAttributes` besides).
const USER_PROPERTIES: [&str; 8] = [
    "businessPhones",
    "mobilePhone",
    "department",
    "userPrincipalName",
    "employeeId",
    "officeLocation",
    "jobTitle",
    "faxNumber",
];
/// The longest attribute value kept (a hostile directory cannot fill the store).
const MAX_VALUE: usize = 256;
/// The most answer bytes one read takes in (a 200,000-member tenant fits).
const MAX_READ_BYTES: usize = 512 * 1024 * 1024;
/// A full read at least this often, whatever the deltas say.
const FULL_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// What a read has cost so far.
#[derive(Debug, Default)]
struct Tally {
    requests: u32,
    bytes: usize,
}
/// Graph's largest page for directory lists.
const PAGE: &str = "999";
/// The most nested groups followed.
const MAX_GROUPS: usize = 2_000;
/// The most pages one list may take (a link that never ends is a broken server).
const MAX_PAGES: usize = 1_000;

/// What the next read starts from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The groups asked for, in order.
    configured: Vec<String>,
    /// The user properties read (`$select`).
    #[serde(default)]
    select: String,
    /// The mapped attributes kept per person.
    #[serde(default)]
    wanted: Vec<String>,
    /// Every group involved: the configured ones and those nested in them.
    groups: Vec<String>,
    /// The `/groups/delta` link.
    group_links: Vec<String>,
    /// The `/users/delta` link.
    user_link: String,
    /// The members as last read, by id.
    people: BTreeMap<String, Person>,
    /// When everything was last read.
    #[serde(default)]
    full_at: Option<jiff::Timestamp>,
}

/// Entra ID as a [`Directory`], through an instance's Graph client.
#[derive(Clone)]
pub struct GraphDirectory {
    client: GraphClient,
}

impl GraphDirectory {
    /// Reads through `client` (the instance's own).
    pub fn new(client: GraphClient) -> Self {
        GraphDirectory { client }
    }
}

/// One directory object in a list.
#[derive(Debug, Deserialize)]
struct Object {
    #[serde(rename = "@odata.type", default)]
    kind: Option<String>,
    id: String,
    #[serde(rename = "@removed", default)]
    removed: Option<Value>,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

/// A page of a list or a delta.
#[derive(Debug, Deserialize)]
struct ObjectPage {
    #[serde(default)]
    value: Vec<Object>,
    #[serde(rename = "@odata.nextLink", default)]
    next: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta: Option<String>,
}

/// Why a delta link cannot go on: read everything again.
#[derive(Debug)]
enum Step {
    Error(DirectoryError),
    Restart,
}

impl From<DirectoryError> for Step {
    fn from(e: DirectoryError) -> Self {
        Step::Error(e)
    }
}

/// A Graph error as the directory says it; `group` names the group asked about.
fn directory_error(e: GraphError, group: Option<&str>) -> DirectoryError {
    match e {
        GraphError::NotFound(m) => match group {
            Some(g) => DirectoryError::GroupNotFound(g.to_owned()),
            None => DirectoryError::Protocol(m),
        },
        GraphError::Forbidden(m) => DirectoryError::Permission(format!(
            "{m} (the app needs GroupMember.Read.All and User.Read.All, granted by an admin)"
        )),
        GraphError::Unauthorized(m) => DirectoryError::SignIn(m),
        GraphError::Token(t) => DirectoryError::SignIn(t.to_string()),
        GraphError::Throttled { retry_after } => {
            DirectoryError::Throttled(retry_after.as_secs().max(1))
        }
        GraphError::Transport(m) => DirectoryError::Unreachable(m),
        other => DirectoryError::Protocol(other.to_string()),
    }
}

/// Whether a delta answer says the link expired (read everything again).
fn expired(status: u16, body: &[u8]) -> bool {
    if status == 410 {
        return true;
    }
    let code = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/code")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    (400..500).contains(&status)
        && matches!(
            code.as_str(),
            "syncStateNotFound" | "resyncRequired" | "syncStateInvalid"
        )
}

/// A value as kept: at most [`MAX_VALUE`] characters, no control characters.
fn kept(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_control())
        .take(MAX_VALUE)
        .collect()
}

/// The `$select` for the mapping's attributes, or the one that is no Graph property.
fn select_for(wanted: &[String]) -> Result<String, DirectoryError> {
    let mut select: Vec<&str> = BASE_SELECT.split(',').collect();
    for a in wanted {
        let property = if extension_attribute(a) {
            "onPremisesExtensionAttributes"
        } else if let Some(p) = USER_PROPERTIES.iter().find(|p| p.eq_ignore_ascii_case(a)) {
            p
        } else {
            return Err(DirectoryError::Protocol(format!(
                "`{a}` is not a Microsoft 365 user attribute the directory can map (one of {}, extensionAttribute1–15)",
                USER_PROPERTIES.join(", ")
            )));
        };
        if !select.contains(&property) {
            select.push(property);
        }
    }
    Ok(select.join(","))
}

fn extension_attribute(name: &str) -> bool {
    name.strip_prefix("extensionAttribute")
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=15).contains(&n))
}

/// Writes what a Graph user object says into `person`: only the properties present
/// (a delta may bring only the changed ones; `null` clears), only the wanted attributes.
fn merge(person: &mut Person, o: &Object, wanted: &[String]) {
    let text = |v: &Value| v.as_str().map(kept);
    if let Some(v) = o.rest.get("displayName") {
        person.name = text(v);
    }
    if let Some(v) = o.rest.get("mail") {
        person.email = text(v);
    }
    if let Some(v) = o.rest.get("accountEnabled") {
        // Not said (a reader without the right to see it): counted as enabled.
        person.enabled = v.as_bool().unwrap_or(true);
    }
    for a in wanted {
        let value = if extension_attribute(a) {
            match o.rest.get("onPremisesExtensionAttributes") {
                None => continue,
                Some(extra) => match extra.get(a.as_str()) {
                    None if extra.is_object() => continue,
                    found => found.and_then(text),
                },
            }
        } else {
            let Some((_, v)) = o.rest.iter().find(|(k, _)| k.eq_ignore_ascii_case(a)) else {
                continue;
            };
            match v {
                // `businessPhones`: its first number.
                Value::Array(items) => items.first().and_then(text),
                other => text(other),
            }
        };
        match value.filter(|v| !v.trim().is_empty()) {
            Some(v) => person.attributes.insert(a.clone(), v),
            None => person.attributes.remove(a),
        };
    }
}

/// A Graph user as a person.
fn person(o: &Object, wanted: &[String]) -> Person {
    let mut p = Person {
        key: o.id.clone(),
        name: None,
        email: None,
        enabled: true,
        attributes: BTreeMap::new(),
    };
    merge(&mut p, o, wanted);
    p
}

fn is_user(o: &Object) -> bool {
    o.kind
        .as_deref()
        .is_none_or(|k| k == "#microsoft.graph.user")
}

fn is_group(o: &Object) -> bool {
    o.kind.as_deref() == Some("#microsoft.graph.group")
}

impl GraphDirectory {
    /// One page: the objects and where the next one is.
    async fn page(&self, url: Url, tally: &mut Tally) -> Result<ObjectPage, (u16, Vec<u8>)> {
        tally.requests += 1;
        let answer = self
            .client
            .execute(&[], Method::GET, url, None, true)
            .await
            .map_err(|e| (0, e.to_string().into_bytes()))?;
        tally.bytes += answer.body.len();
        if tally.bytes > MAX_READ_BYTES {
            return Err((
                1,
                format!("the directory's answers exceed {MAX_READ_BYTES} bytes").into_bytes(),
            ));
        }
        if !answer.status.is_success() {
            return Err((answer.status.as_u16(), answer.body));
        }
        serde_json::from_slice(&answer.body).map_err(|e| (1, e.to_string().into_bytes()))
    }

    /// Turns a failed page into the directory's error.
    fn failed(&self, (status, body): (u16, Vec<u8>), group: Option<&str>) -> DirectoryError {
        match status {
            0 => DirectoryError::Unreachable(String::from_utf8_lossy(&body).into_owned()),
            1 => DirectoryError::Protocol(String::from_utf8_lossy(&body).into_owned()),
            s => directory_error(status_error(s, &body), group),
        }
    }

    /// Every page from `url` on; `Restart` when a delta link expired.
    async fn all_pages(
        &self,
        url: Url,
        group: Option<&str>,
        tally: &mut Tally,
        delta: bool,
    ) -> Result<(Vec<Object>, Option<String>), Step> {
        let mut url = url;
        let mut objects = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = match self.page(url, tally).await {
                Ok(p) => p,
                Err((status, body)) if delta && expired(status, &body) => {
                    return Err(Step::Restart);
                }
                Err(e) => return Err(self.failed(e, group).into()),
            };
            objects.extend(page.value);
            if objects.len() > MAX_PEOPLE {
                return Err(DirectoryError::TooLarge.into());
            }
            match (page.next, page.delta) {
                (Some(next), _) => {
                    url = self
                        .client
                        .check_link(&next)
                        .map_err(|e| directory_error(e, None))?;
                }
                (None, link) => return Ok((objects, link)),
            }
        }
        Err(DirectoryError::Protocol(format!("more than {MAX_PAGES} pages")).into())
    }

    fn url(&self, segments: &[&str]) -> Result<Url, DirectoryError> {
        self.client
            .url(segments)
            .map_err(|e| directory_error(e, None))
    }

    /// A delta link to start from now (`$deltatoken=latest`: no data, just the link).
    async fn latest(
        &self,
        collection: &str,
        query: &[(&str, String)],
        tally: &mut Tally,
    ) -> Result<String, DirectoryError> {
        let mut url = self.url(&[collection, "delta"])?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("$deltatoken", "latest");
        }
        match self.all_pages(url, None, tally, false).await {
            Ok((_, Some(link))) => Ok(link),
            Ok((_, None)) => Err(DirectoryError::Protocol(format!(
                "{collection}/delta gave no deltaLink"
            ))),
            Err(Step::Error(e)) => Err(e),
            Err(Step::Restart) => Err(DirectoryError::Protocol("a new delta expired".into())),
        }
    }

    /// A `/groups/delta` link from now on, over every group of the tenant: one request
    /// when nothing changed, however many groups are nested (a filter takes at most 50
    /// ids). Changes to groups the directory does not involve are passed over.
    async fn group_links(&self, tally: &mut Tally) -> Result<Vec<String>, DirectoryError> {
        Ok(vec![
            self.latest("groups", &[("$select", "members".into())], tally)
                .await?,
        ])
    }

    /// Every member of the configured groups, nested ones included, and the groups
    /// nested in them.
    async fn members(
        &self,
        configured: &[String],
        select: &str,
        wanted: &[String],
        tally: &mut Tally,
    ) -> Result<(BTreeMap<String, Person>, Vec<String>), DirectoryError> {
        let mut people = BTreeMap::new();
        let mut groups: BTreeSet<String> = configured.iter().cloned().collect();
        for group in configured {
            let mut url = self.url(&["groups", group, "transitiveMembers"])?;
            url.query_pairs_mut()
                .append_pair("$select", select)
                .append_pair("$top", PAGE);
            let (objects, _) = match self.all_pages(url, Some(group), tally, false).await {
                Ok(o) => o,
                Err(Step::Error(e)) => return Err(e),
                Err(Step::Restart) => {
                    return Err(DirectoryError::Protocol("a list expired".into()));
                }
            };
            for o in &objects {
                if is_group(o) {
                    groups.insert(o.id.clone());
                } else if is_user(o) {
                    people.insert(o.id.clone(), person(o, wanted));
                }
            }
            if groups.len() > MAX_GROUPS {
                return Err(DirectoryError::Protocol(format!(
                    "more than {MAX_GROUPS} nested groups"
                )));
            }
            if people.len() > MAX_PEOPLE {
                return Err(DirectoryError::TooLarge);
            }
        }
        Ok((people, groups.into_iter().collect()))
    }

    /// Reads everything: delta links first (so a change during the read is seen next
    /// time; a change seen twice is harmless), then the members, then the links of
    /// groups found nested in them.
    async fn full(
        &self,
        configured: Vec<String>,
        select: String,
        wanted: Vec<String>,
        tally: &mut Tally,
    ) -> Result<State, DirectoryError> {
        let user_link = self
            .latest("users", &[("$select", select.clone())], tally)
            .await?;
        let group_links = self.group_links(tally).await?;
        let (people, groups) = self.members(&configured, &select, &wanted, tally).await?;
        Ok(State {
            configured,
            select,
            wanted,
            groups,
            group_links,
            user_link,
            people,
            full_at: Some(jiff::Timestamp::now()),
        })
    }

    /// Follows the delta links from `state`: `Restart` when one expired.
    async fn incremental(&self, mut state: State, tally: &mut Tally) -> Result<State, Step> {
        let mut membership_changed = false;
        let mut links = Vec::with_capacity(state.group_links.len());
        for link in &state.group_links {
            let url = self
                .client
                .check_link(link)
                .map_err(|e| directory_error(e, None))?;
            let (objects, next) = self.all_pages(url, None, tally, true).await?;
            for o in &objects {
                if o.removed.is_some() && state.configured.contains(&o.id) {
                    // A configured group deleted: an error, never "everyone left".
                    return Err(DirectoryError::GroupNotFound(o.id.clone()).into());
                }
                // A group the directory involves gained or lost a member, or went.
                if (o.removed.is_some() || o.rest.contains_key("members@delta"))
                    && state.groups.binary_search(&o.id).is_ok()
                {
                    membership_changed = true;
                }
            }
            links.push(next.ok_or_else(|| {
                DirectoryError::Protocol("groups/delta ended without a deltaLink".into())
            })?);
        }
        state.group_links = links;
        let url = self
            .client
            .check_link(&state.user_link)
            .map_err(|e| directory_error(e, None))?;
        let (changed, next) = self.all_pages(url, None, tally, true).await?;
        state.user_link = next.ok_or_else(|| {
            DirectoryError::Protocol("users/delta ended without a deltaLink".into())
        })?;
        if membership_changed {
            let (people, groups) = self
                .members(&state.configured, &state.select, &state.wanted, tally)
                .await?;
            state.groups = groups;
            state.people = people;
            return Ok(state);
        }
        for o in changed {
            if !state.people.contains_key(&o.id) {
                continue;
            }
            if o.removed.is_some() {
                // Deleted (or soft-deleted): gone.
                state.people.remove(&o.id);
            } else if let Some(cached) = state.people.get_mut(&o.id) {
                // Only what the delta says: it may bring just the changed properties.
                merge(cached, &o, &state.wanted);
            }
        }
        Ok(state)
    }
}

impl GraphDirectory {
    /// Whether the directory can be read, in a few requests: one member of each group
    /// (`GroupMember.Read.All`) and a user delta from now (`User.Read.All`). What was
    /// read, or the error naming the fix.
    pub async fn check(&self, groups: &[GroupRef]) -> Result<String, DirectoryError> {
        let mut tally = Tally::default();
        for group in groups {
            let mut url = self.url(&["groups", group.as_str(), "transitiveMembers"])?;
            url.query_pairs_mut()
                .append_pair("$select", "id")
                .append_pair("$top", "1");
            if let Err(e) = self.page(url, &mut tally).await {
                return Err(self.failed(e, Some(group.as_str())));
            }
        }
        self.latest("users", &[("$select", BASE_SELECT.into())], &mut tally)
            .await?;
        Ok(format!(
            "{} group(s) and the users can be read (GroupMember.Read.All, User.Read.All)",
            groups.len()
        ))
    }
}

#[async_trait::async_trait]
impl Directory for GraphDirectory {
    async fn read(
        &self,
        groups: &[GroupRef],
        attributes: &[String],
        state: Value,
    ) -> Result<Read, DirectoryError> {
        let configured: Vec<String> = groups.iter().map(|g| g.as_str().to_owned()).collect();
        let mut wanted: Vec<String> = attributes.to_vec();
        wanted.sort();
        wanted.dedup();
        let select = select_for(&wanted)?;
        let mut tally = Tally::default();
        let now = jiff::Timestamp::now();
        // The same groups (in any order) and attributes, read fully within a day: on
        // from the deltas; otherwise everything again.
        let same = |s: &State| {
            let mut a = s.configured.clone();
            let mut b = configured.clone();
            a.sort();
            b.sort();
            a == b
                && s.select == select
                && !s.user_link.is_empty()
                && s.full_at
                    .is_some_and(|at| now.duration_since(at) < FULL_EVERY)
        };
        let previous = serde_json::from_value::<State>(state)
            .ok()
            .filter(|s| same(s));
        let (state, full) = match previous {
            Some(previous) => match self.incremental(previous, &mut tally).await {
                Ok(s) => (s, false),
                Err(Step::Restart) => (
                    self.full(configured, select, wanted, &mut tally).await?,
                    true,
                ),
                Err(Step::Error(e)) => return Err(e),
            },
            None => (
                self.full(configured, select, wanted, &mut tally).await?,
                true,
            ),
        };
        Ok(Read {
            people: state.people.values().cloned().collect(),
            state: serde_json::to_value(&state)
                .map_err(|e| DirectoryError::Protocol(e.to_string()))?,
            requests: tally.requests,
            full,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_deltas_are_told_apart_from_other_errors() {
        assert!(expired(410, b""));
        assert!(expired(
            400,
            br#"{"error":{"code":"syncStateNotFound","message":"The sync state generation is not found."}}"#
        ));
        assert!(expired(
            400,
            br#"{"error":{"code":"resyncRequired","message":""}}"#
        ));
        assert!(!expired(
            403,
            br#"{"error":{"code":"Authorization_RequestDenied"}}"#
        ));
        assert!(!expired(500, b"<html>"));
    }

    #[test]
    fn a_delta_with_only_the_changed_properties_changes_only_those() {
        let wanted = vec![
            "businessPhones".to_owned(),
            "extensionAttribute3".to_owned(),
        ];
        let full: Object = serde_json::from_value(serde_json::json!({
            "id": "u1", "displayName": "Anna", "mail": "anna@acme.se", "accountEnabled": false,
            "businessPhones": ["+46 8 555 201"],
            "onPremisesExtensionAttributes": {"extensionAttribute3": "201"}
        }))
        .expect("object");
        let mut p = person(&full, &wanted);
        // A rename: mail, the disabled flag and the phones stay as they were.
        let renamed: Object =
            serde_json::from_value(serde_json::json!({"id": "u1", "displayName": "Anna Berg"}))
                .expect("object");
        merge(&mut p, &renamed, &wanted);
        assert_eq!(p.name.as_deref(), Some("Anna Berg"));
        assert_eq!(p.email.as_deref(), Some("anna@acme.se"));
        assert!(!p.enabled);
        assert_eq!(p.attributes["businessPhones"], "+46 8 555 201");
        assert_eq!(p.attributes["extensionAttribute3"], "201");
        // A cleared phone and a cleared extension attribute are cleared.
        let cleared: Object = serde_json::from_value(serde_json::json!({
            "id": "u1", "businessPhones": [],
            "onPremisesExtensionAttributes": {"extensionAttribute3": null}
        }))
        .expect("object");
        merge(&mut p, &cleared, &wanted);
        assert!(p.attributes.is_empty(), "{:?}", p.attributes);
    }

    #[test]
    fn only_mapped_attributes_are_selected_and_kept() {
        assert_eq!(
            select_for(&[
                "businessPhones".to_owned(),
                "extensionAttribute7".to_owned()
            ])
            .expect("select"),
            "id,displayName,mail,accountEnabled,businessPhones,onPremisesExtensionAttributes"
        );
        assert!(select_for(&["homePhone".to_owned()]).is_err());
        let o: Object = serde_json::from_value(serde_json::json!({
            "id": "u1", "mail": "a@acme.se", "mobilePhone": "070", "department": "x".repeat(5000)
        }))
        .expect("object");
        let p = person(&o, &["department".to_owned()]);
        assert!(
            !p.attributes.contains_key("mobilePhone"),
            "not mapped, not kept"
        );
        assert_eq!(p.attributes["department"].len(), MAX_VALUE);
    }

    #[test]
    fn a_graph_user_becomes_a_person() {
        let o: Object = serde_json::from_value(serde_json::json!({
            "@odata.type": "#microsoft.graph.user",
            "id": "u1",
            "displayName": "Anna Andersson",
            "mail": "anna@acme.se",
            "accountEnabled": false,
            "businessPhones": ["+46 8 555 201", "+46 8 555 299"],
            "mobilePhone": null,
            "onPremisesExtensionAttributes": {"extensionAttribute3": "201", "extensionAttribute4": null}
        }))
        .expect("object");
        let wanted = vec![
            "businessPhones".to_owned(),
            "extensionAttribute3".to_owned(),
            "extensionAttribute4".to_owned(),
            "mobilePhone".to_owned(),
        ];
        let p = person(&o, &wanted);
        assert_eq!(p.email.as_deref(), Some("anna@acme.se"));
        assert!(!p.enabled);
        assert_eq!(p.attributes["businessPhones"], "+46 8 555 201");
        assert_eq!(p.attributes["extensionAttribute3"], "201");
        assert!(!p.attributes.contains_key("mobilePhone"));
        assert!(!p.attributes.contains_key("extensionAttribute4"));
    }
}
