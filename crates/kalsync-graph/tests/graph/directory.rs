//! Entra ID groups as a directory, against the simulator: a full read of nested groups,
//! then delta reads — an unchanged directory costs two requests, joiners, leavers,
//! changed and disabled people and deleted accounts arrive, an expired delta reads
//! everything again, and a deleted or unknown group or a missing permission is an error
//! (never an empty group).

use kalsync_directory::{Directory, DirectoryError, GroupRef, Person, Read};
use kalsync_graph::GraphDirectory;
use kalsync_graph_sim::{Faults, GroupSpec, Profile};

use crate::helpers::{client, default_simulator, user};

fn group(id: &str) -> Vec<GroupRef> {
    vec![GroupRef::parse(id).expect("group")]
}

/// The attributes a mapping with phones and department reads.
fn wanted() -> Vec<String> {
    ["businessPhones", "mobilePhone", "department"]
        .map(str::to_owned)
        .to_vec()
}

fn emails(read: &Read) -> Vec<String> {
    let mut e: Vec<String> = read
        .people
        .iter()
        .filter(|p| p.enabled)
        .filter_map(|p| p.email.clone())
        .collect();
    e.sort();
    e
}

fn person<'a>(read: &'a Read, email: &str) -> &'a Person {
    read.people
        .iter()
        .find(|p| p.email.as_deref() == Some(email))
        .unwrap_or_else(|| panic!("{email} in {:?}", read.people))
}

#[tokio::test]
async fn nested_groups_are_read_then_followed_by_delta() {
    let setup = default_simulator().await;
    let sim = &setup.sim;
    for upn in [
        "anna@acme.se",
        "bo@acme.se",
        "carl@acme.se",
        "dora@acme.se",
        "outsider@acme.se",
    ] {
        user(sim, upn);
    }
    // Sales holds Anna, Bo and the nested Support (Carl), which holds Sales again (a
    // cycle Entra allows).
    let support = sim
        .add_group(GroupSpec {
            id: Some("support".into()),
            name: "Support".into(),
            members: vec!["carl@acme.se".into()],
        })
        .expect("support");
    sim.add_group(GroupSpec {
        id: Some("sales".into()),
        name: "Sales".into(),
        members: vec![
            "anna@acme.se".into(),
            "bo@acme.se".into(),
            format!("group:{support}"),
        ],
    })
    .expect("sales");
    sim.change_member("support", "group:sales", true)
        .expect("cycle");
    let directory = GraphDirectory::new(client(&setup.base));
    let groups = group("sales");

    let first = directory
        .read(&groups, &wanted(), serde_json::Value::Null)
        .await
        .expect("first read");
    assert!(first.full);
    assert_eq!(
        emails(&first),
        ["anna@acme.se", "bo@acme.se", "carl@acme.se"]
    );

    // Nothing changed: one request per delta.
    let quiet = directory
        .read(&groups, &wanted(), first.state.clone())
        .await
        .expect("quiet read");
    assert!(!quiet.full);
    assert_eq!(quiet.requests, 2, "an unchanged directory");
    assert_eq!(emails(&quiet), emails(&first));

    // A joiner in the nested group, and Anna's phone.
    sim.change_member("support", "dora@acme.se", true)
        .expect("join");
    sim.set_profile(
        "anna@acme.se",
        Profile {
            business_phones: vec!["+46 8 555 201".into()],
            department: Some("Sälj".into()),
            ..Profile::default()
        },
    )
    .expect("profile");
    let joined = directory
        .read(&groups, &wanted(), quiet.state.clone())
        .await
        .expect("read");
    assert_eq!(
        emails(&joined),
        ["anna@acme.se", "bo@acme.se", "carl@acme.se", "dora@acme.se"]
    );
    let anna = person(&joined, "anna@acme.se");
    assert_eq!(anna.attributes["businessPhones"], "+46 8 555 201");
    assert_eq!(anna.attributes["department"], "Sälj");

    // A changed attribute alone is taken from the user delta.
    sim.set_profile(
        "bo@acme.se",
        Profile {
            mobile_phone: Some("070-1234567".into()),
            ..Profile::default()
        },
    )
    .expect("profile");
    let changed = directory
        .read(&groups, &wanted(), joined.state.clone())
        .await
        .expect("read");
    assert_eq!(changed.requests, 2, "no membership change: no re-read");
    assert_eq!(
        person(&changed, "bo@acme.se").attributes["mobilePhone"],
        "070-1234567"
    );

    // Disabled, deleted and removed people.
    sim.set_profile(
        "bo@acme.se",
        Profile {
            disabled: true,
            ..Profile::default()
        },
    )
    .expect("disable");
    sim.delete_directory_user("carl@acme.se").expect("delete");
    sim.change_member("sales", "anna@acme.se", false)
        .expect("leave");
    let left = directory
        .read(&groups, &wanted(), changed.state.clone())
        .await
        .expect("read");
    assert_eq!(emails(&left), ["dora@acme.se"], "{:?}", left.people);
    assert!(!person(&left, "bo@acme.se").enabled, "disabled, not gone");

    // An expired delta: everything is read again, and nothing is lost.
    sim.expire_directory_deltas();
    let again = directory
        .read(&groups, &wanted(), left.state.clone())
        .await
        .expect("read");
    assert!(again.full);
    assert_eq!(emails(&again), ["dora@acme.se"]);

    // Another group asked for: a full read of it.
    let other = directory
        .read(&group("support"), &wanted(), again.state.clone())
        .await
        .expect("read");
    assert!(other.full);
    assert_eq!(emails(&other), ["dora@acme.se"]);

    // The group deleted: an error, not an empty group.
    sim.delete_group("sales").expect("delete group");
    let gone = directory
        .read(&groups, &wanted(), again.state.clone())
        .await;
    assert_eq!(gone, Err(DirectoryError::GroupNotFound("sales".into())));
    let unknown = directory
        .read(&group("no-such-group"), &wanted(), serde_json::Value::Null)
        .await;
    assert_eq!(
        unknown,
        Err(DirectoryError::GroupNotFound("no-such-group".into()))
    );
}

#[tokio::test]
async fn a_missing_permission_says_which() {
    let setup = default_simulator().await;
    let sim = &setup.sim;
    user(sim, "anna@acme.se");
    sim.add_group(GroupSpec {
        id: Some("sales".into()),
        name: "Sales".into(),
        members: vec!["anna@acme.se".into()],
    })
    .expect("group");
    sim.set_faults(Faults {
        directory_denied: true,
        ..Faults::default()
    });
    let directory = GraphDirectory::new(client(&setup.base));
    match directory
        .read(&group("sales"), &wanted(), serde_json::Value::Null)
        .await
    {
        Err(DirectoryError::Permission(m)) => {
            assert!(
                m.contains("GroupMember.Read.All") && m.contains("User.Read.All"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn large_groups_are_paged() {
    let setup = default_simulator().await;
    let sim = &setup.sim;
    let mut members = Vec::new();
    for i in 0..2_100 {
        let upn = format!("p{i:04}@acme.se");
        user(sim, &upn);
        members.push(upn);
    }
    sim.add_group(GroupSpec {
        id: Some("all".into()),
        name: "All".into(),
        members,
    })
    .expect("group");
    let directory = GraphDirectory::new(client(&setup.base));
    let read = directory
        .read(&group("all"), &wanted(), serde_json::Value::Null)
        .await
        .expect("read");
    assert_eq!(read.people.len(), 2_100);
    // Two `latest` links and three pages of 999.
    assert_eq!(read.requests, 5);
}
