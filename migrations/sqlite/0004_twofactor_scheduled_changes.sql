-- twofactor schema for SQLite, version 4: factor changes that take effect after a delay, and
-- single-use notice tokens that let the owner cancel them.
-- Runs once: twofactor::store::SqliteStore::migrate() records it in `twofactor_schema_version`.
-- If you copy these files into your own migration tool, apply each once and do not also call
-- migrate(). Every table starts with the prefix `twofactor_`; a store built with another prefix
-- rewrites it.
--
-- Safe for a rolling upgrade from version 3: this file only adds two tables and changes none
-- that version 3 uses. Version 3 instances never read or write them, so they keep working while
-- others are upgraded (they simply do not schedule changes or issue notice tokens).
-- One thing to know while both versions run: version 3's delete_user, delete_credentials and
-- complete_recovery do not know these tables, so rows written through a version 4 instance
-- survive them (a change scheduled before a recovery completed on version 3 could still take
-- effect after it). Once the last version 3 instance has stopped, remove what such calls left:
--   DELETE FROM twofactor_scheduled_changes WHERE user_id NOT IN
--     (SELECT user_id FROM twofactor_authenticators);
-- and, if a user was deleted meanwhile, that user's rows in both tables.
--
-- Rollback: stop every version 4 instance, then
--   DROP TABLE twofactor_notices;
--   DROP TABLE twofactor_scheduled_changes;
--   DELETE FROM twofactor_schema_version WHERE version = 4;
-- (the last so that a later upgrade runs this file again). Changes still waiting and notice
-- tokens not yet used are lost: no scheduled change takes effect, and the tokens sent stop
-- working.

-- A user's factor changes waiting for their delay (see `ScheduledChangeRecord`). `kind` is
-- `remove_authenticator` (with `authenticator`), `regenerate_backup_codes` (with
-- `backup_code_hashes`: the new codes' 32-byte keyed hashes, concatenated, possibly empty) or
-- `disable` (neither).
CREATE TABLE twofactor_scheduled_changes (
    user_id            TEXT    NOT NULL,
    id                 TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    authenticator      TEXT,
    backup_code_hashes BLOB,
    requested_at       INTEGER NOT NULL,
    not_before         INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
);

-- Notice tokens, keyed by the SHA-256 of the token; a row is deleted when its token is used.
CREATE TABLE twofactor_notices (
    token_hash BLOB    PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX twofactor_notices_user_id ON twofactor_notices (user_id);
CREATE INDEX twofactor_notices_expires_at ON twofactor_notices (expires_at);
