//! Real Moodle 4.2 databases for the tests that read and write Moodle (bbb migrate's owner lookup).
//!
//! `scripts/test` starts a throw-away PostgreSQL and a throw-away MariaDB (`start_test_databases` in
//! scripts/lib.sh) and exports their admin URLs; [`fresh_moodle`] makes a new database on one of
//! them, loads `tests/moodle/schema-<engine>.sql` and `tests/moodle/seed.sql` with the table
//! prefix filled in, and returns its URL. No server, no test: a missing URL is a panic, never a skip.
#![allow(dead_code)]

use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Row as _};

const SCHEMA_POSTGRES: &str = include_str!("../../../../tests/moodle/schema-postgres.sql");
const SCHEMA_MYSQL: &str = include_str!("../../../../tests/moodle/schema-mysql.sql");
const SEED: &str = include_str!("../../../../tests/moodle/seed.sql");

/// PostgreSQL's sequences do not move on inserts with explicit ids (MySQL's AUTO_INCREMENT does):
/// after the seed, every `id` sequence restarts after the largest id, so rows inserted without an
/// id get the next free one on both engines.
const RESET_POSTGRES_SEQUENCES: &str = r#"
DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT table_name FROM information_schema.columns
             WHERE table_schema = current_schema() AND column_name = 'id'
               AND column_default LIKE 'nextval(%'
    LOOP
        EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), COALESCE((SELECT MAX(id) FROM %I), 0) + 1, false)', t, t);
    END LOOP;
END
$$;
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Postgres, Engine::Mysql];

    /// The variable holding the admin URL of this engine's test server.
    pub fn env_var(self) -> &'static str {
        match self {
            Engine::Postgres => "OPENVOD_TEST_POSTGRES_URL",
            Engine::Mysql => "OPENVOD_TEST_MYSQL_URL",
        }
    }

    /// The admin URL (a login able to CREATE DATABASE); panics when the server was not started.
    pub fn admin_url(self) -> String {
        let var = self.env_var();
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => url,
            _ => panic!(
                "{var} is not set: the Moodle tests need a real {} server. Run scripts/test (it \
                 starts one), or in this shell `. scripts/lib.sh && start_test_databases` first",
                match self {
                    Engine::Postgres => "PostgreSQL",
                    Engine::Mysql => "MariaDB/MySQL",
                }
            ),
        }
    }

    fn of_url(url: &str) -> Engine {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Engine::Mysql
        } else {
            panic!("not a postgres:// or mysql:// URL: {url}")
        }
    }

    fn schema(self) -> &'static str {
        match self {
            Engine::Postgres => SCHEMA_POSTGRES,
            Engine::Mysql => SCHEMA_MYSQL,
        }
    }
}

/// A new database named `moodle_<random hex>` holding the seeded Moodle tables, their names
/// prefixed with `prefix` (Moodle's default is `mdl_`). Returns its URL.
pub async fn fresh_moodle(engine: Engine, prefix: &str) -> String {
    assert!(
        prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "table prefix {prefix:?}: lowercase letters, digits and _ only"
    );
    let admin = engine.admin_url();
    let name = format!("moodle_{:016x}", rand::random::<u64>());
    let create = match engine {
        Engine::Postgres => format!("CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0"),
        Engine::Mysql => {
            format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        }
    };
    exec(&admin, &create).await;

    let mut url = url::Url::parse(&admin).unwrap_or_else(|e| panic!("{}: {e}", engine.env_var()));
    url.set_path(&format!("/{name}"));
    let url = url.to_string();

    let sql = format!("{}\n{}", engine.schema(), SEED).replace("{prefix}", prefix);
    exec(&url, &sql).await;
    if engine == Engine::Postgres {
        exec(&url, RESET_POSTGRES_SEQUENCES).await;
    }
    url
}

/// Runs `sql` (one statement or several separated by `;`) on the database at `url`.
pub async fn exec(url: &str, sql: &str) {
    let fail = |e: sqlx::Error| -> ! { panic!("{url}: {e}\nwhile running:\n{sql}") };
    match Engine::of_url(url) {
        Engine::Postgres => {
            let mut conn = connect_postgres(url).await;
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| fail(e));
            let _ = conn.close().await;
        }
        Engine::Mysql => {
            let mut conn = connect_mysql(url).await;
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| fail(e));
            let _ = conn.close().await;
        }
    }
}

/// The rows `sql` returns, every value as its text form (`None` for NULL), e.g. to compare whole
/// tables before and after a run. Queries go through the text protocol on both engines, so
/// numbers come back as their decimal text without a cast (PostgreSQL booleans as `t`/`f`).
pub async fn query_strings(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let fail = |e: sqlx::Error| -> ! { panic!("{url}: {e}\nwhile running:\n{sql}") };
    match Engine::of_url(url) {
        Engine::Postgres => {
            let mut conn = connect_postgres(url).await;
            let rows = sqlx::raw_sql(sql)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| fail(e));
            let _ = conn.close().await;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get_unchecked::<Option<String>, _>(i))
                        .collect::<Result<_, _>>()
                        .unwrap_or_else(|e| fail(e))
                })
                .collect()
        }
        Engine::Mysql => {
            let mut conn = connect_mysql(url).await;
            let rows = sqlx::raw_sql(sql)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| fail(e));
            let _ = conn.close().await;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get_unchecked::<Option<String>, _>(i))
                        .collect::<Result<_, _>>()
                        .unwrap_or_else(|e| fail(e))
                })
                .collect()
        }
    }
}

