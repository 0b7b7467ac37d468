-- One row per stored package file; id is the file's sha256.
CREATE TABLE packages (
    id VARCHAR(64) PRIMARY KEY NOT NULL,
    kind VARCHAR(8) NOT NULL,
    name TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    version TEXT NOT NULL,
    release TEXT NOT NULL,
    arch TEXT NOT NULL,
    filename TEXT NOT NULL,
    size BIGINT NOT NULL,
    summary TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    primary_xml TEXT NOT NULL,
    filelists_xml TEXT NOT NULL,
    other_xml TEXT NOT NULL,
    UNIQUE (kind, name, epoch, version, release, arch)
);
CREATE INDEX packages_filename ON packages (filename);
CREATE INDEX packages_name ON packages (name);

CREATE TABLE channels (
    name VARCHAR(64) PRIMARY KEY NOT NULL,
    position INTEGER NOT NULL,
    head INTEGER NOT NULL DEFAULT 0
);

-- Immutable revisions; superseded_at is set once, when the next one is published.
CREATE TABLE revisions (
    channel VARCHAR(64) NOT NULL,
    number INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    superseded_at BIGINT,
    actor TEXT NOT NULL,
    summary TEXT NOT NULL,
    package_count INTEGER NOT NULL,
    PRIMARY KEY (channel, number)
);

CREATE TABLE revision_files (
    channel VARCHAR(64) NOT NULL,
    number INTEGER NOT NULL,
    path TEXT NOT NULL,
    blob VARCHAR(64) NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (channel, number, path)
);
CREATE INDEX revision_files_path ON revision_files (channel, path);
CREATE INDEX revision_files_blob ON revision_files (blob);

-- A package is in a channel for revisions [added_in, removed_in).
CREATE TABLE memberships (
    channel VARCHAR(64) NOT NULL,
    package_id VARCHAR(64) NOT NULL,
    added_in INTEGER NOT NULL,
    removed_in INTEGER,
    PRIMARY KEY (channel, package_id, added_in)
);
CREATE INDEX memberships_package ON memberships (package_id);

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    package_id VARCHAR(64),
    channel VARCHAR(64),
    revision INTEGER,
    actor TEXT NOT NULL,
    client TEXT NOT NULL,
    reason TEXT,
    detail TEXT
);
CREATE INDEX events_package ON events (package_id);
