-- Who may sync (ADR 0014): allowlist entries the operator added at run
-- time (the configured ones are not stored), and the cap on accounts when
-- the operator set one at run time (no row: the configured cap).
CREATE TABLE IF NOT EXISTS access_entries (
    service INT NOT NULL,
    entry VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (service, entry)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
CREATE TABLE IF NOT EXISTS access_limits (
    service INT NOT NULL PRIMARY KEY,
    max_users BIGINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
