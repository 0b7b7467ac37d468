-- Webhook subscriptions. The events table is the outbox: each subscription
-- reads it in id order from its cursor; the head event's retry state lives here.
CREATE TABLE webhooks (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(64) NOT NULL UNIQUE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    channels TEXT NOT NULL,
    packages TEXT NOT NULL,
    event_types TEXT NOT NULL,
    format VARCHAR(16) NOT NULL,
    active BOOLEAN NOT NULL,
    cursor BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    first_attempt_at BIGINT,
    next_attempt_at BIGINT,
    failures INTEGER NOT NULL,
    lease_until BIGINT,
    disabled_reason TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

-- Every delivery attempt, for the API.
CREATE TABLE webhook_attempts (
    id BIGSERIAL PRIMARY KEY,
    webhook_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    success BOOLEAN NOT NULL,
    manual BOOLEAN NOT NULL
);
CREATE INDEX webhook_attempts_hook ON webhook_attempts (webhook_id, id);
