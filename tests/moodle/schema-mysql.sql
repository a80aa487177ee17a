-- The Moodle 4.2 tables that bbb migrate reads and writes (XMLDB 20230213), MySQL/MariaDB
-- flavour, typed the way Moodle's MySQL generator types them: int1-2 TINYINT, int3-4 SMALLINT,
-- int5-6 MEDIUMINT, int7-9 INT, int10 BIGINT, charN VARCHAR(N), text LONGTEXT, id AUTO_INCREMENT;
-- InnoDB, utf8mb4. `{prefix}` is the table prefix (`mdl_` by default), replaced by the test
-- support (tests/it/moodle_db.rs).

CREATE TABLE {prefix}bigbluebuttonbn (
    id BIGINT(10) NOT NULL AUTO_INCREMENT,
    type TINYINT(2) NOT NULL DEFAULT 0,
    course BIGINT(10) NOT NULL DEFAULT 0,
    name VARCHAR(255) NOT NULL DEFAULT '',
    intro LONGTEXT,
    introformat SMALLINT(4) NOT NULL DEFAULT 1,
    meetingid VARCHAR(255) NOT NULL DEFAULT '',
    moderatorpass VARCHAR(255) NOT NULL DEFAULT '',
    viewerpass VARCHAR(255) NOT NULL DEFAULT '',
    wait TINYINT(1) NOT NULL DEFAULT 0,
    record TINYINT(1) NOT NULL DEFAULT 0,
    recordallfromstart TINYINT(1) NOT NULL DEFAULT 0,
    recordhidebutton TINYINT(1) NOT NULL DEFAULT 0,
    welcome LONGTEXT,
    voicebridge MEDIUMINT(5) NOT NULL DEFAULT 0,
    openingtime BIGINT(10) NOT NULL DEFAULT 0,
    closingtime BIGINT(10) NOT NULL DEFAULT 0,
    timecreated BIGINT(10) NOT NULL DEFAULT 0,
    timemodified BIGINT(10) NOT NULL DEFAULT 0,
    presentation LONGTEXT,
    participants LONGTEXT,
    userlimit SMALLINT(3) NOT NULL DEFAULT 0,
    recordings_html TINYINT(1) NOT NULL DEFAULT 0,
    recordings_deleted TINYINT(1) NOT NULL DEFAULT 1,
    recordings_imported TINYINT(1) NOT NULL DEFAULT 0,
    recordings_preview TINYINT(1) NOT NULL DEFAULT 0,
    clienttype TINYINT(1) NOT NULL DEFAULT 0,
    muteonstart TINYINT(1) NOT NULL DEFAULT 0,
    disablecam TINYINT(1) NOT NULL DEFAULT 0,
    disablemic TINYINT(1) NOT NULL DEFAULT 0,
    disableprivatechat TINYINT(1) NOT NULL DEFAULT 0,
    disablepublicchat TINYINT(1) NOT NULL DEFAULT 0,
    disablenote TINYINT(1) NOT NULL DEFAULT 0,
    hideuserlist TINYINT(1) NOT NULL DEFAULT 0,
    completionattendance INT(9) NOT NULL DEFAULT 0,
    completionengagementchats INT(9) NOT NULL DEFAULT 0,
    completionengagementtalks INT(9) NOT NULL DEFAULT 0,
    completionengagementraisehand INT(9) NOT NULL DEFAULT 0,
    completionengagementpollvotes INT(9) NOT NULL DEFAULT 0,
    completionengagementemojis INT(9) NOT NULL DEFAULT 0,
    guestallowed TINYINT(2) DEFAULT 0,
    mustapproveuser TINYINT(2) DEFAULT 1,
    guestlinkuid VARCHAR(1024),
    guestpassword VARCHAR(255),
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE {prefix}bigbluebuttonbn_recordings (
    id BIGINT(10) NOT NULL AUTO_INCREMENT,
    courseid BIGINT(10) NOT NULL,
    bigbluebuttonbnid BIGINT(10) NOT NULL,
    groupid BIGINT(10),
    recordingid VARCHAR(64) NOT NULL DEFAULT '',
    headless TINYINT(1) NOT NULL DEFAULT 0,
    imported TINYINT(1) NOT NULL DEFAULT 0,
    status TINYINT(1) NOT NULL DEFAULT 0,
    importeddata LONGTEXT,
    timecreated BIGINT(10) NOT NULL DEFAULT 0,
    usermodified BIGINT(10) NOT NULL DEFAULT 0,
    timemodified BIGINT(10) NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    KEY {prefix}bigbreco_cou_ix (courseid),
    KEY {prefix}bigbreco_rec_ix (recordingid),
    KEY {prefix}bigbreco_big_ix (bigbluebuttonbnid),
    KEY {prefix}bigbreco_use_ix (usermodified)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE {prefix}bigbluebuttonbn_logs (
    id BIGINT(10) NOT NULL AUTO_INCREMENT,
    courseid BIGINT(10) NOT NULL,
    bigbluebuttonbnid BIGINT(10) NOT NULL,
    userid BIGINT(10),
    timecreated BIGINT(10) NOT NULL DEFAULT 0,
    meetingid VARCHAR(256) NOT NULL DEFAULT '',
    log VARCHAR(32) NOT NULL DEFAULT '',
    meta LONGTEXT,
    PRIMARY KEY (id),
    KEY {prefix}bigblogs_cou_ix (courseid),
    KEY {prefix}bigblogs_log_ix (log),
    KEY {prefix}bigblogs_coubiguselog_ix (courseid, bigbluebuttonbnid, userid, log),
    KEY {prefix}bigblogs_uselog_ix (userid, log),
    KEY {prefix}bigblogs_coubig_ix (courseid, bigbluebuttonbnid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Core tables, only the columns the migration can touch.
CREATE TABLE {prefix}user (
    id BIGINT(10) NOT NULL AUTO_INCREMENT,
    auth VARCHAR(20) NOT NULL DEFAULT 'manual',
    deleted TINYINT(1) NOT NULL DEFAULT 0,
    username VARCHAR(100) NOT NULL DEFAULT '',
    firstname VARCHAR(100) NOT NULL DEFAULT '',
    lastname VARCHAR(100) NOT NULL DEFAULT '',
    email VARCHAR(100) NOT NULL DEFAULT '',
    PRIMARY KEY (id),
    KEY {prefix}user_use_ix (username),
    KEY {prefix}user_del_ix (deleted)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE {prefix}context (
    id BIGINT(10) NOT NULL AUTO_INCREMENT,
    contextlevel BIGINT(10) NOT NULL DEFAULT 0,
    instanceid BIGINT(10) NOT NULL DEFAULT 0,
    path VARCHAR(255),
    depth TINYINT(2) NOT NULL DEFAULT 0,
    locked TINYINT(2) NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE KEY {prefix}cont_conins_uix (contextlevel, instanceid),
    KEY {prefix}cont_ins_ix (instanceid),
    KEY {prefix}cont_pat_ix (path)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE {prefix}role_assignments (
    id BIGINT(10) NOT NULL AUTO_INCREMENT,
    roleid BIGINT(10) NOT NULL DEFAULT 0,
    contextid BIGINT(10) NOT NULL DEFAULT 0,
    userid BIGINT(10) NOT NULL DEFAULT 0,
    timemodified BIGINT(10) NOT NULL DEFAULT 0,
    modifierid BIGINT(10) NOT NULL DEFAULT 0,
    component VARCHAR(100) NOT NULL DEFAULT '',
    itemid BIGINT(10) NOT NULL DEFAULT 0,
    sortorder BIGINT(10) NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    KEY {prefix}roleassi_sor_ix (sortorder),
    KEY {prefix}roleassi_rolcon_ix (roleid, contextid),
    KEY {prefix}roleassi_useconrol_ix (userid, contextid, roleid),
    KEY {prefix}roleassi_comiteuse_ix (component, itemid, userid),
    KEY {prefix}roleassi_rol_ix (roleid),
    KEY {prefix}roleassi_con_ix (contextid),
    KEY {prefix}roleassi_use_ix (userid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
