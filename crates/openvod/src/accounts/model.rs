//! Console accounts: people (not API tokens) with a role.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and manages everything, settings included.
    Admin,
    /// Sees every video; claims and assigns migrated recordings.
    Staff,
    /// Sees and manages only the videos whose `meta.creator_id` is their username.
    User,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "staff" => Some(Role::Staff),
            "user" => Some(Role::User),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::User => "user",
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub role: Role,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id_sha256: Vec<u8>,
    pub username: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// An invite link, as stored (the token itself is only ever in the link).
#[derive(Debug, Clone)]
pub struct Invite {
    pub token_sha256: Vec<u8>,
    pub username: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}
