-- twofactor schema for SQLite, version 3: several authenticators per user (each with an id, a
-- name and its own last accepted step), and device tokens the user can trust, label and see.
-- Runs once: twofactor::store::SqliteStore::migrate() records it in `twofactor_schema_version`.
-- If you copy these files into your own migration tool, apply each once and do not also call
-- migrate(). Every table starts with the prefix `twofactor_`; a store built with another prefix
-- rewrites it.
--
-- NOT safe for a rolling upgrade: stop every instance still running version 2 before this runs.
-- Version 2 reads and writes `twofactor_credentials`, which this file replaces. Had the old table
-- stayed in place, a version 2 instance would keep accepting codes against it while version 3
-- reads the new one: a TOTP step used on one would be usable again on the other, and a factor
-- disabled or re-enrolled on one would stay as it was on the other. Renaming the table instead
-- makes a forgotten version 2 instance fail closed (every credential read or write errors, so
-- nobody logs in through it) rather than diverge silently.
--
-- Rollback: `twofactor_credentials_v2` keeps the rows as they were when this ran. To go back to
-- version 2, stop version 3, rename it back to `twofactor_credentials`, drop
-- `twofactor_authenticators` and the three columns added to `twofactor_devices` below, and delete
-- version 3 from `twofactor_schema_version` (so that a later upgrade runs this file again).
-- Steps accepted, authenticators added and factors disabled since the migration are then lost.

-- A user's authenticators: any number enabled (the service caps them), at most one pending
-- (enabled = 0) until confirmed by a code. `replaces` names the authenticator a pending one
-- replaces when it is confirmed.
CREATE TABLE twofactor_authenticators (
    user_id          TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    encrypted_secret BLOB    NOT NULL,
    algorithm        TEXT    NOT NULL,
    digits           INTEGER NOT NULL,
    period           INTEGER NOT NULL,
    enabled          INTEGER NOT NULL,
    last_step        INTEGER,
    drift            INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER,
    replaces         TEXT,
    PRIMARY KEY (user_id, id)
);
-- At most one pending authenticator per user.
CREATE UNIQUE INDEX twofactor_authenticators_one_pending
    ON twofactor_authenticators (user_id) WHERE enabled = 0;

-- Each version 2 credential (enabled or pending) becomes the user's one authenticator, with the
-- same secret, last accepted step and drift, so no used code becomes usable again.
INSERT INTO twofactor_authenticators (user_id, id, name, encrypted_secret, algorithm, digits,
    period, enabled, last_step, drift, created_at, last_used_at, replaces)
SELECT user_id, 'legacy', 'Authenticator app', encrypted_secret, algorithm, digits, period,
    enabled, last_step, drift, created_at, NULL, NULL
FROM twofactor_credentials;
ALTER TABLE twofactor_credentials RENAME TO twofactor_credentials_v2;

-- Tokens issued before this version are known devices, not trusted ones (NULL trusted_until), and
-- were last used when a login issued them.
ALTER TABLE twofactor_devices ADD COLUMN trusted_until INTEGER;
ALTER TABLE twofactor_devices ADD COLUMN label         TEXT    NOT NULL DEFAULT '';
ALTER TABLE twofactor_devices ADD COLUMN last_used_at  INTEGER NOT NULL DEFAULT 0;
UPDATE twofactor_devices SET last_used_at = created_at;
