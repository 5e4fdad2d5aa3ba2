//! Active Directory and other LDAP directories as the source of an instance's users: the
//! members of groups, nested groups followed, read with paged searches over LDAPS or
//! StartTLS (never in the clear), signing in with a service account.
//!
//! Nested groups are followed breadth first with one `(memberOf=…)` search per group,
//! which Active Directory and OpenLDAP (with its `memberof` overlay) both answer; a
//! group reached twice is read once, a cycle ends. Every read is whole: LDAP has no
//! change feed both servers offer to an unprivileged account, and a whole read of
//! 10,000 people takes well under a second (README).

mod wire;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use kalsync_directory::{
    Directory, DirectoryError, GroupRef, LdapServer, MAX_PEOPLE, Person, Read,
};
use kalsync_outbound::OutboundPolicy;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, ResultEntry, Scope, SearchEntry};
use secrecy::{ExposeSecret as _, SecretString};

/// How many groups (the named and those nested in them) one read follows.
pub const MAX_GROUPS: usize = 2000;
/// The most bytes the server may send in one read (200,000 people at well under 1 KB
/// each).
pub const MAX_READ_BYTES: u64 = 256 * 1024 * 1024;
/// The longest one read (or check) may take: a slow or dripping server is cut off.
pub const READ_LIMIT: Duration = Duration::from_secs(120);
/// How many LDAP reads one node runs at once (the others wait): whatever servers
/// companies name, they share a node's memory and connections.
const READS_AT_ONCE: usize = 4;
static READS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(READS_AT_ONCE));
/// Entries asked for in one page.
const PAGE: i32 = 500;
/// The longest attribute value taken; a longer one counts as absent.
const MAX_VALUE: usize = 256;
/// Object classes that make an entry a group whose members are followed.
const GROUP_CLASSES: [&str; 3] = ["group", "groupofnames", "groupofuniquenames"];
/// Object classes that make an entry a person (Active Directory's computers are
/// `user`s too, and its contacts `person`s: both are left out).
const PERSON_CLASSES: [&str; 3] = ["person", "inetorgperson", "user"];
/// Object classes that are never a person.
const NOT_PEOPLE: [&str; 2] = ["computer", "contact"];

/// An LDAP directory, as an instance's settings name it, with its account's password.
#[derive(Clone)]
pub struct LdapDirectory {
    server: LdapServer,
    password: SecretString,
    outbound: OutboundPolicy,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl std::fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("url", &self.server.url().as_str())
            .field("bind_dn", &self.server.bind_dn())
            .finish_non_exhaustive()
    }
}

impl LdapDirectory {
    /// A reader for `server`, signing in with `password`, connecting only where
    /// `outbound` allows. The CA certificates are read here: a bad one is an error now.
    pub fn new(
        server: LdapServer,
        password: SecretString,
        outbound: OutboundPolicy,
    ) -> Result<Self, DirectoryError> {
        if password.expose_secret().is_empty() {
            // An empty password is an anonymous bind that most servers let succeed.
            return Err(DirectoryError::SignIn(
                "no password is set for the account".into(),
            ));
        }
        let tls = wire::tls_config(server.ca())?;
        Ok(LdapDirectory {
            server,
            password,
            outbound,
            tls,
            timeout: Duration::from_secs(30),
        })
    }

    /// How long one step (connecting, one answer) may take; 30 s unless set.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connection check: signs in and finds every group; what it found.
    pub async fn check(&self, groups: &[GroupRef]) -> Result<String, DirectoryError> {
        let groups = groups.to_vec();
        self.contained(move |this| async move {
            let mut session = this.sign_in().await?;
            let mut result = Ok(());
            for group in &groups {
                result = session.group_exists(group).await;
                if result.is_err() {
                    break;
                }
            }
            session.close().await;
            result.map(|()| {
                format!(
                    "signed in to {} as {} and found {} group(s)",
                    this.server.host(),
                    this.server.bind_dn(),
                    groups.len()
                )
            })
        })
        .await
    }

