-- Mozilla's tokenserver schema, column for column and in the same order
-- (operators' tools read these tables with SELECT * by position).
-- IF NOT EXISTS: an existing tokenserver database is adopted unchanged.

CREATE TABLE IF NOT EXISTS services (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service VARCHAR(30) UNIQUE,
    pattern VARCHAR(128)
);

CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service INTEGER NOT NULL,
    node VARCHAR(64) NOT NULL,
    available INTEGER NOT NULL,
    current_load INTEGER NOT NULL,
    capacity INTEGER NOT NULL,
    downed INTEGER NOT NULL,
    backoff INTEGER NOT NULL,
    UNIQUE (service, node)
);

-- AUTOINCREMENT: a uid is never reused, so a new user can never inherit a
-- purged user's data on a storage node.
CREATE TABLE IF NOT EXISTS users (
    uid INTEGER PRIMARY KEY AUTOINCREMENT,
    service INTEGER NOT NULL,
    email VARCHAR(255) NOT NULL,
    generation BIGINT NOT NULL,
    client_state VARCHAR(32) NOT NULL,
    created_at BIGINT NOT NULL,
    replaced_at BIGINT NULL,
    nodeid BIGINT NOT NULL,
    keys_changed_at BIGINT NULL
);

CREATE INDEX IF NOT EXISTS lookup_idx ON users (email, service, created_at);
CREATE INDEX IF NOT EXISTS replaced_at_idx ON users (service, replaced_at);
CREATE INDEX IF NOT EXISTS node_idx ON users (nodeid);

INSERT INTO services (service, pattern)
SELECT 'sync-1.5', '{node}/1.5/{uid}'
WHERE NOT EXISTS (SELECT 1 FROM services WHERE service = 'sync-1.5');
