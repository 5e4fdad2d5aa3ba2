//! Every request the client sends validates against Microsoft's EWS schema
//! (`../shared/fixtures/ews/schema`) with `xmllint`: each header element and the body
//! element, for every server version and both kinds of access. Where `xmllint` is
//! missing the test says it is skipped — except in CI, which installs it.

use std::path::PathBuf;
use std::process::Command;

use jiff::Timestamp;
use kalsync_core::WindowsZone;
use kalsync_ews::request::{self, Access, Context, ItemRef, Request, Shape, Subscription, Version};

fn shared_schema() -> Option<PathBuf> {
    kalsync_testkit::fixtures("ews/schema")
}

/// The schema copied to a temporary folder with two changes libxml2 needs, neither in
/// anything Kalsync sends: `types.xsd` imports the `xml` namespace without a location
/// (a minimal `xml.xsd` declaring `xml:lang` is given), and `ArrayOfTransitionsType`
/// lists the members of `Transition`'s substitution group beside their head, which
/// libxml2 refuses as non-deterministic (the head alone admits the same elements).
fn schema() -> Option<PathBuf> {
    let shared = shared_schema()?;
    if Command::new("xmllint").arg("--version").output().is_err() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("xmllint is not installed; .ci/run installs libxml2-utils");
        }
        eprintln!("SKIPPED: xmllint is not installed (apt-get install libxml2-utils)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("kalsync-ews-xsd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for file in ["messages.xsd", "types.xsd"] {
        let mut text = std::fs::read_to_string(shared.join(file)).expect("schema");
        if file == "types.xsd" {
            let import = "<xs:import namespace=\"http://www.w3.org/XML/1998/namespace\"/>";
            assert!(text.contains(import), "types.xsd changed: {import}");
            text = text.replace(
                import,
                "<xs:import namespace=\"http://www.w3.org/XML/1998/namespace\" schemaLocation=\"xml.xsd\"/>",
            );
            let members = [
                "<xs:element ref=\"t:AbsoluteDateTransition\" minOccurs=\"0\" maxOccurs=\"unbounded\" />",
                "<xs:element ref=\"t:RecurringDayTransition\" minOccurs=\"0\" maxOccurs=\"unbounded\" />",
                "<xs:element ref=\"t:RecurringDateTransition\" minOccurs=\"0\" maxOccurs=\"unbounded\" />",
            ];
            for m in members {
                assert!(text.contains(m), "types.xsd changed: {m}");
                text = text.replace(m, "");
            }
        }
        std::fs::write(dir.join(file), text).expect("write");
    }
    std::fs::write(
        dir.join("xml.xsd"),
        "<?xml version=\"1.0\"?>\n<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" targetNamespace=\"http://www.w3.org/XML/1998/namespace\"><xs:attribute name=\"lang\" type=\"xs:language\"/></xs:schema>\n",
    )
    .expect("xml.xsd");
    Some(dir)
}

/// Validates named XML fragments in one `xmllint` run; the names of those that fail,
/// with xmllint's words.
fn invalid(schema: &std::path::Path, parts: &[(String, String)]) -> Vec<String> {
    let dir = schema.join("parts");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut files = Vec::new();
    for (i, (_, xml)) in parts.iter().enumerate() {
        let file = dir.join(format!("{i}.xml"));
        std::fs::write(&file, xml).expect("write");
        files.push(file);
    }
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema.join("messages.xsd"))
        .args(&files)
        .output()
        .expect("xmllint");
    let report = String::from_utf8_lossy(&output.stderr);
    parts
        .iter()
        .enumerate()
        .filter_map(|(i, (name, _))| {
            let file = files[i].display().to_string();
            let ok = report.lines().any(|l| l == format!("{file} validates"));
            (!ok).then(|| {
                let why: Vec<&str> = report.lines().filter(|l| l.starts_with(&file)).collect();
                format!("{name}: {}", why.join(" | "))
            })
        })
        .collect()
}

