//! Who owns a recording, from the Moodle database of the site that made it (PostgreSQL or
//! MySQL/MariaDB): the BigBlueButton activity the recording belongs to, and the moderators its
//! `participants` rules name.
//!
//! Every value is a bound parameter; only the table prefix, validated at connect time, is part
//! of the SQL text. The two engines differ only in their placeholders (`?` vs `$n`), so each
//! statement is written once with `?` and numbered for PostgreSQL.

use std::collections::{BTreeMap, HashSet};

use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::{MySqlPool, PgPool, Row};

use super::BbbError;
use crate::config::MoodleDatabase;

/// `bigbluebuttonbn_recordings.status` of a recording Moodle shows (RECORDING_STATUS_PROCESSED).
const STATUS_PROCESSED: i32 = 2;
/// `context.contextlevel` of a course (CONTEXT_COURSE).
const CONTEXT_COURSE: i64 = 50;

/// A Moodle user, as the migration records an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoodleUser {
    pub id: i64,
    pub username: String,
    pub firstname: String,
    pub lastname: String,
    pub email: String,
}

impl MoodleUser {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.firstname.trim(), self.lastname.trim())
            .trim()
            .to_owned()
    }
}

/// The `bigbluebuttonbn` activity a recording was made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: i64,
    pub course: i64,
    pub intro: Option<String>,
    pub participants: Option<String>,
}

/// Who the `participants` JSON makes a moderator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModeratorRules {
    /// User ids, in the order the rules list them.
    pub users: Vec<i64>,
    /// Role ids: every user holding one of them in the course is a moderator.
    pub roles: Vec<i64>,
}

/// Reads Moodle's participant rules (`[{"selectiontype":"user","selectionid":"83","role":"moderator"}, ...]`).
/// NULL, empty or malformed JSON yields no rule (and no error: the recording falls back to the
/// admin owner). `all` and `group` rules name no one in particular and are not owners.
pub fn moderator_rules(participants: Option<&str>) -> ModeratorRules {
    let mut rules = ModeratorRules::default();
    let Some(text) = participants.map(str::trim).filter(|t| !t.is_empty()) else {
        return rules;
    };
    let Ok(serde_json::Value::Array(entries)) = serde_json::from_str(text) else {
        return rules;
    };
    for entry in &entries {
        let field = |k: &str| entry.get(k);
        if field("role").and_then(|r| r.as_str()) != Some("moderator") {
            continue;
        }
        let id = match field("selectionid") {
            Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        let Some(id) = id.filter(|id| *id > 0) else {
            continue;
        };
        let list = match field("selectiontype").and_then(|t| t.as_str()) {
            Some("user") => &mut rules.users,
            Some("role") => &mut rules.roles,
            _ => continue,
        };
        if !list.contains(&id) {
            list.push(id);
        }
    }
    rules
}

/// Moodle's BBB meetingID: `<meetingid>-<courseid>-<instanceid>`, optionally `[<groupid>]`.
pub fn parse_meeting_id(meeting_id: &str) -> Option<(String, i64, i64)> {
    let base = match meeting_id.trim().split_once('[') {
        Some((base, rest)) if rest.ends_with(']') => base,
        Some(_) => return None,
        None => meeting_id.trim(),
    };
    let mut parts = base.rsplitn(3, '-');
    let instance = parts.next()?.parse().ok()?;
    let course = parts.next()?.parse().ok()?;
    let meeting = parts.next()?;
    (!meeting.is_empty()).then(|| (meeting.to_owned(), course, instance))
}

enum Pool {
    Postgres(PgPool),
    Mysql(MySqlPool),
}

/// Runs `$body` with `$p` bound to whichever pool this is (the sqlx calls are the same).
macro_rules! with_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            Pool::Postgres($p) => $body,
            Pool::Mysql($p) => $body,
        }
    };
}

