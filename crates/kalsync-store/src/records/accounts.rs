//! Who signs in and what they may do: roles and grants, admin accounts, the Entra ID
//! people and tenants that sign in as them, sessions and API tokens.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{AccountId, ApiTokenId, CompanyId};

/// What an account or API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The operator's staff: every company, its targets and accounts.
    Operator,
    /// A company's IT admin: that company's instances, users and accounts.
    CompanyAdmin,
    /// Read only within one company (a receptionist, a console).
    Reader,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::CompanyAdmin => "company_admin",
            Role::Reader => "reader",
        }
    }

    /// A stored or typed name.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text.trim() {
            "operator" => Ok(Role::Operator),
            "company_admin" => Ok(Role::CompanyAdmin),
            "reader" => Ok(Role::Reader),
            other => Err(format!(
                "role `{other}` (expected operator, company_admin or reader)"
            )),
        }
    }
}

/// Whom an account or token acts for: the operator (every company) or one company.
/// An operator account belongs to no company; every other role to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// The company (none for the operator).
    pub company: Option<CompanyId>,
}

impl Grant {
    /// The operator's grant.
    pub fn operator() -> Grant {
        Grant {
            role: Role::Operator,
            company: None,
        }
    }

    /// A role within `company`; the operator role is not one.
    pub fn company(role: Role, company: CompanyId) -> Result<Grant, String> {
        if role == Role::Operator {
            return Err("an operator account belongs to no company".into());
        }
        Ok(Grant {
            role,
            company: Some(company),
        })
    }

    /// Whether it may see `company`'s data.
    pub fn sees(&self, company: CompanyId) -> bool {
        self.role == Role::Operator || self.company == Some(company)
    }

    /// Whether it may change `company`'s data.
    pub fn manages(&self, company: CompanyId) -> bool {
        self.role == Role::Operator
            || (self.role == Role::CompanyAdmin && self.company == Some(company))
    }
}

/// Someone who signs in to the admin UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Id.
    pub id: AccountId,
    /// The sign-in name, lower case.
    pub email: String,
    /// Shown name.
    pub display_name: Option<String>,
    /// What it may do, and where.
    pub grant: Grant,
    /// Its argon2 password hash (PHC string); never shown.
    #[serde(skip)]
    pub password_hash: String,
    /// Preferred UI language (`sv`, `en`), if chosen.
    pub language: Option<String>,
    /// Created.
    pub created: Timestamp,
    /// The Microsoft (Entra ID) person who signs in as it, if one does.
    pub entra: Option<EntraId>,
}

/// A person in Entra ID: their tenant and object id (`tid`, `oid` of their sign-in
/// token). People are matched by these, never by e-mail: a name can be changed by its
/// owner, an object id cannot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EntraId {
    /// The tenant.
    pub tenant: kalsync_core::TenantId,
    /// The object id, lower case.
    pub object: String,
}

/// A tenant a company proved it owns (its admin signed in there and granted the
/// operator's app access): each tenant belongs to one company at most, and who of its
/// people signs in as what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyTenant {
    /// The tenant.
    pub tenant: kalsync_core::TenantId,
    /// Whose.
    pub company: CompanyId,
    /// App role values or group ids whose people sign in as the company's admins.
    pub admins: Vec<String>,
    /// App role values or group ids whose people sign in as readers.
    pub readers: Vec<String>,
    /// When it was proven.
    pub proven: Timestamp,
}

impl CompanyTenant {
    /// The app roles a newly connected tenant signs in with.
    pub fn with_default_roles(
        tenant: kalsync_core::TenantId,
        company: CompanyId,
        proven: Timestamp,
    ) -> CompanyTenant {
        CompanyTenant {
            tenant,
            company,
            admins: vec!["Kalsync.Admin".into()],
            readers: vec!["Kalsync.Reader".into()],
            proven,
        }
    }

    /// The role someone with these app roles and groups has in the company: admin
    /// before reader; none when nothing matches.
    pub fn role_of(&self, roles: &[String], groups: &[String]) -> Option<Role> {
        let matches = |wanted: &[String]| {
            wanted.iter().any(|w| {
                roles.iter().any(|r| r == w) || groups.iter().any(|g| g.eq_ignore_ascii_case(w))
            })
        };
        if matches(&self.admins) {
            Some(Role::CompanyAdmin)
        } else if matches(&self.readers) {
            Some(Role::Reader)
        } else {
            None
        }
    }
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The sign-in name (stored lower case).
    pub email: String,
    /// Shown name.
    pub display_name: Option<String>,
    /// What it may do, and where.
    pub grant: Grant,
    /// Its argon2 password hash (empty: it signs in with Microsoft only).
    pub password_hash: String,
    /// The Microsoft person who signs in as it.
    pub entra: Option<EntraId>,
}

/// A signed-in browser: only the hash of its cookie's id is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Hash of the session id (the cookie holds the id).
    pub id_hash: String,
    /// Whose.
    pub account: AccountId,
    /// The token every form of this session must carry.
    pub csrf: String,
    /// When it ends.
    pub expires: Timestamp,
}

/// A company's API token: only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Id.
    pub id: ApiTokenId,
    /// Hash of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// The company and role it acts as.
    pub grant: Grant,
    /// A name saying what uses it.
    pub name: String,
    /// Created.
    pub created: Timestamp,
    /// Last used.
    pub last_used: Option<Timestamp>,
    /// Refused from then on.
    pub expires: Timestamp,
    /// The account that made it: removing the account revokes it (`None` for tokens
    /// made before tokens had owners).
    pub owner: Option<AccountId>,
}

/// An API token to store.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    /// The company and role it acts as.
    pub grant: Grant,
    /// What uses it.
    pub name: &'a str,
    /// Hash of the token.
    pub token_hash: &'a str,
    /// The account making it.
    pub owner: AccountId,
    /// Made at.
    pub created: Timestamp,
    /// Refused from then on.
    pub expires: Timestamp,
}
