//! Who may do what: the roles of API credentials, and the audit trail of what they did.
//!
//! A call that changes state carries a bearer credential. The coordinator's admin token (from
//! `DATA_DIR/admin.token`) and named API tokens (`dct_…`, made by `debcover token add`, stored
//! only as SHA-256) have a [`Role`]; a rebuilder node's credential (`dcn_…`) acts only as
//! [`Role::Node`], on its own leases. [`Role::permits`] is the whole rule.

use std::fmt;
use std::str::FromStr;

/// Prefix of a named API token (node credentials start `dcn_`).
pub const TOKEN_PREFIX: &str = "dct_";
/// Longest token name.
pub const MAX_TOKEN_NAME: usize = 64;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything: credentials, nodes, the queue, and what every other role may do.
    Admin,
    /// Feed buildinfos and archive indices (automation).
    Ingest,
    /// Open campaigns and request rebuilds (the security and release teams).
    Campaign,
    /// A rebuilder node: claim, heartbeat and report its own leases.
    Node,
}

impl Role {
    /// Every role, in the order they are documented.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Ingest, Role::Campaign, Role::Node];

    /// The role's name, as `--role` takes it and the database stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ingest => "ingest",
            Role::Campaign => "campaign",
            Role::Node => "node",
        }
    }

    /// Whether a credential of this role may make a call that needs `needed`. Admin may do
    /// everything except act as a node (nodes sign what they report with their own keys).
    pub fn permits(self, needed: Role) -> bool {
        self == needed || (self == Role::Admin && needed != Role::Node)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!("unknown role {s:?}: use one of admin, ingest, campaign (nodes get credentials from `debcover node add`)")
        })
    }
}

/// Who made a call: the name the audit trail records and the role it was allowed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `admin` for the admin token, `token:NAME` for an API token, `node:OPERATOR/NAME`.
    pub name: String,
    /// The credential's role.
    pub role: Role,
}

impl Principal {
    /// The coordinator's admin token.
    pub fn admin() -> Self {
        Principal {
            name: "admin".to_owned(),
            role: Role::Admin,
        }
    }
}

/// A named API token as stored (its secret is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Row id.
    pub id: i64,
    /// Unique among unrevoked tokens.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made (unix seconds).
    pub created_at: i64,
    /// When it was last used (unix seconds, to the minute), if ever.
    pub last_used_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (unix seconds).
    pub at: i64,
    /// Who ([`Principal::name`]).
    pub actor: String,
    /// As what role.
    pub role: Role,
    /// What: `ingest-buildinfos`, `ingest-archive`, `create-campaign`, `request-rebuild`, ...
    pub action: String,
    /// On what, in words (counts, names, ids).
    pub subject: String,
}

/// Check a token name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_token_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_TOKEN_NAME {
        return Err(format!(
            "token name must be 1 to {MAX_TOKEN_NAME} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "token name {name:?} may hold only letters, digits, '.', '_', '-' and '@'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert!(r.permits(r));
        }
        assert!(Role::Admin.permits(Role::Ingest) && Role::Admin.permits(Role::Campaign));
        assert!(!Role::Admin.permits(Role::Node));
        assert!(!Role::Ingest.permits(Role::Campaign) && !Role::Campaign.permits(Role::Ingest));
        assert!(!Role::Node.permits(Role::Ingest) && !Role::Ingest.permits(Role::Admin));
        assert!("root".parse::<Role>().is_err());
        assert!(check_token_name("ci-feeder").is_ok());
        assert!(
            check_token_name("").is_err()
                && check_token_name("a b").is_err()
                && check_token_name("é").is_err()
        );
    }
}
