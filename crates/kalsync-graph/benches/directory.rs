//! Katalog Synk on Entra ID: a 10,000-member group nested two levels (one group, ten
//! groups in it, ten in each of those, 100 people in each), read from the Graph
//! simulator on loopback — the first read, a read with nothing changed, and a read after
//! 100 changes (50 joiners or leavers, 50 changed phone numbers) — and the plan made
//! from it against 10,000 stored users. Time and requests of each.
//!
//! `cargo bench -p kalsync-graph --bench directory` (environment: `PEOPLE`, default
//! 10000; `LATENCY_MS`, the simulator's response time, default 0).

use std::time::Instant;

use kalsync_core::{EmailAddress, Extension};
use kalsync_directory::{Current, Directory, DirectorySettings, GroupRef, plan};
use kalsync_graph::{AppCredentials, ClientAuth, Endpoints, GraphClient, GraphDirectory, Limits};
use kalsync_graph_sim::{Faults, GroupSpec, Profile, SimConfig, Simulator, UserSpec};
use secrecy::SecretString;

/// The allocator the `kalsync` binary uses, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kalsync_testkit::env_or as env;

fn phone(i: usize) -> String {
    format!("+46 8 555 {:05}", i)
}

fn main() {
    let people: usize = env("PEOPLE", 10_000);
    let latency: u64 = env("LATENCY_MS", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let sim = Simulator::new(SimConfig::with_secret("bench-tenant", "bench-app", "bench-secret"));
        let built = Instant::now();
        // 100 leaf groups of people, in 10 middle groups, in one top group.
        let leaves = 100;
        let per_leaf = people.div_ceil(leaves);
        for leaf in 0..leaves {
            let mut members = Vec::new();
            for j in 0..per_leaf {
                let i = leaf * per_leaf + j;
                if i >= people {
                    break;
                }
                let upn = format!("p{i:05}@bench.example");
                sim.add_user(UserSpec {
                    upn: upn.clone(),
                    id: None,
                    display_name: Some(format!("Person {i}")),
                    time_zone: "W. Europe Standard Time".into(),
                    working_hours: None,
                })
                .expect("user");
                sim.set_profile(&upn, Profile { business_phones: vec![phone(i)], ..Profile::default() })
                    .expect("profile");
                members.push(upn);
            }
            sim.add_group(GroupSpec { id: Some(format!("leaf-{leaf}")), name: format!("Leaf {leaf}"), members })
                .expect("leaf");
        }
        for middle in 0..10 {
            let members = (0..10).map(|k| format!("group:leaf-{}", middle * 10 + k)).collect();
            sim.add_group(GroupSpec { id: Some(format!("middle-{middle}")), name: format!("Middle {middle}"), members })
                .expect("middle");
        }
        let members = (0..10).map(|m| format!("group:middle-{m}")).collect();
        sim.add_group(GroupSpec { id: Some("all".into()), name: "All".into(), members }).expect("top");
        // Outsiders whose changes the user delta also brings.
        for i in 0..100 {
            sim.add_user(UserSpec {
                upn: format!("outsider{i}@bench.example"),
                id: None,
                display_name: None,
                time_zone: "W. Europe Standard Time".into(),
                working_hours: None,
            })
            .expect("outsider");
        }
        eprintln!("built the directory in {:.1} s", built.elapsed().as_secs_f64());
        sim.set_faults(Faults { latency_ms: latency, ..Faults::default() });
        let (base, _handle) = kalsync_graph_sim::spawn(sim.clone()).await.expect("simulator");
        let client = GraphClient::new(
            Endpoints::at(&base).expect("endpoints"),
            AppCredentials {
                tenant: "bench-tenant".into(),
                client_id: "bench-app".into(),
                auth: ClientAuth::Secret(SecretString::from("bench-secret")),
            },
            Limits::default(),
            &kalsync_outbound::OutboundPolicy::with_loopback(),
        )
        .expect("client");
        let directory = GraphDirectory::new(client);
        let groups = vec![GroupRef::parse("all").expect("group")];
        let mut settings = DirectorySettings::entra(groups.clone());
        settings.extension = Some(
            serde_json::from_value(serde_json::json!({"attribute": "businessPhones", "last_digits": 5}))
                .expect("rule"),
        );
        let attributes = settings.attributes();

        println!("Katalog Synk, Entra ID: {people} people in 100 groups in 10 groups in 1 group; simulator latency {latency} ms; 2 worker threads (simulator included)");
        println!("{:<34} {:>9} {:>9} {:>9}", "read", "seconds", "requests", "people");
        let started = Instant::now();
        let first = directory.read(&groups, &attributes, serde_json::Value::Null).await.expect("first read");
        println!("{:<34} {:>9.2} {:>9} {:>9}", "first (full)", started.elapsed().as_secs_f64(), first.requests, first.people.len());

        let started = Instant::now();
        let quiet = directory.read(&groups, &attributes, first.state.clone()).await.expect("quiet read");
        println!("{:<34} {:>9.3} {:>9} {:>9}", "nothing changed", started.elapsed().as_secs_f64(), quiet.requests, quiet.people.len());

        // 100 changes: 25 joiners, 25 leavers, 50 new phone numbers.
        for i in 0..25 {
            sim.change_member("leaf-0", &format!("outsider{i}@bench.example"), true).expect("join");
            let leaver = format!("p{:05}@bench.example", 5_000 + i);
            let leaf = (5_000 + i) / per_leaf;
            sim.change_member(&format!("leaf-{leaf}"), &leaver, false).expect("leave");
        }
        for i in 0..50 {
            let upn = format!("p{:05}@bench.example", 7_000 + i);
            sim.set_profile(&upn, Profile { business_phones: vec![phone(90_000 + i)], ..Profile::default() })
                .expect("phone");
        }
        let started = Instant::now();
        let changed = directory.read(&groups, &attributes, quiet.state.clone()).await.expect("read after changes");
        println!("{:<34} {:>9.2} {:>9} {:>9}", "after 100 changes (membership)", started.elapsed().as_secs_f64(), changed.requests, changed.people.len());

        // Attribute changes only: taken from the user delta, no re-read.
        for i in 0..100 {
            let upn = format!("p{:05}@bench.example", 8_000 + i);
            sim.set_profile(&upn, Profile { business_phones: vec![phone(95_000 + i)], ..Profile::default() })
                .expect("phone");
        }
        let started = Instant::now();
        let attrs = directory.read(&groups, &attributes, changed.state.clone()).await.expect("read after attribute changes");
        println!("{:<34} {:>9.3} {:>9} {:>9}", "after 100 changes (attributes)", started.elapsed().as_secs_f64(), attrs.requests, attrs.people.len());

        // The plan against 10,000 stored users (the first read's people).
        let stored: Vec<Current<usize>> = first
            .people
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                Some(Current {
                    id: i,
                    email: EmailAddress::parse(p.email.as_deref()?).ok()?,
                    name: p.name.clone(),
                    extension: p.attributes.get("businessPhones").and_then(|v| {
                        let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                        Extension::parse(&digits[digits.len().saturating_sub(5)..]).ok()
                    }),
                    department: None,
                    key: Some(p.key.clone()),
                    leaving_since: None,
                })
            })
            .collect();
        let started = Instant::now();
        let planned = plan(&attrs.people, &stored, &settings, jiff::Timestamp::now(), false);
        println!(
            "plan against {} users: {:.1} ms ({} to add, {} to change, {} to remove, {} problems)",
            stored.len(),
            started.elapsed().as_secs_f64() * 1000.0,
            planned.add.len(),
            planned.update.len(),
            planned.remove.len(),
            planned.problems.len()
        );
        let state = serde_json::to_string(&attrs.state).map_or(0, |s| s.len());
        println!("stored state: {:.1} MB", state as f64 / 1_048_576.0);
    });
}
