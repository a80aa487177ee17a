-- Seed data for both engines (plain INSERTs with explicit ids; `{prefix}` is the table prefix).
-- Courses 7 and 8, four BigBlueButton activities covering the participants shapes: user
-- moderators (11), a role rule plus a user viewer (12), NULL (13) and empty (14).
-- Columns not listed keep Moodle's defaults. No recordings: each test inserts the ones it needs.

INSERT INTO {prefix}user (id, auth, deleted, username, firstname, lastname, email) VALUES
    (2, 'manual', 0, 'admin', 'Admin', 'User', 'admin@example.org'),
    (83, 'manual', 0, 'jdupont', 'Jean', 'Dupont', 'jean.dupont@example.org'),
    (84, 'manual', 0, 'mmartin', 'Marie', 'Martin', 'marie.martin@example.org'),
    (90, 'manual', 0, 'ppetit', 'Paul', 'Petit', 'paul.petit@example.org'),
    (91, 'manual', 0, 'lleroy', 'Léa', 'Leroy', 'lea.leroy@example.org');

-- contextlevel 50 = course, 70 = module.
INSERT INTO {prefix}context (id, contextlevel, instanceid, path, depth, locked) VALUES
    (700, 50, 7, '/1/3/700', 3, 0),
    (701, 50, 8, '/1/3/701', 3, 0),
    (702, 70, 11, '/1/3/700/702', 4, 0);

-- roleid 3 = editingteacher, 5 = student.
INSERT INTO {prefix}role_assignments (id, roleid, contextid, userid) VALUES
    (1, 3, 700, 90),
    (2, 5, 700, 91),
    (3, 3, 701, 84);

INSERT INTO {prefix}bigbluebuttonbn (id, course, name, intro, meetingid, participants) VALUES
    (11, 7, 'Cours A', '<p>Intro A</p>', 'a1b2c3', '[{"selectiontype":"all","selectionid":"all","role":"viewer"},{"selectiontype":"user","selectionid":"83","role":"moderator"},{"selectiontype":"user","selectionid":"84","role":"moderator"}]'),
    (12, 7, 'Cours B', '', 'd4e5f6', '[{"selectiontype":"all","selectionid":"all","role":"viewer"},{"selectiontype":"role","selectionid":"3","role":"moderator"},{"selectiontype":"user","selectionid":"91","role":"viewer"}]'),
    (13, 8, 'Cours C', NULL, 'g7h8i9', NULL),
    (14, 8, 'Cours D', '<p>D</p>', 'j0k1l2', '');
