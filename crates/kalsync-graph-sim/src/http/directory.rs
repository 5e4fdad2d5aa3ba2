//! The directory as Graph serves it: `/groups/{id}/transitiveMembers` (users and nested
//! groups, `$select`, `$top` up to 999, `@odata.nextLink`), `/groups/delta` (`$filter`
//! by up to 50 ids, `members@delta` with `@removed`, deleted groups) and `/users/delta`
//! (`$select`, deleted users), both with `$deltatoken=latest`, paging and expiry
//! (`400 syncStateNotFound`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::admission::admit;
use super::{base_url, graph_error};
use crate::Simulator;
use crate::groups::{Change, Groups, Member};
use crate::world::Directory;

/// Objects per delta page.
const DELTA_PAGE: usize = 100;
/// Ids a delta `$filter` may name.
const MAX_FILTER_IDS: usize = 50;

/// The query of a list or delta request.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(rename = "$select")]
    select: Option<String>,
    #[serde(rename = "$top")]
    top: Option<String>,
    #[serde(rename = "$skiptoken")]
    skiptoken: Option<String>,
    #[serde(rename = "$deltatoken")]
    deltatoken: Option<String>,
    #[serde(rename = "$filter")]
    filter: Option<String>,
}

/// Where a delta round is: changes after `since` up to `upto` (none: everything as it
/// is), from object `offset`, over the ids filtered, with the properties selected. The
/// token carries the first request's query, as Graph's do.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    since: Option<u64>,
    upto: u64,
    offset: usize,
    ids: Option<Vec<String>>,
    select: Option<String>,
}

fn encode(c: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode(token: &str) -> Option<Cursor> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

fn unsupported(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", message)
}

fn json_response(body: Value) -> Response {
    use axum::response::IntoResponse as _;
    axum::Json(body).into_response()
}

/// The fields asked for (`id` always).
fn selected(select: Option<&str>) -> Option<Vec<String>> {
    select.map(|s| {
        s.split(',')
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect()
    })
}

/// A user as Graph shows it, with only the `select`ed properties.
fn user_json(users: &Directory, groups: &Groups, id: &str, select: Option<&[String]>) -> Value {
    let Some(u) = users.users.get(id) else {
        return json!({"id": id});
    };
    let p = groups.profiles.get(id).cloned().unwrap_or_default();
    let mut extension = Map::new();
    for n in 1..=15 {
        let name = format!("extensionAttribute{n}");
        let value = p
            .extension_attributes
            .get(&name)
            .map_or(Value::Null, |v| Value::String(v.clone()));
        extension.insert(name, value);
    }
    let mail = if p.no_mail {
        Value::Null
    } else {
        Value::String(p.mail.clone().unwrap_or_else(|| u.upn.clone()))
    };
    let all = json!({
        "id": u.id,
        "displayName": u.display_name,
        "mail": mail,
        "userPrincipalName": u.upn,
        "accountEnabled": !p.disabled,
        "businessPhones": p.business_phones,
        "mobilePhone": p.mobile_phone,
        "department": p.department,
        "onPremisesExtensionAttributes": extension,
    });
    pick(all, select)
}

/// Keeps `id` and the selected properties (all without a `$select`).
fn pick(all: Value, select: Option<&[String]>) -> Value {
    let (Value::Object(map), Some(select)) = (&all, select) else {
        return all;
    };
    let mut out = Map::new();
    for (k, v) in map {
        if k == "id" || select.iter().any(|s| s.eq_ignore_ascii_case(k)) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn typed(mut v: Value, kind: &str) -> Value {
    if let Value::Object(map) = &mut v {
        map.insert(
            "@odata.type".into(),
            Value::String(format!("#microsoft.graph.{kind}")),
        );
    }
    v
}

fn member_ref(m: &Member) -> Value {
    match m {
        Member::User(id) => json!({"@odata.type": "#microsoft.graph.user", "id": id}),
        Member::Group(id) => json!({"@odata.type": "#microsoft.graph.group", "id": id}),
    }
}

/// The denied fault: the app lacks the directory permissions.
fn denied(sim: &Simulator) -> Option<Response> {
    sim.world().faults.directory_denied.then(|| {
        graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    })
}

pub(super) async fn transitive_members(
    State(sim): State<Simulator>,
    Path(group): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    if let Some(r) = denied(&sim) {
        return r;
    }
    let top = match q.top.as_deref().map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=999).contains(&n) => n,
        Some(_) => return unsupported("Invalid page size specified."),
    };
    let offset = match q.skiptoken.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return unsupported("Invalid skip token."),
    };
    let select = selected(q.select.as_deref());
    let world = sim.world();
    let Some(members) = world.groups.transitive(&group) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{group}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let page: Vec<Value> = members
        .iter()
        .skip(offset)
        .take(top)
        .map(|m| match m {
            Member::User(id) => typed(
                user_json(&world.directory, &world.groups, id, select.as_deref()),
                "user",
            ),
            Member::Group(id) => {
                let name = world.groups.groups.get(id).map(|g| g.name.clone());
                typed(
                    pick(json!({"id": id, "displayName": name}), select.as_deref()),
                    "group",
                )
            }
        })
        .collect();
    let base = base_url(&headers);
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#directoryObjects"),
        "value": page,
    });
    if offset + top < members.len() {
        let mut next = url::Url::parse(&format!("{base}/v1.0/groups/{group}/transitiveMembers"))
            .unwrap_or_else(|_| url::Url::parse("http://127.0.0.1/").expect("a url"));
        {
            let mut pairs = next.query_pairs_mut();
            if let Some(s) = &q.select {
                pairs.append_pair("$select", s);
            }
            pairs
                .append_pair("$top", &top.to_string())
                .append_pair("$skiptoken", &(offset + top).to_string());
        }
        body["@odata.nextLink"] = Value::String(next.to_string());
    }
    json_response(body)
}