fn every_request() -> Vec<(String, Request)> {
    let start: Timestamp = "2026-11-23T00:00:00Z".parse().expect("t");
    let end: Timestamp = "2026-12-07T00:00:00Z".parse().expect("t");
    let items = [
        ItemRef {
            id: "AAMkADk=".into(),
            change_key: Some("DwAAABYA".into()),
        },
        ItemRef {
            id: "AAMkADl=".into(),
            change_key: None,
        },
    ];
    let mut out = Vec::new();
    for version in Version::ALL {
        for access in [Access::Impersonation, Access::Delegate] {
            let ctx = Context {
                version,
                access,
                mailbox: "anna.andersson@corp.example",
                zone: WindowsZone::parse("W. Europe Standard Time").ok(),
            };
            let name = |op: &str| format!("{op} {} {access:?}", version.as_str());
            out.push((
                name("FindItem"),
                request::find_calendar_view(&ctx, start, end, 500),
            ));
            out.push((
                name("GetItem"),
                request::get_items(&ctx, &items, Shape::default()),
            ));
            out.push((
                name("GetItem+subject+location"),
                request::get_items(
                    &ctx,
                    &items,
                    Shape {
                        subject: true,
                        location: true,
                    },
                ),
            ));
            out.push((
                name("SyncFolderItems"),
                request::sync_folder_items(&ctx, None, 512),
            ));
            out.push((
                name("SyncFolderItems+state"),
                request::sync_folder_items(&ctx, Some("H4sIAAAAAAAEAO29B2AcSZ"), 100),
            ));
            if version.has_streaming() {
                out.push((
                    name("Subscribe streaming"),
                    request::subscribe(&ctx, &Subscription::Streaming),
                ));
                out.push((
                    name("GetStreamingEvents"),
                    request::get_streaming_events(&ctx, &["a1", "b2"], 30),
                ));
            }
            for watermark in [None, Some("AAAAAMAGAAAAAAAAAQ==")] {
                out.push((
                    name("Subscribe push"),
                    request::subscribe(
                        &ctx,
                        &Subscription::Push {
                            url: "https://kalsync.corp.example/notifications/ews/s3cr3t",
                            status_minutes: 5,
                            watermark,
                        },
                    ),
                ));
                out.push((
                    name("Subscribe pull"),
                    request::subscribe(
                        &ctx,
                        &Subscription::Pull {
                            timeout_minutes: 30,
                            watermark,
                        },
                    ),
                ));
            }
            out.push((
                name("GetEvents"),
                request::get_events(&ctx, "f6bc657d", "AAAAAMAGAAAAAAAAAQ=="),
            ));
            out.push((name("Unsubscribe"), request::unsubscribe(&ctx, "f6bc657d")));
            out.push((
                name("GetUserOofSettings"),
                request::get_user_oof_settings(&ctx),
            ));
            out.push((
                name("GetItem meeting flags"),
                request::get_meeting_flags(&ctx, "AAMkAGI2TG93AAA="),
            ));
            out.push((
                name("UpdateItem end"),
                request::update_item_end(
                    &ctx,
                    &request::ItemRef {
                        id: "AAMkAGI2TG93AAA=".into(),
                        change_key: Some("DwAAABYAAAA".into()),
                    },
                    "2026-12-07T12:40:00Z".parse().expect("time"),
                ),
            ));
        }
    }
    out
}

#[test]
fn every_request_validates_against_microsofts_schema() {
    let Some(schema) = schema() else {
        return;
    };
    let requests = every_request();
    let mut parts = Vec::new();
    for (name, r) in &requests {
        // The envelope is well-formed XML as a whole.
        roxmltree::Document::parse(&r.envelope()).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, header) in r.headers.iter().enumerate() {
            parts.push((format!("{name} header {i}"), header.clone()));
        }
        parts.push((format!("{name} body"), r.body.clone()));
    }
    // Our push endpoint's answers too.
    for keep in [true, false] {
        let answer = request::send_notification_result(keep);
        let doc = roxmltree::Document::parse(&answer).expect("answer");
        let body = doc
            .descendants()
            .find(|n| n.tag_name().name() == "SendNotificationResult")
            .expect("result");
        parts.push((
            format!("SendNotificationResult {keep}"),
            answer[body.range()].to_owned(),
        ));
    }
    assert!(parts.len() > 150, "{} parts", parts.len());
    let failed = invalid(&schema, &parts);
    assert!(
        failed.is_empty(),
        "{} invalid:\n{}",
        failed.len(),
        failed.join("\n")
    );

    // The check can fail: elements out of order, an unknown property, a wrong version.
    let wrong = vec![
        (
            "swapped".to_owned(),
            format!(
                "<m:GetEvents xmlns:m=\"{}\"><m:Watermark>A</m:Watermark><m:SubscriptionId>s</m:SubscriptionId></m:GetEvents>",
                request::MESSAGES
            ),
        ),
        (
            "body".to_owned(),
            requests[1]
                .1
                .body
                .replace("calendar:IsAllDayEvent", "item:Bodyx"),
        ),
        (
            "version".to_owned(),
            requests[0].1.headers[0].replace("Exchange2007_SP1", "Exchange2003"),
        ),
    ];
    assert_eq!(invalid(&schema, &wrong).len(), 3);
    let _ = std::fs::remove_dir_all(schema);
}
