-- The Moodle 4.2 tables that bbb migrate reads and writes (XMLDB 20230213), PostgreSQL flavour,
-- typed the way Moodle's PostgreSQL generator types them: int1-4 SMALLINT, int5-9 INTEGER,
-- int10 BIGINT, charN VARCHAR(N), text TEXT, id BIGSERIAL. `{prefix}` is the table prefix
-- (`mdl_` by default), replaced by the test support (tests/it/moodle_db.rs).

CREATE TABLE {prefix}bigbluebuttonbn (
    id BIGSERIAL PRIMARY KEY,
    type SMALLINT NOT NULL DEFAULT 0,
    course BIGINT NOT NULL DEFAULT 0,
    name VARCHAR(255) NOT NULL DEFAULT '',
    intro TEXT,
    introformat SMALLINT NOT NULL DEFAULT 1,
    meetingid VARCHAR(255) NOT NULL DEFAULT '',
    moderatorpass VARCHAR(255) NOT NULL DEFAULT '',
    viewerpass VARCHAR(255) NOT NULL DEFAULT '',
    wait SMALLINT NOT NULL DEFAULT 0,
    record SMALLINT NOT NULL DEFAULT 0,
    recordallfromstart SMALLINT NOT NULL DEFAULT 0,
    recordhidebutton SMALLINT NOT NULL DEFAULT 0,
    welcome TEXT,
    voicebridge INTEGER NOT NULL DEFAULT 0,
    openingtime BIGINT NOT NULL DEFAULT 0,
    closingtime BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0,
    presentation TEXT,
    participants TEXT,
    userlimit SMALLINT NOT NULL DEFAULT 0,
    recordings_html SMALLINT NOT NULL DEFAULT 0,
    recordings_deleted SMALLINT NOT NULL DEFAULT 1,
    recordings_imported SMALLINT NOT NULL DEFAULT 0,
    recordings_preview SMALLINT NOT NULL DEFAULT 0,
    clienttype SMALLINT NOT NULL DEFAULT 0,
    muteonstart SMALLINT NOT NULL DEFAULT 0,
    disablecam SMALLINT NOT NULL DEFAULT 0,
    disablemic SMALLINT NOT NULL DEFAULT 0,
    disableprivatechat SMALLINT NOT NULL DEFAULT 0,
    disablepublicchat SMALLINT NOT NULL DEFAULT 0,
    disablenote SMALLINT NOT NULL DEFAULT 0,
    hideuserlist SMALLINT NOT NULL DEFAULT 0,
    completionattendance INTEGER NOT NULL DEFAULT 0,
    completionengagementchats INTEGER NOT NULL DEFAULT 0,
    completionengagementtalks INTEGER NOT NULL DEFAULT 0,
    completionengagementraisehand INTEGER NOT NULL DEFAULT 0,
    completionengagementpollvotes INTEGER NOT NULL DEFAULT 0,
    completionengagementemojis INTEGER NOT NULL DEFAULT 0,
    guestallowed SMALLINT DEFAULT 0,
    mustapproveuser SMALLINT DEFAULT 1,
    guestlinkuid VARCHAR(1024),
    guestpassword VARCHAR(255)
);