/// `id eq 'a' or id eq 'b'`: the ids, or why not.
fn filter_ids(filter: &str) -> Result<Vec<String>, Response> {
    let mut ids = Vec::new();
    for part in filter.split(" or ") {
        let id = part
            .trim()
            .strip_prefix("id eq '")
            .and_then(|r| r.strip_suffix('\''))
            .ok_or_else(|| unsupported("Unsupported or invalid query filter clause specified for property 'id' of resource 'Group'."))?;
        ids.push(id.replace("''", "'"));
    }
    if ids.len() > MAX_FILTER_IDS {
        return Err(unsupported(
            "The number of filter clauses exceeds the limit of 50.",
        ));
    }
    Ok(ids)
}

/// Which collection a delta is over.
#[derive(Clone, Copy)]
enum Over {
    Groups,
    Users,
}

impl Over {
    fn name(self) -> &'static str {
        match self {
            Over::Groups => "groups",
            Over::Users => "users",
        }
    }
}

/// The objects of a delta round: everything as it is, or the changes in the window.
fn delta_objects(world: &crate::World, over: Over, c: &Cursor) -> Vec<Value> {
    let groups = &world.groups;
    let wanted = |id: &str| c.ids.as_ref().is_none_or(|ids| ids.iter().any(|i| i == id));
    let select = selected(c.select.as_deref());
    match (over, c.since) {
        (Over::Groups, None) => groups
            .groups
            .iter()
            .filter(|(id, g)| !g.deleted && wanted(id))
            .map(|(id, g)| {
                let mut v = json!({"id": id, "displayName": g.name});
                if !g.members.is_empty() {
                    v["members@delta"] = Value::Array(g.members.iter().map(member_ref).collect());
                }
                v
            })
            .collect(),
        (Over::Users, None) => {
            let mut ids: Vec<&String> = world
                .directory
                .users
                .keys()
                .filter(|id| !groups.deleted_users.contains(*id))
                .collect();
            ids.sort();
            ids.into_iter()
                .map(|id| user_json(&world.directory, groups, id, select.as_deref()))
                .collect()
        }
        (over, Some(since)) => {
            let from = usize::try_from(since)
                .unwrap_or(usize::MAX)
                .min(groups.log.len());
            let to = usize::try_from(c.upto)
                .unwrap_or(usize::MAX)
                .min(groups.log.len());
            let window = &groups.log[from..to.max(from)];
            match over {
                Over::Groups => {
                    let mut by_group: std::collections::BTreeMap<&str, Vec<Value>> =
                        Default::default();
                    let mut deleted = Vec::new();
                    for change in window {
                        match change {
                            Change::Membership(g, m, added) if wanted(g) => {
                                let mut r = member_ref(m);
                                if !added {
                                    r["@removed"] = json!({"reason": "deleted"});
                                }
                                by_group.entry(g.as_str()).or_default().push(r);
                            }
                            Change::GroupDeleted(g) if wanted(g) => deleted.push(g.clone()),
                            _ => {}
                        }
                    }
                    by_group
                        .into_iter()
                        .map(|(g, members)| json!({"id": g, "members@delta": members}))
                        .chain(
                            deleted
                                .into_iter()
                                .map(|g| json!({"id": g, "@removed": {"reason": "deleted"}})),
                        )
                        .collect()
                }
                Over::Users => {
                    let mut seen = std::collections::BTreeSet::new();
                    window
                        .iter()
                        .filter_map(|change| match change {
                            Change::User(id) if wanted(id) && seen.insert(id.clone()) => {
                                Some(if groups.deleted_users.contains(id) {
                                    json!({"id": id, "@removed": {"reason": "deleted"}})
                                } else {
                                    user_json(&world.directory, groups, id, select.as_deref())
                                })
                            }
                            _ => None,
                        })
                        .collect()
                }
            }
        }
    }
}

