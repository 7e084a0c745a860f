-- SyncStorage schema for SQLite. Timestamps are milliseconds since the epoch.

CREATE TABLE collections (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- Mozilla's standard ids; custom collections get ids from 101.
INSERT INTO collections (id, name) VALUES
    (1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'), (5, 'keys'),
    (6, 'meta'), (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'),
    (11, 'addons'), (12, 'addresses'), (13, 'creditcards');

-- The user's last write of any kind: the storage-level last-modified time
-- and the floor for the next write's timestamp.
CREATE TABLE user_timestamps (
    userid   INTEGER PRIMARY KEY,
    modified INTEGER NOT NULL
);

CREATE TABLE user_collections (
    userid     INTEGER NOT NULL,
    collection INTEGER NOT NULL,
    modified   INTEGER NOT NULL,
    PRIMARY KEY (userid, collection)
) WITHOUT ROWID;

CREATE TABLE bsos (
    userid       INTEGER NOT NULL,
    collection   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    sortindex    INTEGER,
    payload      TEXT NOT NULL,
    payload_size INTEGER NOT NULL,
    modified     INTEGER NOT NULL,
    expiry       INTEGER NOT NULL,
    -- sort=index order: absent sortindexes after every real one (|v| < 1e9).
    -- A column, not an index expression, so keyset row-value comparisons can
    -- seek in bsos_sortindex_idx (an expression index only filters).
    sortkey      INTEGER GENERATED ALWAYS AS (COALESCE(sortindex, -1000000000)) VIRTUAL,
    PRIMARY KEY (userid, collection, id)
);

-- Keyset paging (see docs/adr/0002-keyset-paging.md).
CREATE INDEX bsos_modified_idx ON bsos (userid, collection, modified, id);
CREATE INDEX bsos_sortindex_idx ON bsos (userid, collection, sortkey, id);
CREATE INDEX bsos_expiry_idx ON bsos (expiry);

CREATE TABLE batches (
    id         TEXT PRIMARY KEY,
    userid     INTEGER NOT NULL,
    collection INTEGER NOT NULL,
    expiry     INTEGER NOT NULL,
    records    INTEGER NOT NULL,
    bytes      INTEGER NOT NULL
);
CREATE INDEX batches_user_idx ON batches (userid, collection);
CREATE INDEX batches_expiry_idx ON batches (expiry);

-- Staged writes in upload order, as JSON objects (absent fields absent).
CREATE TABLE batch_items (
    batch TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    seq   INTEGER NOT NULL,
    item  TEXT NOT NULL,
    PRIMARY KEY (batch, seq)
);
