//! A real OpenLDAP server (`slapd`) on loopback ports for the LDAP directory's tests and
//! benchmark: LDAPS and StartTLS with a CA of its own, the `memberof` overlay (as Active
//! Directory keeps `memberOf`), Active Directory's `userAccountControl`, `objectGUID`,
//! `ipPhone` and `department` in a small schema, a size limit of 500 (so reads must
//! page) and a service account that may read. Loaded with `slapadd` before it starts;
//! changed while it runs over plain LDAP on loopback as its administrator.
//! `slapd` not installed: skipped with a message, except in CI, where it must be.

#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The directory's suffix.
pub const BASE: &str = "dc=acme,dc=test";
/// The service account the service signs in with.
pub const READER: &str = "cn=kalsync,ou=service,dc=acme,dc=test";
/// Its password.
pub const READER_PASSWORD: &str = "reader-s3cret";
const ADMIN: &str = "cn=admin,dc=acme,dc=test";
const ADMIN_PASSWORD: &str = "admin-s3cret";

/// A person in the test directory.
#[derive(Clone, Debug)]
pub struct Person {
    pub uid: String,
    pub name: String,
    pub mail: Option<String>,
    pub ip_phone: Option<String>,
    pub department: Option<String>,
    pub disabled: bool,
}

impl Person {
    /// A person with a mailbox at acme.test and an extension.
    pub fn new(uid: &str, name: &str, ext: &str) -> Person {
        Person {
            uid: uid.into(),
            name: name.into(),
            mail: Some(format!("{uid}@acme.test")),
            ip_phone: Some(ext.into()),
            department: None,
            disabled: false,
        }
    }

    pub fn dn(&self) -> String {
        format!("uid={},ou=people,{BASE}", self.uid)
    }

    /// The `objectGUID` the test gives it: 16 bytes from its uid.
    pub fn guid_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        for (i, c) in self.uid.bytes().enumerate() {
            b[i % 16] ^= c.wrapping_add(i as u8);
        }
        b[15] ^= self.uid.len() as u8;
        b
    }
}

/// A group: its members are people (by uid) and groups (by cn).
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub cn: String,
    pub people: Vec<String>,
    pub groups: Vec<String>,
    /// Its members carry no `memberOf` for it (a server without the overlay).
    pub unkept: bool,
}

pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},ou=groups,{BASE}")
}

/// A running slapd.
pub struct Slapd {
    child: Child,
    dir: PathBuf,
    /// `ldaps://127.0.0.1:…`
    pub ldaps: String,
    /// `ldap://127.0.0.1:…` (StartTLS).
    pub starttls: String,
    /// The CA that signed its certificate (PEM).
    pub ca_pem: String,
    port: u16,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

const AD_SCHEMA: &str = r#"
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.721 NAME 'ipPhone'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.90.1 NAME 'kalsyncTestUser' SUP top AUXILIARY
  MAY ( userAccountControl $ objectGUID $ ipPhone $ department ) )
"#;

/// The CA and the server's certificate and key (PEM), for 127.0.0.1 and localhost.
fn certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Acme Test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("server key");
    let server = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("server params")
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    (ca_cert.pem(), server.pem(), key.serialize_pem())
}

fn ldif_value(out: &mut String, attr: &str, value: &str) {
    let _ = writeln!(out, "{attr}: {value}");
}

/// The whole directory as LDIF for `slapadd`, `memberOf` written out as the overlay
/// would keep it (slapadd runs no overlays).
pub fn ldif(people: &[Person], groups: &[Group]) -> String {
    let mut member_of: std::collections::HashMap<String, Vec<String>> = Default::default();
    for g in groups.iter().filter(|g| !g.unkept) {
        for p in &g.people {
            member_of
                .entry(format!("uid={p},ou=people,{BASE}"))
                .or_default()
                .push(group_dn(&g.cn));
        }
        for n in &g.groups {
            member_of
                .entry(group_dn(n))
                .or_default()
                .push(group_dn(&g.cn));
        }
    }
    let mut out = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Acme\ndc: acme\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: ou=service,{BASE}\nobjectClass: organizationalUnit\nou: service\n\n\
         dn: {READER}\nobjectClass: person\ncn: kalsync\nsn: kalsync\nuserPassword: {READER_PASSWORD}\n\n"
    );
    for p in people {
        let dn = p.dn();
        let _ = writeln!(
            out,
            "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: kalsyncTestUser\nuid: {}\ncn: {}\nsn: {}\ndisplayName: {}",
            p.uid, p.name, p.name, p.name
        );
        if let Some(m) = &p.mail {
            ldif_value(&mut out, "mail", m);
        }
        if let Some(x) = &p.ip_phone {
            ldif_value(&mut out, "ipPhone", x);
        }
        if let Some(d) = &p.department {
            ldif_value(&mut out, "department", d);
        }
        ldif_value(
            &mut out,
            "userAccountControl",
            if p.disabled { "514" } else { "512" },
        );
        {
            use base64::Engine as _;
            let guid = base64::engine::general_purpose::STANDARD.encode(p.guid_bytes());
            let _ = writeln!(out, "objectGUID:: {guid}");
        }
        for g in member_of.get(&dn).into_iter().flatten() {
            ldif_value(&mut out, "memberOf", g);
        }
        out.push('\n');
    }
    for g in groups {
        let dn = group_dn(&g.cn);
        let _ = writeln!(out, "dn: {dn}\nobjectClass: groupOfNames\ncn: {}", g.cn);
        let members: Vec<String> = g
            .people
            .iter()
            .map(|p| format!("uid={p},ou=people,{BASE}"))
            .chain(g.groups.iter().map(|n| group_dn(n)))
            .collect();
        // groupOfNames must have a member; an empty group names its own (as tools do).
        if members.is_empty() {
            ldif_value(&mut out, "member", "");
        }
        for m in members {
            ldif_value(&mut out, "member", &m);
        }
        for parent in member_of.get(&dn).into_iter().flatten() {
            ldif_value(&mut out, "memberOf", parent);
        }
        out.push('\n');
    }
    out
}

