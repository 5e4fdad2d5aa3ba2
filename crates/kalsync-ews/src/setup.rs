//! The PowerShell an Exchange admin runs to give Kalsync's service account what it
//! needs (SPEC §4.2), per Exchange version: the account and its mailbox, impersonation
//! (the ApplicationImpersonation role from 2010 on, `ms-Exch-EPI-*` rights on 2007) or
//! per-calendar Reviewer rights found by folder type (so a Swedish "Kalender" works
//! too), optionally only for the members of one group, and from 2010 on a throttling
//! policy for many subscriptions — with the checks that show it worked.
//!
//! Written from the operators' set-up guides, corrected: straight quotes, one policy
//! name throughout, `-ResultSize Unlimited`, `-AccessRights`, the 2010 and 2013+
//! throttling parameters kept apart, no role assignment on 2007 (it has no RBAC).

use crate::request::{Access, Version};

/// An Exchange product, for its administration commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Product {
    /// Exchange 2007 SP1 or later service packs.
    Exchange2007,
    /// Exchange 2010.
    Exchange2010,
    /// Exchange 2013, 2016, 2019 and Subscription Edition.
    Exchange2013,
}

impl Product {
    /// Reads `2007`, `2010`, `2013`, `2016`, `2019` or `se`.
    pub fn parse(text: &str) -> Result<Product, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "2007" => Ok(Product::Exchange2007),
            "2010" => Ok(Product::Exchange2010),
            "2013" | "2016" | "2019" | "se" => Ok(Product::Exchange2013),
            other => Err(format!(
                "`{other}` is not an Exchange version (expected 2007, 2010, 2013, 2016, 2019 or se)"
            )),
        }
    }
}

impl From<Version> for Product {
    fn from(v: Version) -> Product {
        match v {
            Version::Exchange2007Sp1 => Product::Exchange2007,
            Version::Exchange2010 | Version::Exchange2010Sp1 | Version::Exchange2010Sp2 => {
                Product::Exchange2010
            }
            Version::Exchange2013 | Version::Exchange2013Sp1 => Product::Exchange2013,
        }
    }
}

/// What to set up.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    /// The Exchange version.
    pub product: Product,
    /// The service account's name, e.g. `svc-kalsync`.
    pub account: &'a str,
    /// Impersonation or delegate (Reviewer) access.
    pub access: Access,
    /// Only this group's members, when given.
    pub group: Option<&'a str>,
}

