-- twofactor schema for PostgreSQL, version 1.
-- Idempotent (IF NOT EXISTS): twofactor::store::PostgresStore::migrate() runs it inside a
-- transaction, and you may also copy it into your own migration tool. Every table starts with
-- the prefix `twofactor_`; a store built with another prefix rewrites it.
-- Unsigned values (Unix times, time steps) are stored in BIGINT; the store refuses values above
-- 2^63-1 instead of wrapping them.

-- One TOTP credential per user: pending (enabled = FALSE) until confirmed by a code.
CREATE TABLE IF NOT EXISTS twofactor_credentials (
    user_id          TEXT    PRIMARY KEY,
    encrypted_secret BYTEA   NOT NULL,
    algorithm        TEXT    NOT NULL,
    digits           INTEGER NOT NULL,
    period           BIGINT  NOT NULL,
    enabled          BOOLEAN NOT NULL,
    last_step        BIGINT,
    drift            BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL
);

-- Keyed hashes of unused backup codes; a row is deleted when its code is used.
CREATE TABLE IF NOT EXISTS twofactor_backup_codes (
    user_id   TEXT  NOT NULL,
    code_hash BYTEA NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- At most one pending recovery request (lost phone and lost backup codes) per user.
CREATE TABLE IF NOT EXISTS twofactor_recovery (
    user_id      TEXT    PRIMARY KEY,
    requested_at BIGINT  NOT NULL,
    not_before   BIGINT  NOT NULL,
    approved     BOOLEAN NOT NULL
);

-- Login challenges (password checked, second factor owed), keyed by the SHA-256 of the token.
CREATE TABLE IF NOT EXISTS twofactor_challenges (
    challenge_hash BYTEA  PRIMARY KEY,
    user_id        TEXT   NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS twofactor_challenges_expires_at ON twofactor_challenges (expires_at);

-- Rate-limiter state per key; expire_at says when the row may be purged.
CREATE TABLE IF NOT EXISTS twofactor_limiter (
    limiter_key          TEXT   PRIMARY KEY,
    window_start         BIGINT NOT NULL,
    attempts             BIGINT NOT NULL,
    consecutive_failures BIGINT NOT NULL,
    locked_until         BIGINT NOT NULL,
    expire_at            BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS twofactor_limiter_expire_at ON twofactor_limiter (expire_at);
