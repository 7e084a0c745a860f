-- Mozilla's tokenserver schema for MySQL/MariaDB (the final state of
-- tokenserver-mysql's migrations), column for column and in the same order
-- (operators' tools read these tables with SELECT * by position).
-- IF NOT EXISTS: an existing tokenserver database is adopted unchanged.
-- The indexes are part of CREATE TABLE: MySQL has no CREATE INDEX IF NOT
-- EXISTS. InnoDB keeps its AUTO_INCREMENT counters across restarts (MySQL
-- 8+, MariaDB 10.2.4+), so a purged user's uid is never handed out again.

CREATE TABLE IF NOT EXISTS services (
    id INT NOT NULL AUTO_INCREMENT,
    service VARCHAR(30) NULL,
    pattern VARCHAR(128) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY service (service)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS nodes (
    id BIGINT NOT NULL AUTO_INCREMENT,
    service INT NOT NULL,
    node VARCHAR(64) NOT NULL,
    available INT NOT NULL,
    current_load INT NOT NULL,
    capacity INT NOT NULL,
    downed INT NOT NULL,
    backoff INT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY unique_idx (service, node)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS users (
    uid BIGINT NOT NULL AUTO_INCREMENT,
    service INT NOT NULL,
    email VARCHAR(255) NOT NULL,
    generation BIGINT NOT NULL,
    client_state VARCHAR(32) NOT NULL,
    created_at BIGINT NOT NULL,
    replaced_at BIGINT NULL,
    nodeid BIGINT NOT NULL,
    keys_changed_at BIGINT NULL,
    PRIMARY KEY (uid),
    KEY lookup_idx (email, service, created_at),
    KEY replaced_at_idx (service, replaced_at),
    KEY node_idx (nodeid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

INSERT INTO services (service, pattern)
SELECT 'sync-1.5', '{node}/1.5/{uid}' FROM DUAL
WHERE NOT EXISTS (SELECT 1 FROM services WHERE service = 'sync-1.5');
