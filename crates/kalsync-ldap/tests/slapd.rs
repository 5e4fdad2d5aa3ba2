//! The LDAP directory against a real OpenLDAP: nested groups (with a cycle) read over
//! LDAPS and StartTLS in pages past the server's size limit, disabled accounts, binary
//! `objectGUID`s, changes seen by the next read; and the refusals — a wrong password, a
//! certificate not signed by the given CA, a missing group, an address the outbound
//! policy forbids, a server that refuses StartTLS (no password is sent in the clear).

mod support;

use kalsync_directory::{Directory, DirectoryError, GroupRef, LdapServer};
use kalsync_ldap::LdapDirectory;
use kalsync_outbound::OutboundPolicy;
use secrecy::SecretString;
use support::slapd::{self, Group, Person, READER, READER_PASSWORD};

fn group(cn: &str) -> GroupRef {
    GroupRef::parse(&slapd::group_dn(cn)).expect("group")
}

fn reader(url: &str, ca: Option<&str>, password: &str) -> LdapDirectory {
    let server = LdapServer::parse(url, slapd::BASE, READER, ca).expect("server");
    LdapDirectory::new(
        server,
        SecretString::from(password.to_owned()),
        OutboundPolicy::with_loopback(),
    )
    .expect("reader")
}

/// 1,200 people: sales (0–699) and support (500–1199) overlap, both in "all", which
/// support also contains (a cycle); one disabled, one without a mailbox, and a person
/// outside every group.
fn company() -> (Vec<Person>, Vec<Group>) {
    let mut people: Vec<Person> = (0..1200)
        .map(|i| {
            Person::new(
                &format!("p{i:04}"),
                &format!("Person {i}"),
                &format!("{}", 2000 + i),
            )
        })
        .collect();
    people[3].disabled = true;
    people[4].mail = None;
    people[5].department = Some("Sälj".into());
    people.push(Person::new("outsider", "Out Sider", "9999"));
    let uids = |r: std::ops::Range<usize>| r.map(|i| format!("p{i:04}")).collect::<Vec<_>>();
    let groups = vec![
        Group {
            cn: "sales".into(),
            people: uids(0..700),
            groups: vec![],
            unkept: false,
        },
        Group {
            cn: "support".into(),
            people: uids(500..1200),
            groups: vec!["all".into()],
            unkept: false,
        },
        Group {
            cn: "all".into(),
            people: vec![],
            groups: vec!["sales".into(), "support".into()],
            unkept: false,
        },
    ];
    (people, groups)
}

#[tokio::test]
async fn nested_groups_are_read_in_pages_over_ldaps_and_starttls() {
    let (people, groups) = company();
    let Some(server) = slapd::start(&people, &groups) else {
        return;
    };
    let attrs = vec!["ipPhone".to_owned(), "department".to_owned()];
    // Unpaged, the server stops at 500: the reads below must page.
    let sales = format!("(memberOf={})", slapd::group_dn("sales"));
    assert_eq!(server.unpaged_search(&sales).await, 4, "sizeLimitExceeded");
    for url in [&server.ldaps, &server.starttls] {
        let dir = reader(url, Some(&server.ca_pem), READER_PASSWORD);
        let read = dir
            .read(&[group("all")], &attrs, serde_json::Value::Null)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}\n{}", server.log()));
        assert_eq!(
            read.people.len(),
            1200,
            "{url}: everyone once, not the outsider"
        );
        assert!(read.full);
        let by_mail = |m: &str| {
            read.people
                .iter()
                .find(|p| p.email.as_deref() == Some(m))
                .unwrap_or_else(|| panic!("{m}"))
        };
        let p3 = by_mail("p0003@acme.test");
        assert!(!p3.enabled, "userAccountControl 514 is disabled");
        assert_eq!(
            p3.attributes.get("ipPhone").map(String::as_str),
            Some("2003")
        );
        let p5 = by_mail("p0005@acme.test");
        assert_eq!(
            p5.attributes.get("department").map(String::as_str),
            Some("Sälj")
        );
        assert_eq!(p5.name.as_deref(), Some("Person 5"));
        // The key is the binary objectGUID, as Active Directory has it.
        assert_eq!(p5.key.len(), 36, "{}", p5.key);
        assert!(
            read.people.iter().any(|p| p.email.is_none()),
            "p0004 is read, without mail"
        );
        assert!(
            read.people
                .iter()
                .all(|p| p.email.as_deref() != Some("outsider@acme.test"))
        );
    }
    // The same people from the groups named directly, and the check names them.
    let dir = reader(&server.ldaps, Some(&server.ca_pem), READER_PASSWORD);
    let read = dir
        .read(
            &[group("sales"), group("support")],
            &[],
            serde_json::Value::Null,
        )
        .await
        .expect("read");
    assert_eq!(read.people.len(), 1200);
    let checked = dir.check(&[group("sales")]).await.expect("check");
    assert!(checked.contains("1 group"), "{checked}");
}

