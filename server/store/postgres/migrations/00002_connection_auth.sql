-- Connections whose credentials renew themselves (OAuth 2.0).
--
-- A connection gets a status (CONNECTED, PENDING while its user has not authorized it yet,
-- DISCONNECTED when the app refused its credentials for good), the error that explains it,
-- how its credentials were obtained (grant_type: '' when the client gave them), when its
-- access token expires (NULL when unknown) and credentials_version, which every write of
-- the credentials increments so that a renewal never overwrites a newer one, and a lease
-- on its renewal (renew_owner until renew_until, by the database's clock) so that replicas
-- renew a connection once; any write of the credentials ends it. Existing connections are
-- CONNECTED.
--
-- auth_states are the authorizations users were sent to make, keyed by the SHA-256 of the
-- state parameter (the state itself is never stored); verifier is the PKCE code verifier,
-- sealed by hookmap. They go with their connection.

-- +goose Up
ALTER TABLE connections
    ADD COLUMN status                  text        NOT NULL DEFAULT 'CONNECTED',
    ADD COLUMN last_error              text        NOT NULL DEFAULT '',
    ADD COLUMN grant_type              text        NOT NULL DEFAULT '',
    ADD COLUMN credentials_expire_time timestamptz,
    ADD COLUMN credentials_version     bigint      NOT NULL DEFAULT 1,
    ADD COLUMN renew_owner             text        NOT NULL DEFAULT '',
    ADD COLUMN renew_until             timestamptz NOT NULL DEFAULT '-infinity';

CREATE TABLE auth_states (
    hash          bytea       PRIMARY KEY,
    workspace_id  text        NOT NULL,
    connection_id text        NOT NULL,
    verifier      bytea,
    return_url    text        NOT NULL DEFAULT '',
    create_time   timestamptz NOT NULL,
    expire_time   timestamptz NOT NULL,
    FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX auth_states_connection ON auth_states (workspace_id, connection_id);
CREATE INDEX auth_states_expire_time ON auth_states (expire_time);

-- +goose Down
DROP TABLE auth_states;
ALTER TABLE connections
    DROP COLUMN renew_until,
    DROP COLUMN renew_owner,
    DROP COLUMN credentials_version,
    DROP COLUMN credentials_expire_time,
    DROP COLUMN grant_type,
    DROP COLUMN last_error,
    DROP COLUMN status;
