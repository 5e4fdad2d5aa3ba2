//! The plan a sync makes, as an admin would check it: joiners, changes, leavers after the
//! grace period, people with problems left as they are, duplicates refused, users added
//! by hand kept or removed per the setting, mass removals held — and, for any directory
//! and any stored users, nobody still in the directory is ever removed.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use kalsync_core::{EmailAddress, Extension};
use kalsync_directory::{
    Current, DirectorySettings, Field, Gone, GroupRef, ManualUsers, PbxList, Person, Problem, plan,
    plan_with,
};
use proptest::prelude::*;

fn now() -> Timestamp {
    "2026-11-23T09:00:00Z".parse().expect("time")
}

fn settings() -> DirectorySettings {
    let mut s = DirectorySettings::entra(vec![GroupRef::parse("sales").expect("group")]);
    s.extension = Some(
        serde_json::from_value(
            serde_json::json!({"attribute": "businessPhones", "last_digits": 3}),
        )
        .expect("rule"),
    );
    s.department = Some("department".into());
    s
}

fn person(key: &str, email: &str, phone: Option<&str>) -> Person {
    let mut attributes = BTreeMap::new();
    if let Some(p) = phone {
        attributes.insert("businessPhones".to_owned(), p.to_owned());
    }
    Person {
        key: key.into(),
        name: Some(key.to_uppercase()),
        email: Some(email.into()),
        enabled: true,
        attributes,
    }
}

fn stored(id: u32, key: Option<&str>, email: &str, extension: Option<&str>) -> Current<u32> {
    Current {
        id,
        email: EmailAddress::parse(email).expect("email"),
        name: key.map(str::to_uppercase),
        extension: extension.map(|e| Extension::parse(e).expect("ext")),
        department: None,
        key: key.map(str::to_owned),
        leaving_since: None,
    }
}

#[test]
fn joiners_changes_and_leavers() {
    let people = [
        person("anna", "anna@acme.se", Some("+46 8 555 201")),
        person("bo", "bo@acme.se", Some("+46 8 555 202")),
    ];
    let current = [
        stored(1, Some("anna"), "anna@acme.se", Some("209")),
        stored(2, Some("carl"), "carl@acme.se", Some("203")),
    ];
    let p = plan(&people, &current, &settings(), now(), false);
    assert_eq!(p.add.len(), 1);
    assert_eq!(p.add[0].email.as_str(), "bo@acme.se");
    assert_eq!(
        p.add[0].extension.as_ref().map(Extension::as_str),
        Some("202")
    );
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].id, 1);
    assert_eq!(p.update[0].changed, [Field::Extension]);
    assert!(!p.update[0].adopted);
    assert_eq!(p.remove.len(), 1);
    assert_eq!((p.remove[0].id, p.remove[0].why), (2, Gone::Left));
    assert_eq!(p.members, 2);
    assert!(p.held.is_none());
}

#[test]
fn leavers_go_after_the_grace_period_and_may_come_back() {
    let mut s = settings();
    s.grace = SignedDuration::from_hours(48);
    let current = [stored(1, Some("anna"), "anna@acme.se", None)];
    let p = plan::<u32>(&[], &current, &s, now(), false);
    assert_eq!(p.leaving, [1], "the grace period starts");
    assert!(p.remove.is_empty());

    let mut leaving = current.clone();
    leaving[0].leaving_since = Some(now());
    let soon = plan::<u32>(
        &[],
        &leaving,
        &s,
        now() + SignedDuration::from_hours(47),
        false,
    );
    assert!(
        soon.remove.is_empty() && soon.leaving.is_empty(),
        "still in grace"
    );
    let later = plan::<u32>(
        &[],
        &leaving,
        &s,
        now() + SignedDuration::from_hours(48),
        false,
    );
    assert_eq!(later.remove.len(), 1);

    let back = plan(
        &[person("anna", "anna@acme.se", None)],
        &leaving,
        &s,
        now() + SignedDuration::from_hours(1),
        false,
    );
    assert_eq!(back.returned, [1]);
    assert!(back.remove.is_empty());
}

#[test]
fn a_person_with_a_problem_stays_as_they_are() {
    let people = [
        person("anna", "anna@acme.se", Some("reception")),
        Person {
            email: None,
            ..person("bo", "x@y.se", None)
        },
    ];
    let current = [
        stored(1, Some("anna"), "anna@acme.se", Some("201")),
        stored(2, Some("bo"), "bo@acme.se", Some("202")),
    ];
    let p = plan(&people, &current, &settings(), now(), false);
    assert!(p.remove.is_empty(), "{:?}", p.remove);
    assert!(p.update.is_empty() && p.add.is_empty());
    let problems: BTreeMap<&str, &Problem> = p
        .problems
        .iter()
        .map(|x| (x.key.as_str(), &x.problem))
        .collect();
    assert!(matches!(problems["anna"], Problem::BadExtension { .. }));
    assert_eq!(problems["bo"], &Problem::NoEmail);
}

