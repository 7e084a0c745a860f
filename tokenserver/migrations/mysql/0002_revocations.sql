-- Our own tables beside Mozilla's (ADR 0012).

-- Revocations on their way to storage nodes: an outbox. A row goes once
-- its node recorded it. `uid`: every token of that uid for `node`;
-- `epoch`: tokens for `node` minted before that epoch.
CREATE TABLE IF NOT EXISTS node_revocations (
    id BIGINT NOT NULL AUTO_INCREMENT,
    service INT NOT NULL,
    node VARCHAR(64) NOT NULL,
    uid BIGINT NULL,
    epoch BIGINT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id),
    KEY node_revocations_node_idx (service, node, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- Each node URL's token epoch, minted into its tokens. Kept by URL, not
-- node id: a node removed and added again must not go back to epoch 0.
CREATE TABLE IF NOT EXISTS node_epochs (
    service INT NOT NULL,
    node VARCHAR(64) NOT NULL,
    epoch BIGINT NOT NULL,
    PRIMARY KEY (service, node)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
