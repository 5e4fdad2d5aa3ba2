//! The PBX's own directory: which mailboxes have a subscription on the company's PBX and
//! their extensions — read from a CSV the admin uploads or a JSON list the PBX serves.
//! Where a company has one, only people in it may be added (by hand, by CSV or by the
//! directory), and an addition without an extension of its own takes the PBX's.

use std::collections::HashMap;

use jiff::SignedDuration;
use kalsync_core::{EmailAddress, Extension};
use serde::{Deserialize, Serialize};

/// How a fetched list is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PbxAuth {
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// Signed as Standard Webhooks sign (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature` over the empty body) with a `whsec_…` secret.
    StandardWebhooks,
}

/// Where a company's PBX directory comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PbxSource {
    /// Uploaded by an admin (CSV or JSON).
    Upload,
    /// Fetched from the PBX's URL (JSON) on a schedule.
    Url {
        /// HTTPS (plain HTTP only to a loopback address).
        #[serde(deserialize_with = "fetch_url")]
        url: url::Url,
        /// How the request proves it is the service's.
        auth: PbxAuth,
        /// How often (at least 15 minutes; `"1h"`, `"1d"`).
        #[serde(with = "every_text", default = "default_every")]
        every: SignedDuration,
    },
}

/// The shortest time between two fetches.
pub const MIN_PBX_EVERY: SignedDuration = SignedDuration::from_mins(15);
/// The longest time between two fetches.
pub const MAX_PBX_EVERY: SignedDuration = SignedDuration::from_hours(24 * 7);

fn default_every() -> SignedDuration {
    SignedDuration::from_hours(1)
}

fn fetch_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    use serde::de::Error as _;
    let text = String::deserialize(d)?;
    let url = url::Url::parse(text.trim()).map_err(|_| {
        D::Error::custom("url: not an address like https://pbx.example/subscriptions")
    })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(D::Error::custom(
                "url: must be https:// (the secret goes with it)",
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(D::Error::custom(
            "url: no user or password in the address (the secret is a field of its own)",
        ));
    }
    Ok(url)
}

mod every_text {
    use jiff::SignedDuration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &SignedDuration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::settings::written(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SignedDuration, D::Error> {
        use serde::de::Error as _;
        let text = String::deserialize(d)?;
        let every = crate::settings::duration("every", &text).map_err(D::Error::custom)?;
        if every < super::MIN_PBX_EVERY {
            return Err(D::Error::custom(
                "every: at least 15 minutes between fetches",
            ));
        }
        Ok(every)
    }
}

impl PbxSource {
    /// Whether a secret given for `self` may go with `other` (the same address).
    pub fn same_destination(&self, other: &PbxSource) -> bool {
        match (self, other) {
            // The same address, asked the same way: a signing key is never sent as a
            // bearer token.
            (
                PbxSource::Url {
                    url: a, auth: x, ..
                },
                PbxSource::Url {
                    url: b, auth: y, ..
                },
            ) => a == b && x == y,
            _ => false,
        }
    }
}

/// The most subscriptions one list may hold.
pub const MAX_PBX_ENTRIES: usize = 200_000;
/// The largest list accepted (CSV or JSON), in bytes.
pub const MAX_PBX_BYTES: usize = 16 * 1024 * 1024;

/// One subscription on the PBX.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PbxEntry {
    /// The mailbox the subscription belongs to.
    pub email: EmailAddress,
    /// Its extension.
    pub extension: Extension,
    /// The name the PBX shows, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A PBX's subscriptions: one per mailbox, one mailbox per extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<PbxEntry>", into = "Vec<PbxEntry>")]
pub struct PbxList {
    entries: Vec<PbxEntry>,
    #[serde(skip)]
    by_email: HashMap<String, usize>,
}

impl PbxList {
    /// A list of `entries`; two with one mailbox or one extension are refused, naming
    /// them.
    pub fn new(entries: Vec<PbxEntry>) -> Result<PbxList, String> {
        if entries.len() > MAX_PBX_ENTRIES {
            return Err(format!(
                "at most {MAX_PBX_ENTRIES} subscriptions ({} given)",
                entries.len()
            ));
        }
        let mut by_email = HashMap::with_capacity(entries.len());
        let mut by_extension: HashMap<&str, &str> = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if by_email.insert(e.email.as_str().to_owned(), i).is_some() {
                return Err(format!("{} is listed twice", e.email));
            }
            if let Some(other) = by_extension.insert(e.extension.as_str(), e.email.as_str()) {
                return Err(format!(
                    "extension {} is listed for both {other} and {}",
                    e.extension, e.email
                ));
            }
        }
        Ok(PbxList { entries, by_email })
    }