#[test]
fn duplicates_are_refused_and_the_holder_keeps_an_extension() {
    let people = [
        person("anna", "anna@acme.se", Some("201")),
        person("anna2", "anna@acme.se", Some("205")),
        person("bo", "bo@acme.se", Some("+46 8 555 202")),
        person("dora", "dora@acme.se", Some("202")),
        person("eva", "eva@acme.se", Some("207")),
        person("fia", "fia@acme.se", Some("207")),
    ];
    let current = [stored(2, Some("bo"), "bo@acme.se", Some("202"))];
    let p = plan(&people, &current, &settings(), now(), false);
    let refused: BTreeSet<&str> = p.problems.iter().map(|x| x.key.as_str()).collect();
    assert_eq!(
        refused,
        BTreeSet::from(["anna", "anna2", "dora", "eva", "fia"]),
        "{:?}",
        p.problems
    );
    assert!(p.add.is_empty(), "{:?}", p.add);
    assert!(p.update.is_empty(), "Bo keeps 202: {:?}", p.update);
}

#[test]
fn users_added_by_hand_are_kept_adopted_or_removed_as_set() {
    let people = [person("anna", "anna@acme.se", Some("201"))];
    let current = [
        stored(1, None, "anna@acme.se", Some("201")),
        stored(2, None, "reception@acme.se", Some("200")),
    ];
    let kept = plan(&people, &current, &settings(), now(), false);
    assert_eq!(kept.update.len(), 1);
    assert!(
        kept.update[0].adopted,
        "Anna is taken over by the directory"
    );
    assert!(kept.remove.is_empty(), "the receptionist stays");

    let mut only = settings();
    only.manual = ManualUsers::Refuse;
    let refused = plan(&people, &current, &only, now(), false);
    assert_eq!(refused.remove.len(), 1);
    assert_eq!(
        (refused.remove[0].id, refused.remove[0].why),
        (2, Gone::NotInDirectory)
    );
}

#[test]
fn a_new_mailbox_for_the_same_entry_replaces_the_old() {
    let people = [person("anna", "anna.berg@acme.se", None)];
    let current = [stored(1, Some("anna"), "anna@acme.se", None)];
    let p = plan(&people, &current, &settings(), now(), false);
    assert_eq!(p.remove.len(), 1);
    assert_eq!(p.remove[0].why, Gone::MailboxChanged);
    assert_eq!(p.add.len(), 1);
    assert_eq!(p.add[0].email.as_str(), "anna.berg@acme.se");
}

#[test]
fn disabled_accounts_leave() {
    let people = [Person {
        enabled: false,
        ..person("anna", "anna@acme.se", None)
    }];
    let current = [stored(1, Some("anna"), "anna@acme.se", None)];
    let p = plan(&people, &current, &settings(), now(), false);
    assert_eq!(p.remove.len(), 1);
    assert_eq!(p.remove[0].why, Gone::Left);
    assert_eq!(p.members, 0);
}

#[test]
fn most_of_the_directory_going_at_once_is_held_until_confirmed() {
    let current: Vec<Current<u32>> = (0..20)
        .map(|i| stored(i, Some(&format!("k{i}")), &format!("p{i}@acme.se"), None))
        .collect();
    let few: Vec<Person> = (0..5)
        .map(|i| person(&format!("k{i}"), &format!("p{i}@acme.se"), None))
        .collect();
    let p = plan(&few, &current, &settings(), now(), false);
    let held = p.held.expect("held");
    assert_eq!((held.would_go, held.of), (15, 20));
    assert!(p.remove.is_empty() && p.leaving.is_empty());
    let confirmed = plan(&few, &current, &settings(), now(), true);
    assert!(confirmed.held.is_none());
    assert_eq!(confirmed.remove.len(), 15);
    // A few leavers are no reason to hold.
    let most: Vec<Person> = (0..17)
        .map(|i| person(&format!("k{i}"), &format!("p{i}@acme.se"), None))
        .collect();
    assert_eq!(
        plan(&most, &current, &settings(), now(), false)
            .remove
            .len(),
        3
    );
}