async fn connect_postgres(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("cannot connect to {url}: {e} (is the server of start_test_databases running?)")
    })
}

async fn connect_mysql(url: &str) -> MySqlConnection {
    MySqlConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("cannot connect to {url}: {e} (is the server of start_test_databases running?)")
    })
}

fn strings(values: &[Option<&str>]) -> Vec<Option<String>> {
    values.iter().map(|v| v.map(str::to_owned)).collect()
}

async fn smoke(engine: Engine, prefix: &str) {
    let url = fresh_moodle(engine, prefix).await;
    assert!(url.contains("/moodle_"), "{url}");

    let version = query_strings(&url, "SELECT version()").await;
    let expected = match engine {
        Engine::Postgres => "PostgreSQL",
        Engine::Mysql => "MariaDB",
    };
    assert!(
        version[0][0].as_deref().unwrap_or("").contains(expected),
        "{version:?}"
    );

    // UTF-8 end to end: 'Léa' is three characters, not a double-encoded four.
    let lea = query_strings(
        &url,
        &format!(
            "SELECT firstname, CHAR_LENGTH(firstname), username FROM {prefix}user WHERE id = 91"
        ),
    )
    .await;
    assert_eq!(
        lea,
        vec![strings(&[Some("Léa"), Some("3"), Some("lleroy")])]
    );

    let activities = query_strings(
        &url,
        &format!(
            "SELECT id, course, name, intro, meetingid, participants, introformat, recordings_deleted \
             FROM {prefix}bigbluebuttonbn ORDER BY id"
        ),
    )
    .await;
    assert_eq!(activities.len(), 4, "{activities:?}");
    assert_eq!(
        activities[2],
        strings(&[
            Some("13"),
            Some("8"),
            Some("Cours C"),
            None,
            Some("g7h8i9"),
            None,
            Some("1"),
            Some("1")
        ])
    );
    assert_eq!(activities[3][5].as_deref(), Some(""));
    assert!(activities[0][5]
        .as_deref()
        .unwrap()
        .contains(r#"{"selectiontype":"user","selectionid":"83","role":"moderator"}"#));

    let counts = query_strings(
        &url,
        &format!(
            "SELECT (SELECT COUNT(*) FROM {prefix}user), (SELECT COUNT(*) FROM {prefix}context), \
             (SELECT COUNT(*) FROM {prefix}role_assignments), \
             (SELECT COUNT(*) FROM {prefix}bigbluebuttonbn_recordings), \
             (SELECT COUNT(*) FROM {prefix}bigbluebuttonbn_logs)"
        ),
    )
    .await;
    assert_eq!(
        counts,
        vec![strings(&[
            Some("5"),
            Some("3"),
            Some("3"),
            Some("0"),
            Some("0")
        ])]
    );

    // Rows inserted without an id take the next free one (sequences follow the seed's ids).
    exec(
        &url,
        &format!(
            "INSERT INTO {prefix}bigbluebuttonbn_recordings (courseid, bigbluebuttonbnid, recordingid, status) \
             VALUES (7, 11, 'rec-1', 2);\n\
             INSERT INTO {prefix}user (username, firstname, lastname, email) \
             VALUES ('nouveau', 'Zoé', 'Nouveau', 'zoe@example.org')"
        ),
    )
    .await;
    let inserted = query_strings(
        &url,
        &format!(
            "SELECT id, recordingid, status, groupid, importeddata FROM {prefix}bigbluebuttonbn_recordings"
        ),
    )
    .await;
    assert_eq!(
        inserted,
        vec![strings(&[Some("1"), Some("rec-1"), Some("2"), None, None])]
    );
    let user = query_strings(
        &url,
        &format!(
            "SELECT id, firstname, auth, deleted FROM {prefix}user WHERE username = 'nouveau'"
        ),
    )
    .await;
    assert_eq!(
        user,
        vec![strings(&[
            Some("92"),
            Some("Zoé"),
            Some("manual"),
            Some("0")
        ])]
    );

    // Each call makes its own database.
    let other = fresh_moodle(engine, prefix).await;
    assert_ne!(other, url);
    let empty = query_strings(
        &other,
        &format!("SELECT COUNT(*) FROM {prefix}bigbluebuttonbn_recordings"),
    )
    .await;
    assert_eq!(empty, vec![strings(&[Some("0")])]);
}

#[tokio::test]
async fn moodle_databases_are_real_and_seeded_postgres() {
    smoke(Engine::Postgres, "mdl_").await;
}

#[tokio::test]
async fn moodle_databases_are_real_and_seeded_mysql() {
    smoke(Engine::Mysql, "mdl_").await;
}

/// Another prefix on both engines: `{prefix}` is all the SQL files assume.
#[tokio::test]
async fn moodle_databases_take_another_table_prefix() {
    for engine in Engine::ALL {
        let url = fresh_moodle(engine, "m4_").await;
        let rows = query_strings(&url, "SELECT name FROM m4_bigbluebuttonbn WHERE id = 12").await;
        assert_eq!(rows, vec![strings(&[Some("Cours B")])], "{engine:?}");
    }
}
