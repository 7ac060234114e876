-- twofactor schema for SQLite, version 1.
-- Idempotent (IF NOT EXISTS): twofactor::store::SqliteStore::migrate() runs it inside a
-- transaction, and you may also copy it into your own migration tool. Every table starts with
-- the prefix `twofactor_`; a store built with another prefix rewrites it.
-- Unsigned values (Unix times, time steps) are stored in 64-bit INTEGER; the store refuses values
-- above 2^63-1 instead of wrapping them.

-- One TOTP credential per user: pending (enabled = 0) until confirmed by a code.
CREATE TABLE IF NOT EXISTS twofactor_credentials (
    user_id          TEXT    PRIMARY KEY,
    encrypted_secret BLOB    NOT NULL,
    algorithm        TEXT    NOT NULL,
    digits           INTEGER NOT NULL,
    period           INTEGER NOT NULL,
    enabled          INTEGER NOT NULL,
    last_step        INTEGER,
    drift            INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);

-- Keyed hashes of unused backup codes; a row is deleted when its code is used.
CREATE TABLE IF NOT EXISTS twofactor_backup_codes (
    user_id   TEXT  NOT NULL,
    code_hash BLOB  NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- At most one pending recovery request (lost phone and lost backup codes) per user.
CREATE TABLE IF NOT EXISTS twofactor_recovery (
    user_id      TEXT    PRIMARY KEY,
    requested_at INTEGER NOT NULL,
    not_before   INTEGER NOT NULL,
    approved     INTEGER NOT NULL
);

-- Login challenges (password checked, second factor owed), keyed by the SHA-256 of the token.
CREATE TABLE IF NOT EXISTS twofactor_challenges (
    challenge_hash BLOB    PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS twofactor_challenges_expires_at ON twofactor_challenges (expires_at);

-- Rate-limiter state per key; expire_at says when the row may be purged.
CREATE TABLE IF NOT EXISTS twofactor_limiter (
    limiter_key          TEXT    PRIMARY KEY,
    window_start         INTEGER NOT NULL,
    attempts             INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    locked_until         INTEGER NOT NULL,
    expire_at            INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS twofactor_limiter_expire_at ON twofactor_limiter (expire_at);
