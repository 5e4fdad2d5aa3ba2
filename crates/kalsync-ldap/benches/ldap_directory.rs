//! Katalog Synk on Active Directory, measured against a real OpenLDAP on loopback: a
//! 10,000-person group nested two levels (one group, ten groups in it, ten in each of
//! those, 100 people in each), read whole over LDAPS in pages of 500 as a service
//! account — the first read and a second one. Time and searches of each.
//!
//! `cargo bench -p kalsync-ldap --bench ldap_directory` (environment: `PEOPLE`, default
//! 10000). Needs `slapd` (`apt-get install slapd`).

#[path = "../tests/support/slapd.rs"]
mod slapd;

use std::time::Instant;

use kalsync_directory::{Directory, GroupRef, LdapServer};
use kalsync_ldap::LdapDirectory;
use kalsync_outbound::OutboundPolicy;
use secrecy::SecretString;
use slapd::{Group, Person};

/// The allocator the `kalsync` binary uses, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let people: usize = std::env::var("PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let leaves = 100;
    let per_leaf = people.div_ceil(leaves);
    let persons: Vec<Person> = (0..people)
        .map(|i| {
            Person::new(
                &format!("p{i:05}"),
                &format!("Person {i}"),
                &format!("{}", 10_000 + i),
            )
        })
        .collect();
    let mut groups: Vec<Group> = (0..leaves)
        .map(|leaf| Group {
            cn: format!("leaf-{leaf}"),
            people: (leaf * per_leaf..((leaf + 1) * per_leaf).min(people))
                .map(|i| format!("p{i:05}"))
                .collect(),
            groups: vec![],
            unkept: false,
        })
        .collect();
    for middle in 0..10 {
        groups.push(Group {
            cn: format!("middle-{middle}"),
            people: vec![],
            groups: (0..10)
                .map(|k| format!("leaf-{}", middle * 10 + k))
                .collect(),
            unkept: false,
        });
    }
    groups.push(Group {
        cn: "all".into(),
        people: vec![],
        groups: (0..10).map(|m| format!("middle-{m}")).collect(),
        unkept: false,
    });
    let loaded = Instant::now();
    let Some(server) = slapd::start(&persons, &groups) else {
        println!("slapd is not installed: nothing measured");
        return;
    };
    println!(
        "OpenLDAP with {people} people in 111 nested groups loaded in {:.1} s",
        loaded.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let all = [GroupRef::parse(&slapd::group_dn("all")).expect("group")];
        let attrs = vec!["ipPhone".to_owned()];
        for url in [server.ldaps.clone(), server.starttls.clone()] {
            let settings =
                LdapServer::parse(&url, slapd::BASE, slapd::READER, Some(&server.ca_pem))
                    .expect("server");
            let dir = LdapDirectory::new(
                settings,
                SecretString::from(slapd::READER_PASSWORD.to_owned()),
                OutboundPolicy::with_loopback(),
            )
            .expect("reader");
            let mut state = serde_json::Value::Null;
            for label in ["first read", "second read"] {
                let started = Instant::now();
                let read = dir.read(&all, &attrs, state).await.expect("read");
                let took = started.elapsed();
                assert_eq!(read.people.len(), people);
                println!(
                    "{:<9} {label:<12} {people} people  {:>6.3} s  {:>4} searches",
                    if url.starts_with("ldaps") {
                        "LDAPS"
                    } else {
                        "StartTLS"
                    },
                    took.as_secs_f64(),
                    read.requests
                );
                state = read.state;
            }
        }
    });
}
