//! Console accounts: local users with a role, Argon2id passwords, cookie sessions with a CSRF token,
//! and a lockout that grows with repeated failed logins. API tokens (`tokens`) are for programs;
//! these are for people.

pub mod http;
pub mod model;
pub mod repo;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::DbError;
use crate::error::ErrorKind;
use crate::id::now_unix;
use model::{Invite, Role, Session, User};

/// How long a session lasts without logging in again.
pub const SESSION_SECS: i64 = 12 * 3600;
/// Failed logins allowed before the account is locked.
const FAILS_BEFORE_LOCK: i64 = 5;
/// The first lock lasts this long and doubles with every further failure, up to `LOCK_MAX_SECS`.
const LOCK_BASE_SECS: i64 = 30;
const LOCK_MAX_SECS: i64 = 3600;
pub const MIN_PASSWORD_LEN: usize = 10;
/// How long an invite link works.
pub const INVITE_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("username must be 1 to 128 characters of letters, digits, '.', '_', '-' or '@'")]
    InvalidUsername,
    #[error("password must be at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    #[error("the username {0} is taken")]
    UsernameTaken(String),
    #[error("no user named {0}")]
    NoSuchUser(String),
    #[error("invalid username or password")]
    BadCredentials,
    #[error("too many failed logins: try again in {0} s")]
    LockedOut(i64),
    #[error("not logged in, or the session has expired: log in again")]
    NoSession,
    #[error(
        "missing or wrong X-CSRF-Token header: state changes need the token the login returned"
    )]
    Csrf,
    #[error("this invite link is unknown, used or expired: ask an admin for a new one")]
    InvalidInvite,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl AccountError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AccountError::InvalidUsername | AccountError::WeakPassword => ErrorKind::Invalid,
            AccountError::UsernameTaken(_) => ErrorKind::Conflict,
            AccountError::NoSuchUser(_) | AccountError::InvalidInvite => ErrorKind::NotFound,
            AccountError::BadCredentials | AccountError::NoSession => ErrorKind::Unauthorized,
            AccountError::LockedOut(_) => ErrorKind::TooManyRequests,
            AccountError::Csrf => ErrorKind::Forbidden,
            AccountError::Db(e) => e.kind(),
        }
    }
}

/// A username: what an asset's `meta.creator_id` holds for its owner (a Moodle `username`, the
/// migration's admin owner, a claimer). Moodle's own rule: letters, digits and `_ - . @`.
pub fn valid_username(name: &str) -> bool {
    (1..=crate::assets::model::AssetMeta::MAX_ID_LEN).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// An account for someone who owns videos before ever logging in (a Moodle moderator the BBB
/// migration found): role `user`, no password until an admin sets one or sends an invite link.
/// `false` if the username already has an account (which is left as it is).
pub async fn create_passwordless(
    db: &dyn repo::AccountRepo,
    username: &str,
) -> Result<bool, AccountError> {
    if !valid_username(username) {
        return Err(AccountError::InvalidUsername);
    }
    let user = User {
        username: username.to_owned(),
        role: Role::User,
        password_hash: None,
        created_at: now_unix(),
        failed_logins: 0,
        locked_until: None,
    };
    Ok(db.create_user(&user).await?)
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn sha256(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

async fn hash_password(password: String) -> String {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("Argon2 with default parameters hashes any password")
            .to_string()
    })
    .await
    .expect("hashing does not panic")
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .expect("verifying does not panic")
}

/// A logged-in person, as a request sees them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: i64,
    session_id_sha256: Vec<u8>,
}

impl SignedIn {
    /// Constant-time check of the CSRF token sent with a state change.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), AccountError> {
        match sent {
            Some(sent) if bool::from(sent.as_bytes().ct_eq(self.csrf_token.as_bytes())) => Ok(()),
            _ => Err(AccountError::Csrf),
        }
    }
}

pub struct AccountService {
    db: std::sync::Arc<dyn crate::accounts::repo::AccountRepo>,
    /// Verified against when the username does not exist, so a login takes as long either way.
    dummy_hash: String,
}

impl AccountService {
    pub async fn new(db: std::sync::Arc<dyn crate::accounts::repo::AccountRepo>) -> AccountService {
        AccountService {
            db,
            dummy_hash: hash_password(random_token(16)).await,
        }
    }

