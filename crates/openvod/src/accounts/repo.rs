//! What the accounts domain needs stored. Every method is atomic and durable when it returns.

use async_trait::async_trait;

use super::model::{Invite, Role, Session, User};
use crate::error::DbError;

#[async_trait]
pub trait AccountRepo: Send + Sync {
    /// Inserts the user; `false` if the username is taken.
    async fn create_user(&self, user: &User) -> Result<bool, DbError>;
    async fn get_user(&self, username: &str) -> Result<Option<User>, DbError>;
    async fn list_users(&self) -> Result<Vec<User>, DbError>;
    /// Sets the password and role-independent login state (unlocks); `false` if no such user.
    async fn set_password(&self, username: &str, hash: &str) -> Result<bool, DbError>;
    async fn set_role(&self, username: &str, role: Role) -> Result<bool, DbError>;
    /// Counts a failed login; returns the new count (atomically, whatever runs beside it), or
    /// `None` if there is no such user.
    async fn record_failed_login(&self, username: &str) -> Result<Option<i64>, DbError>;
    /// Refuses logins to the account until `until`.
    async fn lock_user(&self, username: &str, until: i64) -> Result<(), DbError>;
    /// Clears the failed-login count and inserts the new session, in one transaction.
    async fn start_session(&self, session: &Session) -> Result<(), DbError>;
    async fn get_session(&self, id_sha256: &[u8]) -> Result<Option<Session>, DbError>;
    async fn revoke_session(&self, id_sha256: &[u8], now: i64) -> Result<bool, DbError>;
    /// Revokes every live session of the user; returns how many.
    async fn revoke_sessions_of(&self, username: &str, now: i64) -> Result<u64, DbError>;
    async fn create_invite(&self, invite: &Invite) -> Result<(), DbError>;
    async fn get_invite(&self, token_sha256: &[u8]) -> Result<Option<Invite>, DbError>;
    /// In one transaction: spends the invite if it is unused and not expired at `now`, sets the
    /// password (unlocking the account) and ends the user's sessions. The username, or `None`
    /// (and nothing changed) if the invite cannot be used.
    async fn accept_invite(
        &self,
        token_sha256: &[u8],
        hash: &str,
        now: i64,
    ) -> Result<Option<String>, DbError>;
}