    /// Runs `work` on its own task, one of at most [`READS_AT_ONCE`] on the node, for at
    /// most [`READ_LIMIT`]: a panic in the LDAP library (it has `expect`s on what a
    /// server sends) is this read's error, not the caller's, and a server that drips
    /// its answer is cut off.
    async fn contained<T, F, Fut>(&self, work: F) -> Result<T, DirectoryError>
    where
        T: Send + 'static,
        F: FnOnce(LdapDirectory) -> Fut,
        Fut: std::future::Future<Output = Result<T, DirectoryError>> + Send + 'static,
    {
        let _turn = READS
            .acquire()
            .await
            .map_err(|e| DirectoryError::Unreachable(e.to_string()))?;
        let task = tokio::spawn(work(self.clone()));
        let abort = task.abort_handle();
        match tokio::time::timeout(READ_LIMIT, task).await {
            Ok(Ok(done)) => done,
            Ok(Err(_)) => Err(DirectoryError::Protocol(
                "the server sent an answer that cannot be read".into(),
            )),
            Err(_) => {
                abort.abort();
                Err(DirectoryError::Unreachable(format!(
                    "the read took longer than {} s and was stopped",
                    READ_LIMIT.as_secs()
                )))
            }
        }
    }

    /// Connects, secures and signs in.
    async fn sign_in(&self) -> Result<Session, DirectoryError> {
        let (stream, closed) = wire::open(
            &self.server,
            &self.outbound,
            self.tls.clone(),
            self.timeout,
            MAX_READ_BYTES,
        )
        .await?;
        let settings = LdapConnSettings::new().set_std_stream(ldap3::StdStream::Unix(stream));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, "ldapi:///")
            .await
            .map_err(|e| DirectoryError::Unreachable(e.to_string()))?;
        ldap3::drive!(conn);
        let mut session = Session {
            ldap,
            closed,
            timeout: self.timeout,
            base: self.server.base().to_owned(),
        };
        let bound = session
            .ldap
            .with_timeout(self.timeout)
            .simple_bind(self.server.bind_dn(), self.password.expose_secret())
            .await
            .map_err(|e| session.failed(e))?;
        match bound.rc {
            0 => Ok(session),
            49 => Err(DirectoryError::SignIn(format!(
                "the server does not accept {} with this password",
                self.server.bind_dn()
            ))),
            rc => Err(DirectoryError::SignIn(format!(
                "the server refused the sign-in (result {rc}: {})",
                clean(&bound.text)
            ))),
        }
    }
}

/// A signed-in connection.
struct Session {
    ldap: Ldap,
    closed: wire::Closed,
    timeout: Duration,
    base: String,
}

impl Session {
    /// An operation's failure, with the relay's reason when it closed the connection.
    fn failed(&self, e: LdapError) -> DirectoryError {
        match (self.closed.reason(), e) {
            (Some(why), _) => DirectoryError::Protocol(why),
            (None, LdapError::Timeout { .. }) => DirectoryError::Unreachable(format!(
                "no answer within {} s",
                self.timeout.as_secs()
            )),
            (None, e) => DirectoryError::Unreachable(e.to_string()),
        }
    }

    /// Whether `group` is an entry the account may read.
    async fn group_exists(&mut self, group: &GroupRef) -> Result<(), DirectoryError> {
        let found = self
            .ldap
            .with_timeout(self.timeout)
            .search(
                group.as_str(),
                Scope::Base,
                "(objectClass=*)",
                vec!["objectClass"],
            )
            .await
            .map_err(|e| self.failed(e))?;
        match found.1.rc {
            0 if !found.0.is_empty() => Ok(()),
            0 | 32 => Err(DirectoryError::GroupNotFound(group.to_string())),
            50 => Err(DirectoryError::Permission(format!(
                "the account may not read {group}"
            ))),
            34 => Err(DirectoryError::GroupNotFound(format!(
                "{group} (not a distinguished name)"
            ))),
            rc => Err(self.refused(rc, &found.1.text)),
        }
    }

    /// A search's refusal.
    fn refused(&self, rc: u32, text: &str) -> DirectoryError {
        match rc {
            50 => DirectoryError::Permission(format!(
                "the account may not search {} ({})",
                self.base,
                clean(text)
            )),
            32 => DirectoryError::Protocol(format!("the search base {} does not exist", self.base)),
            4 | 11 | 51 => DirectoryError::Protocol(format!(
                "the server limited the search (result {rc}: {}); paged results must be allowed to this account",
                clean(text)
            )),
            _ => DirectoryError::Protocol(format!("result {rc}: {}", clean(text))),
        }
    }