#[tokio::test]
async fn the_next_read_sees_who_left_and_what_changed() {
    let (people, groups) = company();
    let Some(server) = slapd::start(
        &people[..20],
        &[Group {
            cn: "sales".into(),
            people: (0..20).map(|i| format!("p{i:04}")).collect(),
            groups: vec![],
            unkept: false,
        }],
    ) else {
        return;
    };
    let _ = groups;
    let dir = reader(&server.ldaps, Some(&server.ca_pem), READER_PASSWORD);
    let attrs = vec!["ipPhone".to_owned()];
    let first = dir
        .read(&[group("sales")], &attrs, serde_json::Value::Null)
        .await
        .expect("first");
    assert_eq!(first.people.len(), 20);
    server.remove_member("sales", "p0007").await;
    server.set("p0008", "ipPhone", "4321").await;
    let next = dir
        .read(&[group("sales")], &attrs, first.state)
        .await
        .expect("next");
    assert_eq!(next.people.len(), 19);
    assert!(
        next.people
            .iter()
            .all(|p| p.email.as_deref() != Some("p0007@acme.test"))
    );
    let p8 = next
        .people
        .iter()
        .find(|p| p.email.as_deref() == Some("p0008@acme.test"))
        .expect("p0008");
    assert_eq!(
        p8.attributes.get("ipPhone").map(String::as_str),
        Some("4321")
    );
}

#[tokio::test]
async fn refusals_say_what_is_wrong() {
    let people = vec![Person::new("anna", "Anna", "1234")];
    let groups = vec![Group {
        cn: "sales".into(),
        people: vec!["anna".into()],
        groups: vec![],
        unkept: false,
    }];
    let Some(server) = slapd::start(&people, &groups) else {
        return;
    };
    let read = |dir: LdapDirectory, g: GroupRef| async move {
        dir.read(&[g], &[], serde_json::Value::Null).await
    };
    // A wrong password.
    let e = read(
        reader(&server.ldaps, Some(&server.ca_pem), "wrong"),
        group("sales"),
    )
    .await
    .expect_err("wrong password");
    assert!(matches!(e, DirectoryError::SignIn(_)), "{e}");
    // The server's certificate is not signed by a CA it was given (the public ones only).
    for url in [&server.ldaps, &server.starttls] {
        let e = read(reader(url, None, READER_PASSWORD), group("sales"))
            .await
            .expect_err("untrusted");
        assert!(matches!(e, DirectoryError::Certificate(_)), "{url}: {e}");
    }
    // A group that does not exist.
    let e = read(
        reader(&server.ldaps, Some(&server.ca_pem), READER_PASSWORD),
        group("nobody"),
    )
    .await
    .expect_err("missing group");
    assert!(
        matches!(e, DirectoryError::GroupNotFound(ref g) if g.contains("cn=nobody")),
        "{e}"
    );
    // An address the outbound policy forbids is not connected to.
    let server_settings =
        LdapServer::parse(&server.ldaps, slapd::BASE, READER, Some(&server.ca_pem)).expect("s");
    let strict = LdapDirectory::new(
        server_settings,
        SecretString::from(READER_PASSWORD.to_owned()),
        OutboundPolicy::new(vec![]),
    )
    .expect("reader");
    let e = read(strict, group("sales")).await.expect_err("forbidden");
    assert!(matches!(e, DirectoryError::Unreachable(_)), "{e}");
    // No password: refused before anything is sent (an anonymous bind would succeed).
    let no_password = LdapDirectory::new(
        LdapServer::parse(&server.ldaps, slapd::BASE, READER, None).expect("s"),
        SecretString::from(String::new()),
        OutboundPolicy::with_loopback(),
    );
    assert!(matches!(no_password, Err(DirectoryError::SignIn(_))));
}