async fn delta(sim: Simulator, over: Over, q: ListQuery, headers: HeaderMap) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    if let Some(r) = denied(&sim) {
        return r;
    }
    let base = base_url(&headers);
    let world = sim.world();
    let head = world.groups.head();
    let ids = match q.filter.as_deref().map(filter_ids) {
        None => None,
        Some(Ok(ids)) => Some(ids),
        Some(Err(r)) => return r,
    };
    let link =
        |kind: &str, c: &Cursor| format!("{base}/v1.0/{}/delta?${kind}={}", over.name(), encode(c));
    let cursor = match (q.skiptoken.as_deref(), q.deltatoken.as_deref()) {
        (Some(skip), _) => match decode(skip) {
            Some(c) => c,
            None => return unsupported("Invalid skip token."),
        },
        (None, Some("latest")) => {
            let next = Cursor {
                since: Some(head),
                upto: head,
                offset: 0,
                ids,
                select: q.select.clone(),
            };
            return json_response(json!({
                "@odata.context": format!("{base}/v1.0/$metadata#{}", over.name()),
                "value": [],
                "@odata.deltaLink": link("deltatoken", &next),
            }));
        }
        (None, Some(token)) => match decode(token) {
            Some(c) => Cursor {
                upto: head,
                offset: 0,
                ..c
            },
            None => return unsupported("Invalid delta token."),
        },
        (None, None) => Cursor {
            since: None,
            upto: head,
            offset: 0,
            ids,
            select: q.select.clone(),
        },
    };
    if let Some(since) = cursor.since
        && world.groups.expired_before.is_some_and(|e| since <= e)
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        );
    }
    let objects = delta_objects(&world, over, &cursor);
    let page: Vec<Value> = objects
        .iter()
        .skip(cursor.offset)
        .take(DELTA_PAGE)
        .cloned()
        .collect();
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#{}", over.name()),
        "value": page,
    });
    if cursor.offset + DELTA_PAGE < objects.len() {
        let next = Cursor {
            offset: cursor.offset + DELTA_PAGE,
            ..cursor
        };
        body["@odata.nextLink"] = Value::String(link("skiptoken", &next));
    } else {
        let next = Cursor {
            since: Some(cursor.upto),
            offset: 0,
            ..cursor
        };
        body["@odata.deltaLink"] = Value::String(link("deltatoken", &next));
    }
    json_response(body)
}

pub(super) async fn groups_delta(
    State(sim): State<Simulator>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    delta(sim, Over::Groups, q, headers).await
}

pub(super) async fn users_delta(
    State(sim): State<Simulator>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    delta(sim, Over::Users, q, headers).await
}
