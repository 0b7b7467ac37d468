-- Promotion policies and gates: freeze, hold, rejection, discard, schedules.
ALTER TABLE channels ADD COLUMN frozen_at BIGINT;
ALTER TABLE channels ADD COLUMN frozen_by TEXT;
ALTER TABLE channels ADD COLUMN frozen_reason TEXT;

ALTER TABLE packages ADD COLUMN held_at BIGINT;
ALTER TABLE packages ADD COLUMN held_by TEXT;
ALTER TABLE packages ADD COLUMN held_reason TEXT;
-- A discarded build keeps its row (the tombstone) and loses its file.
ALTER TABLE packages ADD COLUMN discarded_at BIGINT;
ALTER TABLE packages ADD COLUMN discarded_by TEXT;
ALTER TABLE packages ADD COLUMN discard_reason TEXT;

-- A demoted build is rejected for that channel and every later one.
CREATE TABLE rejections (
    package_id VARCHAR(64) NOT NULL,
    channel VARCHAR(64) NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (package_id, channel)
);

-- One policy per channel, as JSON (the same shape as the config file's).
CREATE TABLE policies (
    channel VARCHAR(64) PRIMARY KEY NOT NULL,
    spec TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

-- Scheduler state: the next due run of each automatic policy. Moving
-- next_run_at with a compare-and-set is what makes one runner win.
CREATE TABLE schedules (
    channel VARCHAR(64) PRIMARY KEY NOT NULL,
    rule TEXT NOT NULL,
    next_run_at BIGINT NOT NULL,
    last_run_at BIGINT
);