/// One Moodle database.
pub struct Moodle {
    /// The `[bbb.moodle.NAME]` key.
    pub name: String,
    pool: Pool,
    prefix: String,
    /// Moodle >= 4.0 keeps a row per recording; older sites are matched by meetingID.
    has_recordings_table: bool,
    /// Moderators by activity for this run: an activity's recordings share them, and the lookups
    /// are most of a migration's time.
    moderators: std::sync::Mutex<std::collections::HashMap<i64, Vec<MoodleUser>>>,
    /// Activities of recordings about to be handled, looked up a page at a time (`prefetch`).
    activities: std::sync::Mutex<std::collections::HashMap<String, Option<Activity>>>,
}

impl Moodle {
    /// Connects and checks the tables are there (Pod's `check_system`).
    pub async fn connect(name: &str, db: &MoodleDatabase) -> Result<Moodle, BbbError> {
        let err = |reason: String| BbbError::Moodle {
            server: name.to_owned(),
            reason,
        };
        let prefix = db.table_prefix.clone();
        if prefix.len() > 32
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(err(format!(
                "table_prefix {prefix:?} may hold only letters, digits and _"
            )));
        }
        let timeout = std::time::Duration::from_secs(15);
        let url = db.url.trim();
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(timeout)
                    .connect(url)
                    .await
                    .map_err(|e| err(format!("cannot connect: {e}")))?,
            )
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            Pool::Mysql(
                MySqlPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(timeout)
                    .connect(&url)
                    .await
                    .map_err(|e| err(format!("cannot connect: {e}")))?,
            )
        } else {
            return Err(err(
                "url must start with postgres:// or mysql:// (mariadb:// also)".to_owned(),
            ));
        };
        let mut moodle = Moodle {
            name: name.to_owned(),
            pool,
            prefix,
            has_recordings_table: false,
            moderators: Default::default(),
            activities: Default::default(),
        };
        for table in ["bigbluebuttonbn", "user"] {
            if !moodle.table_exists(table).await? {
                moodle.close().await;
                return Err(err(format!(
                    "table {}{table} is missing: is this a Moodle database with the BigBlueButton activity, and is table_prefix right?",
                    db.table_prefix
                )));
            }
        }
        moodle.has_recordings_table = moodle.table_exists("bigbluebuttonbn_recordings").await?;
        Ok(moodle)
    }

    fn error(&self, e: sqlx::Error) -> BbbError {
        BbbError::Moodle {
            server: self.name.clone(),
            reason: e.to_string(),
        }
    }

    /// The statement with the table prefix in place and, for PostgreSQL, `$n` placeholders.
    fn sql(&self, template: &str) -> String {
        let text = template.replace("{p}", &self.prefix);
        match self.pool {
            Pool::Mysql(_) => text,
            Pool::Postgres(_) => {
                let mut out = String::with_capacity(text.len() + 8);
                let mut n = 0;
                for c in text.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    async fn table_exists(&self, table: &str) -> Result<bool, BbbError> {
        let q = self.sql(&format!("SELECT 1 FROM {{p}}{table} WHERE 1 = 0"));
        let result = with_pool!(self, p => sqlx::query(&q).fetch_optional(p).await.map(|_| ()));
        match result {
            Ok(()) => Ok(true),
            Err(sqlx::Error::Database(_)) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The activity owning the recording: through `bigbluebuttonbn_recordings` (processed rows
    /// only) on Moodle >= 4.0, else by the meetingID Moodle gave the meeting.
    pub async fn find_activity(
        &self,
        record_id: &str,
        meeting_id: &str,
    ) -> Result<Option<Activity>, BbbError> {
        let prefetched = self
            .activities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(record_id);
        if let Some(found) = prefetched {
            return Ok(found);
        }
        let rows = if self.has_recordings_table {
            let q = self.sql(
                "SELECT b.id, b.course, b.intro, b.participants
                 FROM {p}bigbluebuttonbn_recordings r
                 JOIN {p}bigbluebuttonbn b ON b.id = r.bigbluebuttonbnid
                 WHERE r.recordingid = ? AND r.status = ?
                 ORDER BY r.id",
            );
            with_pool!(self, p => sqlx::query(&q)
                .bind(record_id)
                .bind(STATUS_PROCESSED)
                .fetch_all(p)
                .await
                .map_err(|e| self.error(e))?
                .iter()
                .map(activity_from_row)
                .collect::<Result<Vec<_>, _>>())
        } else {
            let Some((meeting, course, instance)) = parse_meeting_id(meeting_id) else {
                return Ok(None);
            };
            let q = self.sql(
                "SELECT b.id, b.course, b.intro, b.participants FROM {p}bigbluebuttonbn b
                 WHERE b.id = ? AND b.course = ? AND b.meetingid = ?",
            );
            with_pool!(self, p => sqlx::query(&q)
                .bind(instance)
                .bind(course)
                .bind(meeting.as_str())
                .fetch_all(p)
                .await
                .map_err(|e| self.error(e))?
                .iter()
                .map(activity_from_row)
                .collect::<Result<Vec<_>, _>>())
        };
        Ok(rows.map_err(|e| self.error(e))?.into_iter().next())
    }

    /// Looks up the activities of many recordings in one query (a round trip per recording was
    /// most of a migration's time); `find_activity` then answers them from memory. Sites before
    /// Moodle 4 are matched one by one.
    pub async fn prefetch_activities(&self, record_ids: &[&str]) -> Result<(), BbbError> {
        if !self.has_recordings_table || record_ids.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; record_ids.len()].join(", ");
        let q = self.sql(&format!(
            "SELECT r.recordingid, b.id, b.course, b.intro, b.participants
             FROM {{p}}bigbluebuttonbn_recordings r
             JOIN {{p}}bigbluebuttonbn b ON b.id = r.bigbluebuttonbnid
             WHERE r.status = ? AND r.recordingid IN ({marks})
             ORDER BY r.id"
        ));
        let rows: Vec<(String, Activity)> = with_pool!(self, p => {
            let mut query = sqlx::query(&q).bind(STATUS_PROCESSED);
            for id in record_ids {
                query = query.bind(*id);
            }
            query
                .fetch_all(p)
                .await
                .map_err(|e| self.error(e))?
                .iter()
                .map(|row| Ok((row.try_get::<String, _>("recordingid")?, activity_from_row(row)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })
        .map_err(|e| self.error(e))?;
        let mut found: std::collections::HashMap<String, Option<Activity>> =
            record_ids.iter().map(|id| (id.to_string(), None)).collect();
        for (id, activity) in rows {
            // The first processed row wins, as in `find_activity`.
            let slot = found.entry(id).or_default();
            if slot.is_none() {
                *slot = Some(activity);
            }
        }
        // Replaces the previous page's: what it held was used or is not wanted (out of range).
        *self.activities.lock().unwrap_or_else(|e| e.into_inner()) = found;
        Ok(())
    }

    /// The activity's moderators: the users its rules name, then the users holding a
    /// moderator role in its course; each once, deleted users left out.
    pub async fn moderators(&self, activity: &Activity) -> Result<Vec<MoodleUser>, BbbError> {
        let cached = self.cache().get(&activity.id).cloned();
        if let Some(users) = cached {
            return Ok(users);
        }
        let users = self.lookup_moderators(activity).await?;
        self.cache().insert(activity.id, users.clone());
        Ok(users)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, Vec<MoodleUser>>> {
        self.moderators.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn lookup_moderators(&self, activity: &Activity) -> Result<Vec<MoodleUser>, BbbError> {
        let rules = moderator_rules(activity.participants.as_deref());
        let mut seen = HashSet::new();
        let mut users = Vec::new();
        let by_id = self.sql(
            "SELECT u.id, u.username, u.firstname, u.lastname, u.email FROM {p}user u
             WHERE u.id = ? AND u.deleted = 0",
        );
        for id in rules.users {
            for user in self.users(&by_id, &[id]).await? {
                if seen.insert(user.id) {
                    users.push(user);
                }
            }
        }
        let by_role = self.sql(
            "SELECT DISTINCT u.id, u.username, u.firstname, u.lastname, u.email
             FROM {p}role_assignments ra
             JOIN {p}context c ON c.id = ra.contextid
             JOIN {p}user u ON u.id = ra.userid
             WHERE c.contextlevel = ? AND c.instanceid = ? AND ra.roleid = ? AND u.deleted = 0
             ORDER BY u.id",
        );
        for role in rules.roles {
            for user in self
                .users(&by_role, &[CONTEXT_COURSE, activity.course, role])
                .await?
            {
                if seen.insert(user.id) {
                    users.push(user);
                }
            }
        }
        Ok(users)
    }

    /// The users a statement with integer parameters selects.
    async fn users(&self, sql: &str, params: &[i64]) -> Result<Vec<MoodleUser>, BbbError> {
        let rows = with_pool!(self, p => {
            let mut query = sqlx::query(sql);
            for v in params {
                query = query.bind(*v);
            }
            query
                .fetch_all(p)
                .await
                .map_err(|e| self.error(e))?
                .iter()
                .map(user_from_row)
                .collect::<Result<Vec<_>, _>>()
        });
        rows.map_err(|e| self.error(e))
    }

    /// Appends `message` to the activity's intro unless it is already there. The UPDATE only
    /// applies to the intro it read, so two runs at once cannot append it twice.
    pub async fn inform(&self, activity_id: i64, message: &str) -> Result<bool, BbbError> {
        let read = self.sql("SELECT b.intro FROM {p}bigbluebuttonbn b WHERE b.id = ?");
        let intro: Option<Option<String>> = with_pool!(self, p => sqlx::query(&read)
            .bind(activity_id)
            .fetch_optional(p)
            .await
            .map_err(|e| self.error(e))?
            .map(|row| row.try_get::<Option<String>, _>(0))
            .transpose()
            .map_err(|e| self.error(e))?);
        let Some(intro) = intro else {
            return Ok(false);
        };
        let old = intro.unwrap_or_default();
        if old.contains(message) {
            return Ok(false);
        }
        let new = if old.trim().is_empty() {
            message.to_owned()
        } else {
            format!("{old}<br>{message}")
        };
        let update = self.sql(
            "UPDATE {p}bigbluebuttonbn SET intro = ? WHERE id = ? AND COALESCE(intro, '') = ?",
        );
        let done = with_pool!(self, p => sqlx::query(&update)
            .bind(new.as_str())
            .bind(activity_id)
            .bind(old.as_str())
            .execute(p)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected());
        Ok(done == 1)
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}

fn activity_from_row<R: Row>(row: &R) -> Result<Activity, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Activity {
        id: row.try_get("id")?,
        course: row.try_get("course")?,
        intro: row.try_get("intro")?,
        participants: row.try_get("participants")?,
    })
}

fn user_from_row<R: Row>(row: &R) -> Result<MoodleUser, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let text = |col: &str| -> Result<String, sqlx::Error> {
        Ok(row.try_get::<Option<String>, _>(col)?.unwrap_or_default())
    };
    Ok(MoodleUser {
        id: row.try_get("id")?,
        username: text("username")?,
        firstname: text("firstname")?,
        lastname: text("lastname")?,
        email: text("email")?,
    })
}

/// Every configured Moodle database, by `bbb-origin-server-name`.
pub struct Moodles {
    dbs: BTreeMap<String, Moodle>,
    ignored: Vec<String>,
}

impl Moodles {
    /// Connects to each; the first that fails is the error (and the others are closed).
    pub async fn connect(
        config: &BTreeMap<String, MoodleDatabase>,
        ignored_servers: &[String],
    ) -> Result<Moodles, BbbError> {
        if config.is_empty() {
            return Err(BbbError::InvalidSource(
                "--use-database-moodle needs at least one [bbb.moodle.NAME] database (NAME = a bbb-origin-server-name, or default)".to_owned(),
            ));
        }
        let mut moodles = Moodles {
            dbs: BTreeMap::new(),
            ignored: ignored_servers.to_vec(),
        };
        for (name, db) in config {
            match Moodle::connect(name, db).await {
                Ok(m) => {
                    moodles.dbs.insert(name.clone(), m);
                }
                Err(e) => {
                    moodles.close().await;
                    return Err(e);
                }
            }
        }
        Ok(moodles)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.dbs.keys().map(String::as_str)
    }

    /// The database of the recording's origin server, else `default`; none for ignored servers.
    pub fn for_server(&self, origin_server: Option<&str>) -> Option<&Moodle> {
        let origin = origin_server.unwrap_or_default();
        if self.ignored.iter().any(|s| s == origin) {
            return None;
        }
        self.dbs.get(origin).or_else(|| self.dbs.get("default"))
    }

    /// Looks up the activities of `records` (recordID, origin server) in one query per
    /// database. A failure here is not one: each recording is then looked up on its own and
    /// reports its own error.
    pub async fn prefetch(&self, records: &[(&str, Option<&str>)]) {
        for db in self.dbs.values() {
            let ids: Vec<&str> = records
                .iter()
                .filter(|(_, origin)| {
                    self.for_server(*origin)
                        .is_some_and(|m| std::ptr::eq(m, db))
                })
                .map(|(id, _)| *id)
                .collect();
            if let Err(e) = db.prefetch_activities(&ids).await {
                tracing::debug!(error = %e, "activity prefetch failed; looking up one by one");
            }
        }
    }

    pub async fn close(&self) {
        for db in self.dbs.values() {
            db.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn rules_keep_user_and_role_moderators_only() {
        let rules = moderator_rules(Some(
            r#"[{"selectiontype":"all","selectionid":"all","role":"viewer"},
                {"selectiontype":"user","selectionid":"83","role":"moderator"},
                {"selectiontype":"user","selectionid":84,"role":"moderator"},
                {"selectiontype":"user","selectionid":"83","role":"moderator"},
                {"selectiontype":"user","selectionid":"91","role":"viewer"},
                {"selectiontype":"role","selectionid":"3","role":"moderator"},
                {"selectiontype":"group","selectionid":"5","role":"moderator"},
                {"selectiontype":"all","selectionid":"all","role":"moderator"}]"#,
        ));
        assert_eq!(rules.users, vec![83, 84]);
        assert_eq!(rules.roles, vec![3]);
        for nothing in [
            None,
            Some(""),
            Some("  "),
            Some("null"),
            Some("{}"),
            Some("[1,"),
        ] {
            assert_eq!(moderator_rules(nothing), ModeratorRules::default());
        }
    }

    #[test]
    fn rules_never_panic_on_arbitrary_json() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let pieces = [
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "\"selectiontype\"",
            "\"user\"",
            "\"role\"",
            "\"moderator\"",
            "\"selectionid\"",
            "\"83\"",
            "-1",
            "1e400",
            "null",
            "\"\\u0000\"",
        ];
        for _ in 0..2000 {
            let n = rng.gen_range(0..24);
            let text: String = (0..n)
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            let rules = moderator_rules(Some(&text));
            assert!(rules.users.iter().chain(&rules.roles).all(|id| *id > 0));
        }
    }

    #[test]
    fn meeting_ids_of_moodle() {
        assert_eq!(
            parse_meeting_id("9d287cf50490ca856ca5273bd303a7e321df6051-4-119[0]"),
            Some((
                "9d287cf50490ca856ca5273bd303a7e321df6051".to_owned(),
                4,
                119
            ))
        );
        assert_eq!(
            parse_meeting_id("abc-7-11"),
            Some(("abc".to_owned(), 7, 11))
        );
        for bad in ["", "abc", "abc-7", "-7-11", "abc-x-11", "abc-7-11[0", "m3"] {
            assert_eq!(parse_meeting_id(bad), None, "{bad}");
        }
    }
}