/// Starts slapd with `people` and `groups` loaded; `None` (skipped) where slapd is not
/// installed, outside CI.
pub fn start(people: &[Person], groups: &[Group]) -> Option<Slapd> {
    let binary = ["/usr/sbin/slapd", "/usr/local/sbin/slapd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(binary) = binary else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("slapd is not installed; .ci/run installs it");
        }
        eprintln!("SKIPPED: slapd is not installed (apt-get install slapd ldap-utils)");
        return None;
    };
    let slapadd = binary.with_file_name("slapadd");
    let dir = std::env::temp_dir().join(format!(
        "kalsync-slapd-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(dir.join("db")).expect("dir");
    let (ca, cert, key) = certificates();
    for (name, text) in [
        ("ca.pem", ca.as_str()),
        ("server.pem", cert.as_str()),
        ("server.key", key.as_str()),
        ("ad.schema", AD_SCHEMA),
    ] {
        std::fs::write(dir.join(name), text).expect("write");
    }
    let d = dir.display();
    let conf = format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {d}/ad.schema
pidfile {d}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited
database mdb
maxsize 4294967296
suffix "{BASE}"
rootdn "{ADMIN}"
rootpw {ADMIN_PASSWORD}
directory {d}/db
index objectClass eq
index member,memberOf eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"#
    );
    let conf_path = dir.join("slapd.conf");
    std::fs::write(&conf_path, conf).expect("conf");
    let ldif_path = dir.join("data.ldif");
    std::fs::write(&ldif_path, ldif(people, groups)).expect("ldif");
    let added = Command::new(&slapadd)
        .arg("-q")
        .arg("-f")
        .arg(&conf_path)
        .arg("-l")
        .arg(&ldif_path)
        .output()
        .expect("slapadd runs");
    assert!(
        added.status.success(),
        "slapadd: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let (plain, tls) = (free_port(), free_port());
    let child = Command::new(&binary)
        .arg("-f")
        .arg(&conf_path)
        .arg("-h")
        .arg(format!(
            "ldap://127.0.0.1:{plain}/ ldaps://127.0.0.1:{tls}/"
        ))
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("slapd.log")).expect("log"),
        ))
        .spawn()
        .expect("slapd starts");
    let slapd = Slapd {
        child,
        dir,
        ldaps: format!("ldaps://127.0.0.1:{tls}"),
        starttls: format!("ldap://127.0.0.1:{plain}"),
        ca_pem: ca,
        port: plain,
    };
    for _ in 0..100 {
        let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
        if up(plain) && up(tls) {
            return Some(slapd);
        }
        // slapd is another process: its start takes real time.
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("slapd did not start: {}", slapd.log());
}

impl Slapd {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default()
    }

    /// The directory for its own files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Signs in as the administrator over plain LDAP (loopback only).
    async fn admin(&self) -> ldap3::Ldap {
        let (conn, mut ldap) =
            ldap3::LdapConnAsync::new(&format!("ldap://127.0.0.1:{}", self.port))
                .await
                .expect("connect");
        ldap3::drive!(conn);
        ldap.simple_bind(ADMIN, ADMIN_PASSWORD)
            .await
            .expect("bind")
            .success()
            .expect("admin");
        ldap
    }

    /// The result code of a search as the service account without paging (4, size
    /// limit exceeded, past 500 entries: reads must page).
    pub async fn unpaged_search(&self, filter: &str) -> u32 {
        let (conn, mut ldap) =
            ldap3::LdapConnAsync::new(&format!("ldap://127.0.0.1:{}", self.port))
                .await
                .expect("connect");
        ldap3::drive!(conn);
        ldap.simple_bind(READER, READER_PASSWORD)
            .await
            .expect("bind")
            .success()
            .expect("reader");
        let rc = ldap
            .search(BASE, ldap3::Scope::Subtree, filter, vec!["dn"])
            .await
            .map(|r| r.1.rc)
            .expect("search");
        let _ = ldap.unbind().await;
        rc
    }

    /// Removes a person from a group (the overlay updates their `memberOf`).
    pub async fn remove_member(&self, group: &str, uid: &str) {
        let mut ldap = self.admin().await;
        let member = format!("uid={uid},ou=people,{BASE}");
        ldap.modify(
            &group_dn(group),
            vec![ldap3::Mod::Delete("member", [member.as_str()].into())],
        )
        .await
        .expect("modify")
        .success()
        .expect("member removed");
        let _ = ldap.unbind().await;
    }

    /// Sets a person's attribute.
    pub async fn set(&self, uid: &str, attr: &str, value: &str) {
        let mut ldap = self.admin().await;
        ldap.modify(
            &format!("uid={uid},ou=people,{BASE}"),
            vec![ldap3::Mod::Replace(attr, [value].into())],
        )
        .await
        .expect("modify")
        .success()
        .expect("attribute set");
        let _ = ldap.unbind().await;
    }
}
