//! The operator's commands on an installed service: `kalsync db backup|restore|version`
//! against the settings file the service runs with, `config example
//! --state-directory` (the package's settings) and the manual page.

use crate::helpers::{kalsync, write_temp};

#[test]
fn a_backup_is_taken_restored_and_the_schema_told() {
    let dir = std::env::temp_dir().join(format!("kalsync-cli-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("kalsync.db");
    let key = dir.join("kalsync.key");
    let config = write_temp(
        "db.toml",
        &format!(
            "database_url = \"sqlite:{}\"\nmaster_key_file = \"{}\"\n",
            db.display(),
            key.display()
        ),
    );
    let config = config.to_str().expect("path");
    let version = kalsync(&["db", "version", "--config", config]);
    assert_eq!(version.code, 0, "{}", version.stderr);
    assert!(
        version.stdout.contains("schema none (a new database)"),
        "{}",
        version.stdout
    );
    assert!(!db.exists(), "asking the version makes no database");
    // The service made the database: a user in it.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = kalsync_store_sql::SqlStore::connect(
            &kalsync_store_sql::DatabaseUrl::new(format!("sqlite:{}", db.display())),
            kalsync_store::SecretBox::from_key_file(&key).expect("key"),
        )
        .await
        .expect("store");
        use kalsync_store::Store as _;
        let company = store.create_company("Backup AB").await.expect("company");
        store.close().await;
        company
    });
    let version = kalsync(&["db", "version", "--config", config]);
    let latest = kalsync_store_sql::latest_schema(kalsync_store_sql::Backend::Sqlite);
    assert!(
        version
            .stdout
            .contains(&format!("schema {latest}; this Kalsync")),
        "{}",
        version.stdout
    );
    let backup = dir.join("backup.db");
    let backup = backup.to_str().expect("path");
    let taken = kalsync(&["db", "backup", "--to", backup, "--config", config]);
    assert_eq!(taken.code, 0, "{}", taken.stderr);
    assert!(
        taken.stdout.contains(&format!("Wrote {backup}"))
            && taken.stdout.contains(&key.display().to_string())
            && taken.stdout.contains("keep a copy of the key"),
        "the backup names the key to keep: {}",
        taken.stdout
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(backup)
            .expect("backup")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "a backup is its owner's alone");
    }
    let again = kalsync(&["db", "backup", "--to", backup, "--config", config]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let restored = kalsync(&["db", "restore", "--from", backup, "--config", config]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(
        restored
            .stdout
            .contains("The database it replaced is kept as"),
        "{}",
        restored.stdout
    );
    let postgres = kalsync(&[
        "db",
        "backup",
        "--to",
        backup,
        "--database-url",
        "postgres://kalsync:hunter2@db.example/kalsync",
    ]);
    assert_eq!(postgres.code, 2);
    assert!(
        postgres.stderr.contains("pg_dump") && !postgres.stderr.contains("hunter2"),
        "{}",
        postgres.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_packaged_settings_and_the_manual_come_from_the_binary() {
    let installed = kalsync(&["config", "example", "--state-directory", "/var/lib/kalsync"]);
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    assert!(
        installed
            .stdout
            .contains("database_url = \"sqlite:/var/lib/kalsync/kalsync.db\"")
            && !installed.stdout.contains("\n[[companies]]"),
        "{}",
        installed.stdout
    );
    let relative = kalsync(&["config", "example", "--state-directory", "var/lib"]);
    assert_eq!(relative.code, 2);
    assert!(
        relative.stderr.contains("absolute path"),
        "{}",
        relative.stderr
    );
    let manual = kalsync(&["manual"]);
    assert_eq!(manual.code, 0, "{}", manual.stderr);
    assert!(
        manual.stdout.starts_with(".ie") || manual.stdout.contains(".TH kalsync"),
        "{}",
        &manual.stdout[..manual.stdout.len().min(300)]
    );
    assert!(manual.stdout.contains("serve"), "the commands are listed");
}

/// A settings file with Acme's Microsoft 365 instance and Anna, on a fresh database.
fn acme(dir: &std::path::Path) -> String {
    crate::helpers::settings_in(
        dir,
        r#"[[companies]]
name = "Acme"

[[companies.targets]]
kind = "webhook"
name = "Växel"
url = "https://pbx.acme.example/kalsync"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[companies.instances]]
name = "M365"
source = { kind = "graph", tenant = "acme.onmicrosoft.com", client_id = "00000000-0000-4000-8000-0000000a99e1", client_secret = "cli-test-secret" }
users = [{ email = "anna@acme.example", name = "Anna Berg", extension = "201" }]
"#,
    )
}

#[test]
fn the_operator_manages_users_and_reads_statuses_from_the_shell() {
    use kalsync_store::Store as _;
    let dir = std::env::temp_dir().join(format!("kalsync-cli-console-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = acme(&dir);
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--config", config.as_str()]);
        kalsync(&all)
    };
    let listed = run(&["instances", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("Acme"))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert!(row.contains("M365") && row.contains("graph"), "{row}");

    let added = run(&[
        "users",
        "add",
        "--instance",
        "M365",
        "bo@acme.example",
        "--extension",
        "202",
    ]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(
        added.stdout.starts_with("Added bo@acme.example"),
        "{}",
        added.stdout
    );
    // Checked as the admin UI checks: Anna's extension is hers.
    let taken = run(&[
        "users",
        "add",
        "--instance",
        "M365",
        "carl@acme.example",
        "--extension",
        "201",
    ]);
    assert_eq!(taken.code, 2);
    assert!(taken.stderr.contains("201"), "{}", taken.stderr);
    let unknown = run(&["users", "list", "--instance", "Nowhere"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("no instance"), "{}", unknown.stderr);

    let csv = write_temp(
        "people.csv",
        "email,name,extension\ncarl@acme.example,Carl Dahl,203\nnot-an-email,X,204\ndora@acme.example,Dora,202\n",
    );
    let imported = run(&[
        "users",
        "import",
        "--instance",
        "M365",
        csv.to_str().expect("path"),
    ]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert!(
        imported
            .stdout
            .contains("1 added, 0 already there, 2 refused"),
        "{}",
        imported.stdout
    );
    assert!(
        imported.stdout.contains("not-an-email") && imported.stdout.contains("dora@acme.example"),
        "the refused rows are listed: {}",
        imported.stdout
    );
    let users = run(&["users", "list", "--instance", "M365", "--json"]);
    let emails: Vec<String> = users
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["email"]
                .as_str()
                .expect("email")
                .to_owned()
        })
        .collect();
    assert_eq!(
        emails,
        ["anna@acme.example", "bo@acme.example", "carl@acme.example"]
    );

    // Anna at lunch now (the clock as it is: the command reads the status at its own
    // now), and a status the PBX gave up on.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store = runtime.block_on(crate::helpers::store_in(&dir));
    runtime.block_on(async {
        let company = store.companies().await.expect("companies")[0].clone();
        let instance = store.instances(company.id).await.expect("instances")[0].clone();
        let anna = store.users(instance.id).await.expect("users")[0].clone();
        let now = jiff::Timestamp::now();
        let mut lunch = kalsync_core::Booking::new(
            kalsync_core::BookingId::parse("lunch").expect("id"),
            kalsync_core::BookingTime::timed(
                now - jiff::SignedDuration::from_mins(10),
                now + jiff::SignedDuration::from_mins(50),
            )
            .expect("time"),
        );
        lunch.subject = Some("LUN: Lunch".into());
        store
            .replace_bookings(anna.id, &[lunch.clone()], false)
            .await
            .expect("bookings");
        let timeline = kalsync_core::build_timeline(
            &[lunch],
            &instance.settings,
            kalsync_core::Window::sync(now, instance.settings.days_ahead),
        );
        store
            .save_timeline(anna.id, &timeline, None)
            .await
            .expect("timeline");
        let target = store.targets(company.id).await.expect("targets")[0].clone();
        let sent = store
            .enqueue(kalsync_store::NewDelivery {
                user: anna.id,
                target: target.id,
                payload: serde_json::json!({"absence": {"reason": "lunch"}}),
                due: now,
                ahead: false,
            })
            .await
            .expect("delivery");
        store
            .mark_dead(sent.id, "webhook: 503 Service Unavailable")
            .await
            .expect("dead");
        store.close().await;
    });
    let status = run(&["status", "anna@acme.example"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    // The default rules read free/busy: a busy booking is "busy", for information.
    assert!(
        status.stdout.contains("Now: Busy (info)")
            && status.stdout.contains("Why: booking")
            && status.stdout.contains("booking lunch: (title not kept"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("Busy, back"), "{}", status.stdout);
    let dead = run(&["deliveries", "--dead"]);
    assert_eq!(dead.code, 0, "{}", dead.stderr);
    assert!(
        dead.stdout.contains("anna@acme.example")
            && dead.stdout.contains("Växel")
            && dead.stdout.contains("503"),
        "{}",
        dead.stdout
    );

    let removed = run(&["users", "remove", "bo@acme.example"]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    // What the console did is in the audit log, as the console's.
    let store = runtime.block_on(crate::helpers::store_in(&dir));
    let log = runtime.block_on(async {
        let company = store.companies().await.expect("companies")[0].id;
        store.audit_log(Some(company), 50).await.expect("audit")
    });
    let actions: Vec<(String, String)> = log
        .iter()
        .filter(|e| e.actor.starts_with("console:"))
        .map(|e| (e.action.clone(), e.actor.clone()))
        .collect();
    assert!(
        actions.iter().any(|(a, _)| a == "user.added")
            && actions.iter().any(|(a, _)| a == "user.removed"),
        "{actions:?}"
    );
    runtime.block_on(store.close());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_users_mailbox_is_checked_and_the_failing_ones_listed() {
    let (_sim, base, _lines) = crate::helpers::graph_simulator();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let people: Vec<String> = runtime.block_on(async {
        let users: Vec<serde_json::Value> = reqwest::get(format!("{base}_sim/users"))
            .await
            .expect("users")
            .json()
            .await
            .expect("json");
        users
            .iter()
            .take(2)
            .map(|u| u["upn"].as_str().expect("upn").to_owned())
            .collect()
    });
    let dir = std::env::temp_dir().join(format!("kalsync-cli-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = crate::helpers::settings_in(
        &dir,
        &format!(
            "[[companies]]\nname = \"Acme\"\n\n[[companies.instances]]\nname = \"M365\"\n{}\nusers = [\"{}\", \"{}\", \"left.the.company@acme.example\"]\n",
            crate::helpers::simulated_graph(&base),
            people[0],
            people[1]
        ),
    );
    let run = kalsync(&[
        "instances",
        "check",
        "M365",
        "--every-user",
        "--config",
        &config,
    ]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("M365: 2 of 3 users pass every step"),
        "{}",
        run.stdout
    );
    let failing: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("@acme.example"))
        .collect();
    assert_eq!(failing.len(), 1, "{}", run.stdout);
    assert!(
        failing[0].starts_with("left.the.company@acme.example"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("1 user(s) failed"), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
