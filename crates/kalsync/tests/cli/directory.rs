//! `kalsync directory preview` as an operator runs it: against the Graph simulator as a
//! process, with the directory declared in the settings file, it says what a sync would
//! add and who cannot be synchronised, and changes nothing; an instance without a
//! directory, or an unknown one, is a clear error.

use crate::helpers::kalsync;

#[test]
fn the_preview_shows_what_a_sync_would_change() {
    let (_sim, base, _lines) = crate::helpers::graph_simulator();
    // The sample's people in a group, through the control API.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let users: Vec<serde_json::Value> = runtime.block_on(async {
        let http = reqwest::Client::new();
        let users: Vec<serde_json::Value> = http
            .get(format!("{base}_sim/users"))
            .send()
            .await
            .expect("users")
            .json()
            .await
            .expect("json");
        let members: Vec<String> = users
            .iter()
            .take(3)
            .map(|u| u["upn"].as_str().expect("upn").to_owned())
            .collect();
        let made = http
            .post(format!("{base}_sim/groups"))
            .json(&serde_json::json!({"id": "sales", "name": "Sales", "members": members}))
            .send()
            .await
            .expect("group");
        assert!(made.status().is_success(), "{}", made.status());
        users
    });
    assert!(users.len() >= 3);
    let dir = std::env::temp_dir().join(format!("kalsync-cli-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let source = crate::helpers::simulated_graph(&base);
    let config = crate::helpers::settings_in(
        &dir,
        &format!(
            r#"[[companies]]
name = "Acme"

[[companies.instances]]
name = "M365"
{source}
directory = {{ kind = "entra", groups = ["sales"] }}

[[companies.instances]]
name = "Plain"
{source}
"#
        ),
    );
    let config = config.as_str();
    let run = kalsync(&[
        "directory",
        "preview",
        "--instance",
        "M365",
        "--config",
        config,
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("M365: 3 members read"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("would add 3, change 0"),
        "{}",
        run.stdout
    );

    let none = kalsync(&[
        "directory",
        "preview",
        "--instance",
        "Plain",
        "--config",
        config,
    ]);
    assert_ne!(none.code, 0);
    assert!(none.stderr.contains("has no directory"), "{}", none.stderr);
    let unknown = kalsync(&[
        "directory",
        "preview",
        "--instance",
        "Nope",
        "--config",
        config,
    ]);
    assert_ne!(unknown.code, 0);
    assert!(
        unknown.stderr.contains("no instance with that id or name"),
        "{}",
        unknown.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
