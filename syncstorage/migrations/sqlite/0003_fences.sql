-- Users whose writes this node refuses (503) while they move to another
-- node, and after (ADR 0013); unix seconds.
CREATE TABLE user_fences (
    userid       INTEGER PRIMARY KEY,
    fenced_until INTEGER NOT NULL
);