/// A PowerShell single-quoted string. PowerShell ends such a string at any of five
/// quote characters (`'`, `‘`, `’`, `‚`, `‛`), and takes each doubled as itself.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The script, commented step by step.
pub fn powershell(s: &Setup<'_>) -> String {
    let account = quoted(s.account);
    let policy = quoted("Kalsync throttling policy");
    let mut out = String::new();
    let mut line = |l: &str| {
        out.push_str(l);
        out.push('\n');
    };
    line("# Kalsync: the Exchange service account and its rights.");
    line("# Run in the Exchange Management Shell as an Exchange administrator.");
    line("");
    line("# 1. The service account, with a mailbox and a password that does not expire.");
    line(&format!("$Account = {account}"));
    line(
        "$Password = Read-Host -AsSecureString -Prompt 'Password for the Kalsync service account'",
    );
    line(
        "New-Mailbox -Name $Account -Alias $Account -UserPrincipalName \"$Account@$((Get-AcceptedDomain | Where-Object Default).DomainName)\" -SamAccountName $Account -Password $Password -ResetPasswordOnNextLogon $false",
    );
    line(
        "Set-ADUser -Identity $Account -PasswordNeverExpires $true   # needs the ActiveDirectory module",
    );
    line("");
    let members = match s.group {
        Some(g) => format!(
            "Get-DistributionGroupMember -Identity {} -ResultSize Unlimited | Get-Mailbox",
            quoted(g)
        ),
        None => "Get-Mailbox -ResultSize Unlimited -RecipientTypeDetails UserMailbox".to_owned(),
    };
    match (s.access, s.product) {
        (Access::Impersonation, Product::Exchange2007) => {
            line("# 2. Impersonation (Exchange 2007 has no roles: two Active Directory rights).");
            line(
                "Get-ExchangeServer | Where-Object { $_.IsClientAccessServer } | ForEach-Object { Add-ADPermission -Identity $_.DistinguishedName -User $Account -ExtendedRights ms-Exch-EPI-Impersonation }",
            );
            match s.group {
                None => line(
                    "Get-MailboxDatabase | ForEach-Object { Add-ADPermission -Identity $_.DistinguishedName -User $Account -ExtendedRights ms-Exch-EPI-May-Impersonate }",
                ),
                Some(_) => line(&format!(
                    "{members} | ForEach-Object {{ Add-ADPermission -Identity $_.DistinguishedName -User $Account -ExtendedRights ms-Exch-EPI-May-Impersonate }}"
                )),
            }
        }
        (Access::Impersonation, _) => {
            line("# 2. Impersonation: the ApplicationImpersonation role.");
            match s.group {
                None => line(
                    "New-ManagementRoleAssignment -Name 'Kalsync impersonation' -Role ApplicationImpersonation -User $Account",
                ),
                Some(g) => {
                    line("#    Only for the group's members: a management scope.");
                    line(&format!(
                        "$Group = Get-DistributionGroup -Identity {}",
                        quoted(g)
                    ));
                    line(
                        "New-ManagementScope -Name 'Kalsync users' -RecipientRestrictionFilter \"MemberOfGroup -eq '$($Group.DistinguishedName)'\"",
                    );
                    line(
                        "New-ManagementRoleAssignment -Name 'Kalsync impersonation' -Role ApplicationImpersonation -User $Account -CustomRecipientWriteScope 'Kalsync users'",
                    );
                }
            }
        }
        (Access::Delegate, Product::Exchange2007) => {
            line(
                "# 2. Delegate access: Exchange 2007 has no folder rights from the shell; FullAccess on each mailbox.",
            );
            line(&format!(
                "{members} | Add-MailboxPermission -User $Account -AccessRights FullAccess -InheritanceType All"
            ));
        }
        (Access::Delegate, _) => {
            line(
                "# 2. Delegate access: Reviewer on each calendar. The calendar folder is found by its",
            );
            line("#    type, so a mailbox in another language (\"Kalender\") works too.");
            line(&format!("{members} | ForEach-Object {{"));
            line(
                "    $Calendar = Get-MailboxFolderStatistics -Identity $_.Identity -FolderScope Calendar | Where-Object { $_.FolderType -eq 'Calendar' } | Select-Object -First 1",
            );
            line(
                "    Add-MailboxFolderPermission -Identity \"$($_.PrimarySmtpAddress):$($Calendar.FolderPath.Replace('/', '\\'))\" -User $Account -AccessRights Reviewer",
            );
            line("}");
            line("#    New mailboxes need the same; run this again after adding people.");
        }
    }
    line("");
    match s.product {
        Product::Exchange2007 => {
            line("# 3. Exchange 2007 has no per-account throttling policies; nothing to do.");
        }
        Product::Exchange2010 => {
            line(
                "# 3. A throttling policy for many subscriptions and concurrent reads ($null: no limit).",
            );
            line(&format!(
                "New-ThrottlingPolicy -Name {policy} -EWSMaxConcurrency $null -EWSMaxSubscriptions $null -EWSPercentTimeInCAS $null -EWSPercentTimeInMailboxRPC $null -EWSFindCountLimit $null -EWSPercentTimeInAD $null"
            ));
            line(&format!(
                "Set-ThrottlingPolicyAssociation -Identity $Account -ThrottlingPolicy {policy}"
            ));
        }
        Product::Exchange2013 => {
            line("# 3. A throttling policy for many subscriptions and concurrent reads.");
            line(&format!(
                "New-ThrottlingPolicy -Name {policy} -ThrottlingPolicyScope Regular -EWSMaxConcurrency Unlimited -EWSMaxBurst Unlimited -EWSRechargeRate Unlimited -EWSCutoffBalance Unlimited -EWSMaxSubscriptions Unlimited"
            ));
            line(&format!(
                "Set-ThrottlingPolicyAssociation -Identity $Account -ThrottlingPolicy {policy}"
            ));
        }
    }
    line("");
    line("# 4. Check: the account, its rights, its policy, and the EWS address for Kalsync.");
    line("Get-Mailbox -Identity $Account | Format-List Name, PrimarySmtpAddress");
    match (s.access, s.product) {
        (Access::Impersonation, Product::Exchange2007) => {
            line(
                "Get-ExchangeServer | Get-ADPermission -User $Account | Where-Object { $_.ExtendedRights -like '*Impersonation*' }",
            );
        }
        (Access::Impersonation, _) => {
            line(
                "Get-ManagementRoleAssignment -Identity 'Kalsync impersonation' | Format-List Role, RoleAssignee, CustomRecipientWriteScope",
            );
        }
        (Access::Delegate, Product::Exchange2007) => {
            line(&format!("{members} | Get-MailboxPermission -User $Account"));
        }
        (Access::Delegate, _) => {
            line(&format!(
                "{members} | Select-Object -First 1 | ForEach-Object {{ Get-MailboxFolderPermission -Identity \"$($_.PrimarySmtpAddress):\\Calendar\" -User $Account }}"
            ));
        }
    }
    if s.product != Product::Exchange2007 {
        line("Get-ThrottlingPolicyAssociation -Identity $Account | Format-List ThrottlingPolicy");
    }
    line(
        "Get-WebServicesVirtualDirectory | Format-List Server, ExternalUrl, InternalUrl, WindowsAuthentication, BasicAuthentication",
    );
    line("# Kalsync needs the ExternalUrl (…/EWS/Exchange.asmx), the account and its password;");
    line(
        "# then `kalsync check --instance <id>` verifies the sign-in, the rights, a read and a subscription.",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quote_powershell_knows_is_doubled() {
        assert_eq!(quoted("svc-kalsync"), "'svc-kalsync'");
        assert_eq!(quoted("o'hara"), "'o''hara'");
        for q in ['\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'] {
            let hostile = format!("x{q}; Remove-Mailbox -Identity *; {q}");
            let out = quoted(&hostile);
            assert_eq!(
                out.matches(q).count(),
                4,
                "{out}: each of the two is doubled"
            );
        }
    }

    #[test]
    fn each_version_gets_its_own_commands() {
        let script = |product, access, group| {
            powershell(&Setup {
                product,
                account: "svc-kalsync",
                access,
                group,
            })
        };
        let e2007 = script(Product::Exchange2007, Access::Impersonation, None);
        assert!(
            e2007.contains("ms-Exch-EPI-Impersonation")
                && e2007.contains("ms-Exch-EPI-May-Impersonate")
        );
        assert!(
            !e2007.contains("New-ManagementRoleAssignment")
                && !e2007.contains("New-ThrottlingPolicy")
        );
        let e2010 = script(
            Product::Exchange2010,
            Access::Impersonation,
            Some("Växel O'Hara"),
        );
        assert!(
            e2010.contains("-Role ApplicationImpersonation")
                && e2010.contains("New-ManagementScope")
        );
        assert!(
            e2010.contains("'Växel O''Hara'"),
            "quotes inside names are doubled"
        );
        assert!(e2010.contains("-EWSMaxSubscriptions $null"));
        let e2016 = script(Product::Exchange2013, Access::Delegate, None);
        assert!(
            e2016.contains("-AccessRights Reviewer") && e2016.contains("-FolderScope Calendar")
        );
        assert!(e2016.contains("-EWSMaxSubscriptions Unlimited"));
        for s in [&e2007, &e2010, &e2016] {
            assert!(s.contains("$Account = 'svc-kalsync'"));
            assert!(
                !s.contains('”') && !s.contains("Unlimeted"),
                "the guides' slips are gone"
            );
        }
        assert!(Product::parse("2019").is_ok_and(|p| p == Product::Exchange2013));
        assert!(Product::parse("2003").is_err());
    }
}
