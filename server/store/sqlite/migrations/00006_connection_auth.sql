-- Connections whose credentials renew themselves (OAuth 2.0).
--
-- A connection gets a status (CONNECTED, PENDING while its user has not authorized it yet,
-- DISCONNECTED when the app refused its credentials for good), the error that explains it,
-- how its credentials were obtained (grant_type: '' when the client gave them), when its
-- access token expires (nanoseconds, 0 when unknown) and credentials_version, which every
-- write of the credentials increments so that a renewal never overwrites a newer one,
-- and a lease on its renewal (renew_owner until renew_until, nanoseconds) that any write
-- of the credentials ends. Existing connections are CONNECTED.
--
-- auth_states are the authorizations users were sent to make, keyed by the SHA-256 of the
-- state parameter (the state itself is never stored); verifier is the PKCE code verifier,
-- sealed by the caller. They go with their connection.

-- +goose Up
ALTER TABLE connections ADD COLUMN status TEXT NOT NULL DEFAULT 'CONNECTED';
ALTER TABLE connections ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN grant_type TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN credentials_expire_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE connections ADD COLUMN renew_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN renew_until INTEGER NOT NULL DEFAULT 0;

CREATE TABLE auth_states (
    hash          BLOB    PRIMARY KEY,
    workspace_id  TEXT    NOT NULL,
    connection_id TEXT    NOT NULL,
    verifier      BLOB,
    return_url    TEXT    NOT NULL DEFAULT '',
    create_time   INTEGER NOT NULL DEFAULT 0,
    expire_time   INTEGER NOT NULL,
    FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX auth_states_connection ON auth_states (workspace_id, connection_id);
CREATE INDEX auth_states_expire_time ON auth_states (expire_time);

-- +goose Down
DROP TABLE auth_states;
ALTER TABLE connections DROP COLUMN renew_until;
ALTER TABLE connections DROP COLUMN renew_owner;
ALTER TABLE connections DROP COLUMN credentials_version;
ALTER TABLE connections DROP COLUMN credentials_expire_time;
ALTER TABLE connections DROP COLUMN grant_type;
ALTER TABLE connections DROP COLUMN last_error;
ALTER TABLE connections DROP COLUMN status;
