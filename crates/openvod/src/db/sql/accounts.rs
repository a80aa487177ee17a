// Console accounts and sessions.

use async_trait::async_trait;
use sqlx::Row;

use super::{query, query_scalar, DbConn, DbRow, SqlDb};
use crate::accounts::model::{Invite, Role, Session, User};
use crate::accounts::repo::AccountRepo;
use crate::db::DbError;

fn user_from_row(row: &DbRow) -> Result<User, DbError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        username: row.try_get("username")?,
        role: Role::parse(&role).ok_or_else(|| DbError::Corrupt(format!("user role {role:?}")))?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
    })
}

fn session_from_row(row: &DbRow) -> Result<Session, DbError> {
    Ok(Session {
        id_sha256: row.try_get("id_sha256")?,
        username: row.try_get("username")?,
        csrf_token: row.try_get("csrf_token")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn invite_from_row(row: &DbRow) -> Result<Invite, DbError> {
    Ok(Invite {
        token_sha256: row.try_get("token_sha256")?,
        username: row.try_get("username")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}

/// Sets the password and unlocks the account; `false` if no such user.
async fn set_password_in(conn: &mut DbConn, username: &str, hash: &str) -> Result<bool, DbError> {
    let done = query(
        "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL
         WHERE username = ?",
    )
    .bind(hash)
    .bind(username)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn revoke_sessions_in(conn: &mut DbConn, username: &str, now: i64) -> Result<u64, DbError> {
    let done = query(
        "UPDATE sessions SET revoked_at = ?
         WHERE username = ? AND revoked_at IS NULL AND expires_at > ?",
    )
    .bind(now)
    .bind(username)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

#[async_trait]
impl AccountRepo for SqlDb {
    async fn create_user(&self, user: &User) -> Result<bool, DbError> {
        let done = query(
            "INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&user.username)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn get_user(&self, username: &str) -> Result<Option<User>, DbError> {
        query("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| user_from_row(&r))
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, DbError> {
        query("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn set_password(&self, username: &str, hash: &str) -> Result<bool, DbError> {
        set_password_in(&mut *self.writer.acquire().await?, username, hash).await
    }

    async fn set_role(&self, username: &str, role: Role) -> Result<bool, DbError> {
        let done = query("UPDATE users SET role = ? WHERE username = ?")
            .bind(role.as_str())
            .bind(username)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_failed_login(&self, username: &str) -> Result<Option<i64>, DbError> {
        Ok(query_scalar(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE username = ?
             RETURNING failed_logins",
        )
        .bind(username)
        .fetch_optional(&self.writer)
        .await?)
    }

    async fn lock_user(&self, username: &str, until: i64) -> Result<(), DbError> {
        query("UPDATE users SET locked_until = ? WHERE username = ?")
            .bind(until)
            .bind(username)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn start_session(&self, session: &Session) -> Result<(), DbError> {
        let mut tx = self.writer.begin().await?;
        query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = ?")
            .bind(&session.username)
            .execute(&mut *tx)
            .await?;
        query(
            "INSERT INTO sessions (id_sha256, username, csrf_token, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&session.id_sha256)
        .bind(&session.username)
        .bind(&session.csrf_token)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_session(&self, id_sha256: &[u8]) -> Result<Option<Session>, DbError> {
        query("SELECT * FROM sessions WHERE id_sha256 = ?")
            .bind(id_sha256)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| session_from_row(&r))
            .transpose()
    }

    async fn revoke_session(&self, id_sha256: &[u8], now: i64) -> Result<bool, DbError> {
        let done =
            query("UPDATE sessions SET revoked_at = ? WHERE id_sha256 = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(id_sha256)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_sessions_of(&self, username: &str, now: i64) -> Result<u64, DbError> {
        revoke_sessions_in(&mut *self.writer.acquire().await?, username, now).await
    }

    async fn create_invite(&self, invite: &Invite) -> Result<(), DbError> {
        query(
            "INSERT INTO invites (token_sha256, username, created_by, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&invite.token_sha256)
        .bind(&invite.username)
        .bind(&invite.created_by)
        .bind(invite.created_at)
        .bind(invite.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_invite(&self, token_sha256: &[u8]) -> Result<Option<Invite>, DbError> {
        query("SELECT * FROM invites WHERE token_sha256 = ?")
            .bind(token_sha256)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| invite_from_row(&r))
            .transpose()
    }

    async fn accept_invite(
        &self,
        token_sha256: &[u8],
        hash: &str,
        now: i64,
    ) -> Result<Option<String>, DbError> {
        let mut tx = self.writer.begin().await?;
        let username: Option<String> = query_scalar(
            "UPDATE invites SET used_at = ?
             WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ?
             RETURNING username",
        )
        .bind(now)
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(username) = username else {
            return Ok(None);
        };
        set_password_in(&mut tx, &username, hash).await?;
        revoke_sessions_in(&mut tx, &username, now).await?;
        tx.commit().await?;
        Ok(Some(username))
    }
}
