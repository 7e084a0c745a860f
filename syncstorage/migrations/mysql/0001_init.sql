-- SyncStorage schema for MySQL 8 and MariaDB 10.5+. Timestamps are
-- milliseconds since the epoch. Ids and names are VARBINARY: they compare
-- and sort bytewise, trailing spaces included, as on every backend (the
-- _bin collations pad spaces: "a" and "a " would be one row); payloads are
-- plain utf8mb4 text.

CREATE TABLE collections (
    id   BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARBINARY(32) NOT NULL,
    UNIQUE KEY collections_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 AUTO_INCREMENT=101;

-- Mozilla's standard ids; custom collections get ids from 101.
INSERT INTO collections (id, name) VALUES
    (1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'), (5, 'keys'),
    (6, 'meta'), (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'),
    (11, 'addons'), (12, 'addresses'), (13, 'creditcards');

-- The user's last write of any kind: the storage-level last-modified time,
-- the floor for the next write's timestamp, and the row writers lock.
CREATE TABLE user_timestamps (
    userid   BIGINT NOT NULL PRIMARY KEY,
    modified BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE user_collections (
    userid     BIGINT NOT NULL,
    collection BIGINT NOT NULL,
    modified   BIGINT NOT NULL,
    PRIMARY KEY (userid, collection)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE bsos (
    userid       BIGINT NOT NULL,
    collection   BIGINT NOT NULL,
    id           VARBINARY(64) NOT NULL,
    sortindex    INT NULL,
    payload      MEDIUMTEXT NOT NULL,
    payload_size BIGINT NOT NULL,
    modified     BIGINT NOT NULL,
    expiry       BIGINT NOT NULL,
    -- sort=index order: absent sortindexes after every real one (|v| < 1e9).
    sortkey      BIGINT AS (COALESCE(sortindex, -1000000000)) STORED,
    PRIMARY KEY (userid, collection, id),
    -- Keyset paging (see docs/adr/0002-keyset-paging.md).
    KEY bsos_modified_idx (userid, collection, modified, id),
    KEY bsos_sortindex_idx (userid, collection, sortkey, id),
    KEY bsos_expiry_idx (expiry)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE batches (
    id         VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    userid     BIGINT NOT NULL,
    collection BIGINT NOT NULL,
    expiry     BIGINT NOT NULL,
    records    BIGINT NOT NULL,
    bytes      BIGINT NOT NULL,
    -- Opening order: a user's oldest batches are forgotten first.
    opened     BIGINT NOT NULL AUTO_INCREMENT UNIQUE,
    KEY batches_user_idx (userid, collection),
    KEY batches_expiry_idx (expiry)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Staged writes in upload order, as JSON objects (absent fields absent).
CREATE TABLE batch_items (
    batch VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    seq   BIGINT NOT NULL,
    item  MEDIUMTEXT NOT NULL,
    PRIMARY KEY (batch, seq),
    CONSTRAINT batch_items_batch FOREIGN KEY (batch) REFERENCES batches (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