    /// The entries whose `memberOf` names `group`, page by page, each handed to `each`.
    async fn members(
        &mut self,
        group: &str,
        attributes: &[String],
        each: &mut (dyn FnMut(SearchEntry) -> Result<(), DirectoryError> + Send),
    ) -> Result<(), DirectoryError> {
        let filter = format!("(memberOf={})", ldap3::ldap_escape(group));
        let mut found = 0usize;
        let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE)),
        ];
        let base = self.base.clone();
        let timeout = self.timeout;
        let mut search = self
            .ldap
            .with_timeout(timeout)
            .streaming_search_with(
                adapters,
                &base,
                Scope::Subtree,
                &filter,
                attributes.to_vec(),
            )
            .await
            .map_err(|e| self.failed(e))?;
        loop {
            match search.next().await {
                Ok(Some(entry)) => {
                    found += 1;
                    each(entry_of(entry)?)?;
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = search.finish().await;
                    return Err(self.failed(e));
                }
            }
        }
        let done = search.finish().await;
        match done.rc {
            0 if found == 0 => self.no_member_of(group).await,
            0 => Ok(()),
            rc => Err(self.refused(rc, &done.text)),
        }
    }

    /// A group no entry names in `memberOf`: fine when it has no members; an error when
    /// it has (the server does not keep `memberOf` — OpenLDAP without its `memberof`
    /// overlay — or the account may not see them): read as empty, everyone would go.
    async fn no_member_of(&mut self, group: &str) -> Result<(), DirectoryError> {
        let has = self
            .ldap
            .with_timeout(self.timeout)
            .search(
                group,
                Scope::Base,
                "(|(member=*)(uniqueMember=*))",
                vec!["1.1"],
            )
            .await
            .map_err(|e| self.failed(e))?;
        if has.1.rc == 0 && !has.0.is_empty() {
            return Err(DirectoryError::Protocol(format!(
                "{group} has members, but no entry the account can read names it in memberOf (the server must keep memberOf: Active Directory does; OpenLDAP needs its memberof overlay)"
            )));
        }
        Ok(())
    }

    /// Signs out and closes (the relay ends with it).
    async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// An entry's attributes; an entry `ldap3` cannot read is the server's error, not a
/// panic (its parser panics on malformed entries).
fn entry_of(entry: ResultEntry) -> Result<SearchEntry, DirectoryError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        SearchEntry::construct(entry)
    }))
    .map_err(|_| DirectoryError::Protocol("an entry that cannot be read".into()))
}

/// A server's text, shortened and without control characters, for a message.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The attributes a read asks for: those that make a person, and the mapping's.
fn asked(mapped: &[String]) -> Vec<String> {
    let mut attrs: Vec<String> = [
        "objectClass",
        "objectGUID",
        "entryUUID",
        "displayName",
        "cn",
        "mail",
        "userAccountControl",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for a in mapped {
        if !attrs.iter().any(|x| x.eq_ignore_ascii_case(a)) {
            attrs.push(a.clone());
        }
    }
    attrs
}

/// An attribute's values, by its name in any case (servers answer in their own).
fn values<'a>(entry: &'a SearchEntry, name: &str) -> &'a [String] {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

/// An attribute's first value, when it is short enough to be one.
fn first(entry: &SearchEntry, name: &str) -> Option<String> {
    values(entry, name)
        .first()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && v.chars().count() <= MAX_VALUE)
        .map(str::to_owned)
}

/// What an entry is.
enum Kind {
    Group,
    Person,
    Other,
}

fn kind(entry: &SearchEntry) -> Kind {
    let classes: Vec<String> = values(entry, "objectClass")
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let has = |set: &[&str]| classes.iter().any(|c| set.contains(&c.as_str()));
    if has(&GROUP_CLASSES) {
        Kind::Group
    } else if has(&PERSON_CLASSES) && !has(&NOT_PEOPLE) {
        Kind::Person
    } else {
        Kind::Other
    }
}

/// Active Directory's `objectGUID` as written (its first three parts little-endian).
fn guid(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

/// A person entry as the directory function reads people.
fn person(entry: &SearchEntry, mapped: &[String]) -> Person {
    let object_guid = entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("objectGUID"))
        .and_then(|(_, v)| v.first().cloned())
        .or_else(|| {
            values(entry, "objectGUID")
                .first()
                .map(|s| s.as_bytes().to_vec())
        })
        .and_then(|b| guid(&b));
    let key = object_guid
        .or_else(|| first(entry, "entryUUID").map(|u| u.to_ascii_lowercase()))
        .unwrap_or_else(|| entry.dn.to_ascii_lowercase());
    // Active Directory: bit 2 of userAccountControl is ACCOUNTDISABLE.
    let enabled = first(entry, "userAccountControl")
        .and_then(|v| v.parse::<i64>().ok())
        .is_none_or(|uac| uac & 2 == 0);
    let attributes: BTreeMap<String, String> = mapped
        .iter()
        .filter_map(|a| first(entry, a).map(|v| (a.clone(), v)))
        .collect();
    Person {
        key,
        name: first(entry, "displayName").or_else(|| first(entry, "cn")),
        email: first(entry, "mail"),
        enabled,
        attributes,
    }
}

