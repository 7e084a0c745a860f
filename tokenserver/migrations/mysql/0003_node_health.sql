-- What the tokenserver's checks of each node's /__heartbeat__ found. A node
-- the checks put `down` gets no new users until one succeeds again; the
-- operator's `nodes.downed` is never touched. Times in milliseconds.
CREATE TABLE IF NOT EXISTS node_health (
    nodeid BIGINT NOT NULL PRIMARY KEY,
    failures BIGINT NOT NULL,
    down BIGINT NOT NULL,
    last_check BIGINT NOT NULL,
    last_ok BIGINT NULL,
    down_since BIGINT NULL,
    last_error VARCHAR(255) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