fn arb_person() -> impl Strategy<Value = Person> {
    (
        0u8..12,
        0u8..8,
        proptest::option::of(0u8..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(key, mail, phone, enabled, no_mail)| Person {
            key: format!("k{key}"),
            name: Some(format!("P{key}")),
            email: (!no_mail).then(|| format!("p{mail}@acme.se")),
            enabled,
            attributes: phone
                .map(|p| BTreeMap::from([("businessPhones".to_owned(), format!("+46855520{p}"))]))
                .unwrap_or_default(),
        })
}

fn arb_current() -> impl Strategy<Value = Vec<Current<u32>>> {
    proptest::collection::vec(
        (
            proptest::option::of(0u8..12),
            0u8..8,
            proptest::option::of(0u8..6),
        ),
        0..10,
    )
    .prop_map(|rows| {
        let mut seen_mail = BTreeSet::new();
        let mut seen_key = BTreeSet::new();
        rows.into_iter()
            .enumerate()
            .filter(|(_, (key, mail, _))| {
                seen_mail.insert(*mail) && key.is_none_or(|k| seen_key.insert(k))
            })
            .map(|(i, (key, mail, ext))| Current {
                id: i as u32,
                email: EmailAddress::parse(&format!("p{mail}@acme.se")).expect("email"),
                name: None,
                extension: ext.map(|e| Extension::parse(&format!("20{e}")).expect("ext")),
                department: None,
                key: key.map(|k| format!("k{k}")),
                leaving_since: None,
            })
            .collect()
    })
}

proptest! {
    // Many cases: the space of small directories against small stores is large, and a
    // collision once hid in it past the default 256.
    #![proptest_config(ProptestConfig::with_cases(4096))]
    #[test]
    fn nobody_still_in_the_directory_is_removed_and_nothing_collides(
        people in proptest::collection::vec(arb_person(), 0..14),
        current in arb_current(),
        refuse in any::<bool>(),
    ) {
        let mut s = settings();
        if refuse {
            s.manual = ManualUsers::Refuse;
        }
        let p = plan(&people, &current, &s, now(), true);
        let present: BTreeSet<&str> =
            people.iter().filter(|x| x.enabled).map(|x| x.key.as_str()).collect();
        for r in &p.remove {
            let cur = current.iter().find(|c| c.id == r.id).expect("a stored user");
            if r.why != Gone::MailboxChanged {
                prop_assert!(
                    cur.key.as_deref().is_none_or(|k| !present.contains(k)),
                    "{:?} removed while in the directory", cur
                );
            }
        }
        // No user is both changed and removed; additions never take a mailbox a
        // remaining user has, nor repeat one.
        let removed: BTreeSet<u32> = p.remove.iter().map(|r| r.id).collect();
        for u in &p.update {
            prop_assert!(!removed.contains(&u.id));
        }
        let remaining: BTreeSet<&str> = current
            .iter()
            .filter(|c| !removed.contains(&c.id))
            .map(|c| c.email.as_str())
            .collect();
        let mut added = BTreeSet::new();
        for a in &p.add {
            prop_assert!(!remaining.contains(a.email.as_str()), "{} taken", a.email);
            prop_assert!(added.insert(a.email.as_str()), "{} twice", a.email);
        }
        // Extensions stay unique among the users after the plan.
        let mut after: BTreeMap<String, u32> = BTreeMap::new();
        let mut clash = None;
        for c in current.iter().filter(|c| !removed.contains(&c.id)) {
            let ext = p
                .update
                .iter()
                .find(|u| u.id == c.id)
                .map_or(c.extension.clone(), |u| u.member.extension.clone());
            if let Some(x) = ext && after.insert(x.to_string(), c.id).is_some() {
                clash = Some(x.to_string());
            }
        }
        for a in &p.add {
            if let Some(x) = &a.extension && after.insert(x.to_string(), u32::MAX).is_some() {
                clash = Some(x.to_string());
            }
        }
        // Stored users may already share one (made before the directory); the plan
        // never makes a new clash.
        let before: BTreeSet<String> = {
            let mut seen = BTreeSet::new();
            current.iter().filter_map(|c| c.extension.as_ref().map(|e| e.to_string()))
                .filter(|e| !seen.insert(e.clone())).collect()
        };
        if let Some(x) = clash {
            prop_assert!(before.contains(&x), "a new clash on {x}: {p:?}");
        }
    }
}

#[test]
fn a_user_added_by_hand_still_in_the_directory_stays_under_directory_only() {
    // Anna was added by hand; her directory entry has a bad extension, so it cannot
    // be matched — she is still in the group and must not be removed.
    let mut only = settings();
    only.manual = ManualUsers::Refuse;
    let people = [person("anna", "Anna@acme.se", Some("reception"))];
    let current = [stored(1, None, "anna@acme.se", Some("201"))];
    let p = plan(&people, &current, &only, now(), false);
    assert!(p.remove.is_empty(), "{:?}", p.remove);
}

#[test]
fn a_renamed_mail_domain_is_held_not_deleted_at_once() {
    // Every entry's mailbox changes (acme.se → acme.com): the old users' data would
    // all go at once — held, like any mass removal.
    let people: Vec<Person> = (0..10)
        .map(|i| person(&format!("k{i}"), &format!("p{i}@acme.com"), None))
        .collect();
    let current: Vec<Current<u32>> = (0..10)
        .map(|i| stored(i, Some(&format!("k{i}")), &format!("p{i}@acme.se"), None))
        .collect();
    let p = plan(&people, &current, &settings(), now(), false);
    assert!(p.held.is_some(), "{p:?}");
    assert!(p.remove.is_empty() && p.add.is_empty(), "{p:?}");
    let confirmed = plan(&people, &current, &settings(), now(), true);
    assert_eq!(confirmed.remove.len(), 10);
    assert_eq!(confirmed.add.len(), 10);
}

#[test]
fn everyone_going_is_held_however_few() {
    let current: Vec<Current<u32>> = (0..3)
        .map(|i| stored(i, Some(&format!("k{i}")), &format!("p{i}@acme.se"), None))
        .collect();
    let p = plan::<u32>(&[], &current, &settings(), now(), false);
    assert_eq!(p.held.map(|h| (h.would_go, h.of)), Some((3, 3)));
    assert!(p.remove.is_empty());
    // One of one leaving is a leaver, not a broken directory.
    let one = plan::<u32>(&[], &current[..1], &settings(), now(), false);
    assert!(one.held.is_none() && one.remove.len() == 1);
}

#[test]
fn an_entry_whose_user_another_entry_took_is_matched_by_its_mailbox() {
    // Entry k11 had p2's user; now entry k1 has mailbox p2 and k11 has p6, which a
    // user added by hand has. Neither may add a mailbox a user already has.
    let people = [
        person("k1", "p2@acme.se", None),
        person("k11", "p6@acme.se", None),
    ];
    let current = [
        stored(0, None, "p6@acme.se", None),
        stored(1, Some("k11"), "p2@acme.se", None),
    ];
    let p = plan(&people, &current, &settings(), now(), true);
    assert!(p.add.is_empty(), "{:?}", p.add);
    assert!(p.remove.is_empty(), "{:?}", p.remove);
    let adopted: BTreeMap<u32, &str> = p
        .update
        .iter()
        .map(|u| (u.id, u.member.key.as_str()))
        .collect();
    assert_eq!(adopted, BTreeMap::from([(0, "k11"), (1, "k1")]));
}

#[test]
fn only_people_the_pbx_knows_are_added_and_they_take_its_extension() {
    let pbx =
        PbxList::from_csv("email,extension\nanna@acme.se,201\nbo@acme.se,302\n").expect("pbx");
    let people = [
        // The PBX's extension wins over the directory's (Anna's 209 is stale); Bo has
        // none in the directory and takes the PBX's too.
        person("anna", "anna@acme.se", Some("+46 8 555 209")),
        person("bo", "bo@acme.se", None),
        // Not on the PBX: not added.
        person("carl", "carl@acme.se", Some("+46 8 555 203")),
        // Not on the PBX but already a user: stays as they are.
        person("dora", "dora@acme.se", Some("+46 8 555 204")),
    ];
    let current = [stored(4, Some("dora"), "dora@acme.se", Some("204"))];
    let p = plan_with(&people, &current, &settings(), now(), false, Some(&pbx));
    let added: Vec<(&str, Option<&str>)> = p
        .add
        .iter()
        .map(|m| {
            (
                m.email.as_str(),
                m.extension.as_ref().map(Extension::as_str),
            )
        })
        .collect();
    assert_eq!(
        added,
        [("anna@acme.se", Some("201")), ("bo@acme.se", Some("302"))]
    );
    let not_known: BTreeSet<&str> = p
        .problems
        .iter()
        .filter(|x| x.problem == Problem::NotInPbx)
        .map(|x| x.key.as_str())
        .collect();
    assert_eq!(not_known, BTreeSet::from(["carl", "dora"]));
    assert!(p.remove.is_empty(), "dora stays");
    // Without a PBX directory, the same plan adds Carl too.
    let open = plan(&people, &current, &settings(), now(), false);
    assert!(open.add.iter().any(|m| m.email.as_str() == "carl@acme.se"));
}
