-- Browser sessions of the web UI: a token presented at sign-in, held server
-- side. Only the hash of the cookie's secret is stored.
CREATE TABLE ui_sessions (
    secret_hash TEXT PRIMARY KEY NOT NULL,
    token_id BIGINT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_expires_at ON ui_sessions (expires_at);