    /// The subscription of `email`.
    pub fn get(&self, email: &EmailAddress) -> Option<&PbxEntry> {
        self.by_email
            .get(email.as_str())
            .and_then(|i| self.entries.get(*i))
    }

    /// Every subscription.
    pub fn entries(&self) -> &[PbxEntry] {
        &self.entries
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A CSV with a header naming its columns — `email` (or `e-post`, `mail`),
    /// `extension` (or `anknytning`, `ext`) and optionally `name` (`namn`) — separated
    /// by commas or semicolons (as Excel writes it in Sweden). A bad row is refused with
    /// its line: the list is the PBX's truth, so it is taken whole or not at all.
    pub fn from_csv(text: &str) -> Result<PbxList, String> {
        if text.len() > MAX_PBX_BYTES {
            return Err(format!("at most {} MB", MAX_PBX_BYTES / (1024 * 1024)));
        }
        let first = text.lines().next().unwrap_or_default();
        let delimiter = if first.matches(';').count() > first.matches(',').count() {
            b';'
        } else {
            b','
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| format!("the header: {e}"))?
            .clone();
        let column = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        let email = column(&["email", "e-mail", "e-post", "epost", "mail"])
            .ok_or("the header names no email column (email, e-post)")?;
        let extension = column(&["extension", "anknytning", "ext", "anknytningsnummer"])
            .ok_or("the header names no extension column (extension, anknytning)")?;
        let name = column(&["name", "namn", "displayname"]);
        let mut entries = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| format!("not CSV: {e}"))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            if entries.len() >= MAX_PBX_ENTRIES {
                return Err(format!("at most {MAX_PBX_ENTRIES} subscriptions"));
            }
            entries.push(
                entry(
                    record.get(email).unwrap_or_default(),
                    record.get(extension).unwrap_or_default(),
                    name.and_then(|n| record.get(n)),
                )
                .map_err(|e| format!("line {line}: {e}"))?,
            );
        }
        PbxList::new(entries)
    }

    /// A JSON list, `[{"email": …, "extension": …, "name": …}, …]`, or an object holding
    /// it as `subscriptions` (or `users`).
    pub fn from_json(text: &str) -> Result<PbxList, String> {
        if text.len() > MAX_PBX_BYTES {
            return Err(format!("at most {} MB", MAX_PBX_BYTES / (1024 * 1024)));
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(alias = "mail", alias = "e-post")]
            email: String,
            #[serde(alias = "ext", alias = "anknytning")]
            extension: serde_json::Value,
            #[serde(default)]
            name: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Body {
            List(Vec<Raw>),
            Wrapped {
                #[serde(alias = "users")]
                subscriptions: Vec<Raw>,
            },
        }
        let body: Body =
            serde_json::from_str(text).map_err(|e| format!("not the JSON list: {e}"))?;
        let (Body::List(raw) | Body::Wrapped { subscriptions: raw }) = body;
        if raw.len() > MAX_PBX_ENTRIES {
            return Err(format!("at most {MAX_PBX_ENTRIES} subscriptions"));
        }
        let entries = raw
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let ext = match &r.extension {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                entry(&r.email, &ext, r.name.as_deref())
                    .map_err(|e| format!("subscription {}: {e}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        PbxList::new(entries)
    }
}

/// One subscription from its fields.
fn entry(email: &str, extension: &str, name: Option<&str>) -> Result<PbxEntry, String> {
    let email = EmailAddress::parse(email).map_err(|e| format!("`{email}`: {e}"))?;
    let extension = Extension::parse(extension)
        .map_err(|e| format!("{email}: extension `{extension}`: {e}"))?;
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().filter(|c| !c.is_control()).take(256).collect());
    Ok(PbxEntry {
        email,
        extension,
        name,
    })
}

impl TryFrom<Vec<PbxEntry>> for PbxList {
    type Error = String;
    fn try_from(entries: Vec<PbxEntry>) -> Result<Self, String> {
        PbxList::new(entries)
    }
}

impl From<PbxList> for Vec<PbxEntry> {
    fn from(list: PbxList) -> Self {
        list.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("mail")
    }

    #[test]
    fn a_swedish_excel_csv_and_a_json_list_are_read() {
        let csv = "\u{feff}Namn;E-post;Anknytning\nAnna Berg;Anna@Acme.example;201\n;bo@acme.example; 202 \n\n";
        let list = PbxList::from_csv(csv).expect("csv");
        assert_eq!(list.len(), 2);
        let anna = list.get(&mail("anna@acme.example")).expect("anna");
        assert_eq!(anna.extension.as_str(), "201");
        assert_eq!(anna.name.as_deref(), Some("Anna Berg"));
        assert!(
            list.get(&mail("bo@acme.example"))
                .is_some_and(|b| b.name.is_none())
        );
        let json = r#"{"subscriptions":[{"email":"anna@acme.example","extension":201},{"mail":"bo@acme.example","ext":"202","name":"Bo"}]}"#;
        let from_json = PbxList::from_json(json).expect("json");
        assert_eq!(from_json.len(), 2);
        assert_eq!(
            PbxList::from_json(r#"[{"email":"c@acme.example","extension":"203"}]"#)
                .expect("bare list")
                .len(),
            1
        );
        // Stored and read back.
        let again: PbxList =
            serde_json::from_str(&serde_json::to_string(&list).expect("json")).expect("back");
        assert_eq!(
            again.get(&mail("bo@acme.example")),
            list.get(&mail("bo@acme.example"))
        );
    }

    #[test]
    fn a_fetched_list_is_asked_for_over_https_only() {
        let ok: PbxSource = serde_json::from_value(serde_json::json!({
            "kind": "url", "url": "https://pbx.example/api/subscriptions", "auth": "bearer",
        }))
        .expect("url");
        assert!(
            matches!(ok, PbxSource::Url { every, .. } if every == SignedDuration::from_hours(1))
        );
        let back: PbxSource =
            serde_json::from_value(serde_json::to_value(&ok).expect("json")).expect("again");
        assert_eq!(back, ok);
        for (json, why) in [
            (
                serde_json::json!({"kind": "url", "url": "http://pbx.example/", "auth": "bearer"}),
                "https",
            ),
            (
                serde_json::json!({"kind": "url", "url": "https://u:p@pbx.example/", "auth": "bearer"}),
                "no user",
            ),
            (
                serde_json::json!({"kind": "url", "url": "https://pbx.example/", "auth": "bearer", "every": "1m"}),
                "15 minutes",
            ),
            (
                serde_json::json!({"kind": "url", "url": "https://pbx.example/", "auth": "basic"}),
                "basic",
            ),
            (serde_json::json!({"kind": "ftp"}), "ftp"),
        ] {
            let e = serde_json::from_value::<PbxSource>(json.clone()).expect_err("refused");
            assert!(e.to_string().contains(why), "{json}: {e}");
        }
        let local: PbxSource = serde_json::from_value(serde_json::json!({
            "kind": "url", "url": "http://127.0.0.1:8080/subs", "auth": "standard_webhooks",
        }))
        .expect("loopback");
        assert!(!local.same_destination(&ok));
        assert!(ok.same_destination(&back));
        let signed: PbxSource = serde_json::from_value(serde_json::json!({
            "kind": "url", "url": "https://pbx.example/api/subscriptions", "auth": "standard_webhooks",
        }))
        .expect("signed");
        assert!(
            !signed.same_destination(&ok),
            "a signing key is not kept as a bearer token"
        );
        assert!(!PbxSource::Upload.same_destination(&PbxSource::Upload));
    }

    #[test]
    fn a_bad_list_is_refused_whole_naming_the_line() {
        for (csv, why) in [
            ("email\nanna@acme.example\n", "no extension column"),
            ("extension\n201\n", "no email column"),
            (
                "email,extension\nanna@acme.example,201\nnot-mail,202\n",
                "line 3",
            ),
            ("email,extension\nanna@acme.example,20x1\n", "extension"),
            (
                "email,extension\nanna@acme.example,201\nANNA@acme.example,202\n",
                "listed twice",
            ),
            (
                "email,extension\nanna@acme.example,201\nbo@acme.example,201\n",
                "both",
            ),
        ] {
            let e = PbxList::from_csv(csv).expect_err(csv);
            assert!(e.contains(why), "{csv}: {e}");
        }
        for json in [
            "{",
            r#"{"x":[]}"#,
            r#"[{"email":"a@b.example","extension":true}]"#,
        ] {
            assert!(PbxList::from_json(json).is_err(), "{json}");
        }
    }
}
