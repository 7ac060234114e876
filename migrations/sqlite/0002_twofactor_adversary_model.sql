-- twofactor schema for SQLite, version 2: limiter fields for forgiveness and the owner's notice,
-- recovery requests that may need an operator and carry a cancel token, and device tokens.
-- Runs once: twofactor::store::SqliteStore::migrate() records it in `twofactor_schema_version`
-- (SQLite has no `ADD COLUMN IF NOT EXISTS`). If you copy these files into your own migration
-- tool, apply each once and do not also call migrate(). Every table starts with the prefix
-- `twofactor_`; a store built with another prefix rewrites it.
-- Only columns and tables are added, so instances still running version 1 keep working during a
-- rolling upgrade (they leave the new columns at their defaults).

-- `consecutive_failures` keeps its name (version 1 instances still use it) and holds
-- `LimiterState::failures`.
ALTER TABLE twofactor_limiter ADD COLUMN forgiven_at     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE twofactor_limiter ADD COLUMN since_success   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE twofactor_limiter ADD COLUMN last_success_at INTEGER NOT NULL DEFAULT 0;

-- Requests made before this version have no cancel token: their cancel_hash is NULL, which no
-- hash equals.
ALTER TABLE twofactor_recovery ADD COLUMN needs_approval      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE twofactor_recovery ADD COLUMN failures_at_request INTEGER NOT NULL DEFAULT 0;
ALTER TABLE twofactor_recovery ADD COLUMN cancel_hash         BLOB;

-- Device tokens (browsers that completed a login), keyed by the SHA-256 of the token.
CREATE TABLE twofactor_devices (
    token_hash BLOB    PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX twofactor_devices_user_id ON twofactor_devices (user_id);
CREATE INDEX twofactor_devices_expires_at ON twofactor_devices (expires_at);