    /// Creates an account. Without `password`, one is generated and returned (shown once).
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        password: Option<&str>,
    ) -> Result<String, AccountError> {
        if !valid_username(username) {
            return Err(AccountError::InvalidUsername);
        }
        let password = match password {
            Some(p) if p.chars().count() < MIN_PASSWORD_LEN => {
                return Err(AccountError::WeakPassword)
            }
            Some(p) => p.to_owned(),
            None => random_token(15),
        };
        let user = User {
            username: username.to_owned(),
            role,
            password_hash: Some(hash_password(password.clone()).await),
            created_at: now_unix(),
            failed_logins: 0,
            locked_until: None,
        };
        if !self.db.create_user(&user).await? {
            return Err(AccountError::UsernameTaken(username.to_owned()));
        }
        Ok(password)
    }

    /// Sets a new password (generated when `None`, and returned), unlocks the account and ends
    /// its sessions.
    pub async fn set_password(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> Result<String, AccountError> {
        let password = match password {
            Some(p) if p.chars().count() < MIN_PASSWORD_LEN => {
                return Err(AccountError::WeakPassword)
            }
            Some(p) => p.to_owned(),
            None => random_token(15),
        };
        let hash = hash_password(password.clone()).await;
        if !self.db.set_password(username, &hash).await? {
            return Err(AccountError::NoSuchUser(username.to_owned()));
        }
        self.db.revoke_sessions_of(username, now_unix()).await?;
        Ok(password)
    }

    pub async fn list_users(&self) -> Result<Vec<User>, AccountError> {
        Ok(self.db.list_users().await?)
    }

    /// Ends every session of the user; returns how many were live.
    pub async fn revoke_sessions(&self, username: &str) -> Result<u64, AccountError> {
        if self.db.get_user(username).await?.is_none() {
            return Err(AccountError::NoSuchUser(username.to_owned()));
        }
        Ok(self.db.revoke_sessions_of(username, now_unix()).await?)
    }

    /// Checks the password and opens a session; returns the cookie value and the session.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(String, SignedIn), AccountError> {
        let now = now_unix();
        let user = if valid_username(username) {
            self.db.get_user(username).await?
        } else {
            None
        };
        if let Some(until) = user.as_ref().and_then(|u| u.locked_until) {
            if until > now {
                return Err(AccountError::LockedOut(until - now));
            }
        }
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let matches = verify_password(password.to_owned(), hash).await;
        let Some(user) = user.filter(|u| matches && u.password_hash.is_some()) else {
            if valid_username(username) {
                if let Some(fails) = self.db.record_failed_login(username).await? {
                    if fails >= FAILS_BEFORE_LOCK {
                        let doublings = (fails - FAILS_BEFORE_LOCK).min(16) as u32;
                        let secs = (LOCK_BASE_SECS << doublings).min(LOCK_MAX_SECS);
                        self.db.lock_user(username, now + secs).await?;
                    }
                }
            }
            return Err(AccountError::BadCredentials);
        };
        self.open_session(user, now).await
    }

    /// Opens a session for `user`; returns the cookie value and the session.
    async fn open_session(&self, user: User, now: i64) -> Result<(String, SignedIn), AccountError> {
        let cookie = random_token(32);
        let session = Session {
            id_sha256: sha256(&cookie),
            username: user.username.clone(),
            csrf_token: random_token(24),
            created_at: now,
            expires_at: now + SESSION_SECS,
            revoked_at: None,
        };
        self.db.start_session(&session).await?;
        Ok((
            cookie,
            SignedIn {
                username: user.username,
                role: user.role,
                csrf_token: session.csrf_token,
                expires_at: session.expires_at,
                session_id_sha256: session.id_sha256,
            },
        ))
    }

    /// A new invite link token for `username` (returned once, stored hashed), and when it
    /// expires. Earlier invites stay valid until used or expired.
    pub async fn create_invite(
        &self,
        username: &str,
        created_by: Option<&str>,
    ) -> Result<(String, i64), AccountError> {
        if self.db.get_user(username).await?.is_none() {
            return Err(AccountError::NoSuchUser(username.to_owned()));
        }
        let token = random_token(32);
        let now = now_unix();
        let invite = Invite {
            token_sha256: sha256(&token),
            username: username.to_owned(),
            created_by: created_by.map(str::to_owned),
            created_at: now,
            expires_at: now + INVITE_SECS,
            used_at: None,
        };
        self.db.create_invite(&invite).await?;
        Ok((token, invite.expires_at))
    }

    /// The invite behind a link's token, if it can still be used.
    pub async fn invite(&self, token: &str) -> Result<Invite, AccountError> {
        self.db
            .get_invite(&sha256(token))
            .await?
            .filter(|i| i.used_at.is_none() && i.expires_at > now_unix())
            .ok_or(AccountError::InvalidInvite)
    }

    /// Sets the password an invite's holder chose (spending the invite, ending any other
    /// session of theirs) and logs them in.
    pub async fn accept_invite(
        &self,
        token: &str,
        password: &str,
    ) -> Result<(String, SignedIn), AccountError> {
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(AccountError::WeakPassword);
        }
        // Checked first so a bad link costs no hashing.
        self.invite(token).await?;
        let hash = hash_password(password.to_owned()).await;
        let now = now_unix();
        let username = self
            .db
            .accept_invite(&sha256(token), &hash, now)
            .await?
            .ok_or(AccountError::InvalidInvite)?;
        let user = self
            .db
            .get_user(&username)
            .await?
            .ok_or(AccountError::NoSuchUser(username))?;
        self.open_session(user, now).await
    }

    /// The person behind a session cookie, if the session is live and the account still exists.
    pub async fn session(&self, cookie: &str) -> Result<SignedIn, AccountError> {
        let session = self
            .db
            .get_session(&sha256(cookie))
            .await?
            .filter(|s| s.revoked_at.is_none() && s.expires_at > now_unix())
            .ok_or(AccountError::NoSession)?;
        let user = self
            .db
            .get_user(&session.username)
            .await?
            .ok_or(AccountError::NoSession)?;
        Ok(SignedIn {
            username: user.username,
            role: user.role,
            csrf_token: session.csrf_token,
            expires_at: session.expires_at,
            session_id_sha256: session.id_sha256,
        })
    }

    pub async fn logout(&self, signed_in: &SignedIn) -> Result<(), AccountError> {
        self.db
            .revoke_session(&signed_in.session_id_sha256, now_unix())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(valid_username("jdoe"));
        assert!(valid_username("jean.dupont@univ.fr"));
        assert!(!valid_username(""));
        assert!(!valid_username("a b"));
        assert!(!valid_username("../etc"));
        assert!(valid_username("émilie"));
        assert!(valid_username(&"a".repeat(128)));
        assert!(!valid_username(&"a".repeat(129)));
    }
}