CREATE TABLE {prefix}bigbluebuttonbn_recordings (
    id BIGSERIAL PRIMARY KEY,
    courseid BIGINT NOT NULL,
    bigbluebuttonbnid BIGINT NOT NULL,
    groupid BIGINT,
    recordingid VARCHAR(64) NOT NULL DEFAULT '',
    headless SMALLINT NOT NULL DEFAULT 0,
    imported SMALLINT NOT NULL DEFAULT 0,
    status SMALLINT NOT NULL DEFAULT 0,
    importeddata TEXT,
    timecreated BIGINT NOT NULL DEFAULT 0,
    usermodified BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX {prefix}bigbreco_cou_ix ON {prefix}bigbluebuttonbn_recordings (courseid);
CREATE INDEX {prefix}bigbreco_rec_ix ON {prefix}bigbluebuttonbn_recordings (recordingid);
CREATE INDEX {prefix}bigbreco_big_ix ON {prefix}bigbluebuttonbn_recordings (bigbluebuttonbnid);
CREATE INDEX {prefix}bigbreco_use_ix ON {prefix}bigbluebuttonbn_recordings (usermodified);

CREATE TABLE {prefix}bigbluebuttonbn_logs (
    id BIGSERIAL PRIMARY KEY,
    courseid BIGINT NOT NULL,
    bigbluebuttonbnid BIGINT NOT NULL,
    userid BIGINT,
    timecreated BIGINT NOT NULL DEFAULT 0,
    meetingid VARCHAR(256) NOT NULL DEFAULT '',
    log VARCHAR(32) NOT NULL DEFAULT '',
    meta TEXT
);
CREATE INDEX {prefix}bigblogs_cou_ix ON {prefix}bigbluebuttonbn_logs (courseid);
CREATE INDEX {prefix}bigblogs_log_ix ON {prefix}bigbluebuttonbn_logs (log);
CREATE INDEX {prefix}bigblogs_coubiguselog_ix ON {prefix}bigbluebuttonbn_logs (courseid, bigbluebuttonbnid, userid, log);
CREATE INDEX {prefix}bigblogs_uselog_ix ON {prefix}bigbluebuttonbn_logs (userid, log);
CREATE INDEX {prefix}bigblogs_coubig_ix ON {prefix}bigbluebuttonbn_logs (courseid, bigbluebuttonbnid);

-- Core tables, only the columns the migration can touch.
CREATE TABLE {prefix}user (
    id BIGSERIAL PRIMARY KEY,
    auth VARCHAR(20) NOT NULL DEFAULT 'manual',
    deleted SMALLINT NOT NULL DEFAULT 0,
    username VARCHAR(100) NOT NULL DEFAULT '',
    firstname VARCHAR(100) NOT NULL DEFAULT '',
    lastname VARCHAR(100) NOT NULL DEFAULT '',
    email VARCHAR(100) NOT NULL DEFAULT ''
);
CREATE INDEX {prefix}user_use_ix ON {prefix}user (username);
CREATE INDEX {prefix}user_del_ix ON {prefix}user (deleted);

CREATE TABLE {prefix}context (
    id BIGSERIAL PRIMARY KEY,
    contextlevel BIGINT NOT NULL DEFAULT 0,
    instanceid BIGINT NOT NULL DEFAULT 0,
    path VARCHAR(255),
    depth SMALLINT NOT NULL DEFAULT 0,
    locked SMALLINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}cont_conins_uix ON {prefix}context (contextlevel, instanceid);
CREATE INDEX {prefix}cont_ins_ix ON {prefix}context (instanceid);
CREATE INDEX {prefix}cont_pat_ix ON {prefix}context (path);

CREATE TABLE {prefix}role_assignments (
    id BIGSERIAL PRIMARY KEY,
    roleid BIGINT NOT NULL DEFAULT 0,
    contextid BIGINT NOT NULL DEFAULT 0,
    userid BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0,
    modifierid BIGINT NOT NULL DEFAULT 0,
    component VARCHAR(100) NOT NULL DEFAULT '',
    itemid BIGINT NOT NULL DEFAULT 0,
    sortorder BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX {prefix}roleassi_sor_ix ON {prefix}role_assignments (sortorder);
CREATE INDEX {prefix}roleassi_rolcon_ix ON {prefix}role_assignments (roleid, contextid);
CREATE INDEX {prefix}roleassi_useconrol_ix ON {prefix}role_assignments (userid, contextid, roleid);
CREATE INDEX {prefix}roleassi_comiteuse_ix ON {prefix}role_assignments (component, itemid, userid);
CREATE INDEX {prefix}roleassi_rol_ix ON {prefix}role_assignments (roleid);
CREATE INDEX {prefix}roleassi_con_ix ON {prefix}role_assignments (contextid);
CREATE INDEX {prefix}roleassi_use_ix ON {prefix}role_assignments (userid);