#[tokio::test]
async fn a_group_whose_members_carry_no_member_of_is_an_error_not_an_empty_group() {
    // OpenLDAP without its memberof overlay: the group has members, and no entry names
    // it in memberOf. Read as empty, every user would be removed.
    let people = vec![Person::new("anna", "Anna", "1234")];
    let groups = vec![
        Group {
            cn: "legacy".into(),
            people: vec!["anna".into()],
            groups: vec![],
            unkept: true,
        },
        Group {
            cn: "empty".into(),
            people: vec![],
            groups: vec!["legacy".into()],
            unkept: true,
        },
    ];
    let Some(server) = slapd::start(&people, &groups) else {
        return;
    };
    let dir = reader(&server.ldaps, Some(&server.ca_pem), READER_PASSWORD);
    let e = dir
        .read(&[group("legacy")], &[], serde_json::Value::Null)
        .await
        .expect_err("not kept");
    assert!(e.to_string().contains("memberOf"), "{e}");
}

#[tokio::test]
async fn a_server_that_refuses_starttls_is_sent_no_password() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let fake = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await.expect("request");
        // unavailable (52): the server will not do TLS.
        s.write_all(b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x34\x04\x00\x04\x00")
            .await
            .expect("answer");
        let mut rest = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(2), s.read_to_end(&mut rest)).await;
        (buf[..n].to_vec(), rest)
    });
    let dir = reader(&format!("ldap://127.0.0.1:{port}"), None, "the-password");
    let e = dir
        .read(&[group("sales")], &[], serde_json::Value::Null)
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("StartTLS"), "{e}");
    let (first, rest) = fake.await.expect("fake server");
    assert!(first.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20037"));
    assert!(
        !String::from_utf8_lossy(&rest).contains("the-password"),
        "nothing more is sent"
    );
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn an_answer_the_ldap_library_panics_on_is_the_reads_error() {
    // An LDAPS server whose bind answer carries a diagnostic message that is not UTF-8:
    // the LDAP library `expect`s it to be. The panic is this read's error, not the
    // caller's (the worker every company's directories run on).
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
    )
    .expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut tls = acceptor.accept(tcp).await.expect("tls");
        let mut buf = vec![0u8; 1024];
        let _ = tls.read(&mut buf).await;
        let _ = tls
            .write_all(b"\x30\x0f\x02\x01\x01\x61\x0a\x0a\x01\x00\x04\x00\x04\x03\xff\xfe\xfd")
            .await;
        let _ = tls.flush().await;
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    });
    let dir = reader(
        &format!("ldaps://127.0.0.1:{port}"),
        Some(&cert.pem()),
        READER_PASSWORD,
    );
    let e = dir
        .read(&[group("sales")], &[], serde_json::Value::Null)
        .await
        .expect_err("unreadable");
    assert!(matches!(e, DirectoryError::Protocol(_)), "{e}");
}
