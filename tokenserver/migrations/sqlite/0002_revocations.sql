-- Our own tables beside Mozilla's (ADR 0012).

-- Revocations on their way to storage nodes: an outbox. A row goes once
-- its node recorded it. `uid`: every token of that uid for `node`;
-- `epoch`: tokens for `node` minted before that epoch.
CREATE TABLE IF NOT EXISTS node_revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service INTEGER NOT NULL,
    node VARCHAR(64) NOT NULL,
    uid BIGINT,
    epoch BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS node_revocations_node_idx ON node_revocations (service, node, id);

-- Each node URL's token epoch, minted into its tokens. Kept by URL, not
-- node id: a node removed and added again must not go back to epoch 0.
CREATE TABLE IF NOT EXISTS node_epochs (
    service INTEGER NOT NULL,
    node VARCHAR(64) NOT NULL,
    epoch BIGINT NOT NULL,
    PRIMARY KEY (service, node)
);