impl LdapDirectory {
    /// The whole read, on a signed-in session.
    async fn read_all(
        &self,
        session: &mut Session,
        groups: &[GroupRef],
        mapped: &[String],
    ) -> Result<Read, DirectoryError> {
        for group in groups {
            session.group_exists(group).await?;
        }
        let attrs = asked(mapped);
        let mut queue: VecDeque<String> = groups.iter().map(|g| g.as_str().to_owned()).collect();
        let mut seen: HashSet<String> = queue.iter().map(|g| g.to_ascii_lowercase()).collect();
        let mut people: HashMap<String, Person> = HashMap::new();
        let mut searches = groups.len() as u32;
        while let Some(group) = queue.pop_front() {
            searches += 1;
            let mut found = |entry: SearchEntry| {
                match kind(&entry) {
                    Kind::Group => {
                        if seen.insert(entry.dn.to_ascii_lowercase()) {
                            if seen.len() > MAX_GROUPS {
                                return Err(DirectoryError::Protocol(format!(
                                    "more than {MAX_GROUPS} nested groups"
                                )));
                            }
                            queue.push_back(entry.dn);
                        }
                    }
                    Kind::Person => {
                        let p = person(&entry, mapped);
                        people.entry(p.key.clone()).or_insert(p);
                        if people.len() > MAX_PEOPLE {
                            return Err(DirectoryError::TooLarge);
                        }
                    }
                    Kind::Other => {}
                }
                Ok(())
            };
            session.members(&group, &attrs, &mut found).await?;
        }
        let mut people: Vec<Person> = people.into_values().collect();
        people.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Read {
            people,
            state: serde_json::Value::Null,
            requests: searches,
            full: true,
        })
    }
}

#[async_trait::async_trait]
impl Directory for LdapDirectory {
    async fn read(
        &self,
        groups: &[GroupRef],
        attributes: &[String],
        _state: serde_json::Value,
    ) -> Result<Read, DirectoryError> {
        let (groups, attributes) = (groups.to_vec(), attributes.to_vec());
        self.contained(move |this| async move {
            let mut session = this.sign_in().await?;
            let read = this.read_all(&mut session, &groups, &attributes).await;
            session.close().await;
            read
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> SearchEntry {
        SearchEntry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn an_active_directory_entry_becomes_a_person() {
        let mut e = entry(
            "CN=Anna Berg,OU=Staff,DC=acme,DC=local",
            &[
                (
                    "objectClass",
                    &["top", "person", "organizationalPerson", "user"],
                ),
                ("displayName", &["Anna Berg"]),
                ("mail", &["anna@acme.example"]),
                ("userAccountControl", &["514"]),
                ("IPPHONE", &["1234"]),
            ],
        );
        e.bin_attrs.insert(
            "objectGUID".into(),
            vec![vec![
                0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff,
            ]],
        );
        assert!(matches!(kind(&e), Kind::Person));
        let p = person(&e, &["ipPhone".into()]);
        assert_eq!(p.key, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(p.name.as_deref(), Some("Anna Berg"));
        assert_eq!(p.email.as_deref(), Some("anna@acme.example"));
        assert!(!p.enabled, "514 has ACCOUNTDISABLE");
        assert_eq!(
            p.attributes.get("ipPhone").map(String::as_str),
            Some("1234")
        );
    }

    #[test]
    fn groups_computers_and_long_values_are_told_apart() {
        let g = entry("CN=Sales,DC=acme", &[("objectClass", &["top", "group"])]);
        assert!(matches!(kind(&g), Kind::Group));
        let c = entry(
            "CN=PC1,DC=acme",
            &[("objectClass", &["top", "person", "user", "computer"])],
        );
        assert!(matches!(kind(&c), Kind::Other));
        let contact = entry(
            "CN=Supplier,DC=acme",
            &[(
                "objectClass",
                &["top", "person", "organizationalPerson", "contact"],
            )],
        );
        assert!(
            matches!(kind(&contact), Kind::Other),
            "a contact is not a user"
        );
        let long = "1".repeat(MAX_VALUE + 1);
        let p = entry(
            "uid=b,DC=acme",
            &[
                ("objectClass", &["inetOrgPerson"]),
                ("cn", &["B"]),
                ("entryUUID", &["ABC-1"]),
                ("telephoneNumber", &[long.as_str()]),
            ],
        );
        let p = person(&p, &["telephoneNumber".into()]);
        assert_eq!(p.key, "abc-1");
        assert!(p.enabled);
        assert!(
            p.attributes.is_empty(),
            "a value too long to be one is absent"
        );
    }
}
