-- Tokens this node refuses, as the tokenserver's notices say (ADR 0012).
-- Every process serving the node reads them from here.

-- Every token of these uids; a row can go once every such token has
-- expired (`expires`, unix seconds).
CREATE TABLE revoked_uids (
    uid   BIGINT PRIMARY KEY,
    expires BIGINT NOT NULL
) ENGINE = InnoDB;

-- Tokens naming `node` minted at a smaller epoch.
CREATE TABLE node_epochs (
    node  VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    epoch BIGINT NOT NULL
) ENGINE = InnoDB;
