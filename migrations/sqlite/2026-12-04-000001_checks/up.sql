-- Evidence on builds: the latest result of each named check (CI test suite,
-- UAT sign-off) reported for a build in a channel. Every report is also an
-- event in the build's history; this table is what promotion gates read.
CREATE TABLE check_results (
    package_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    url TEXT,
    summary TEXT,
    reported_at BIGINT NOT NULL,
    reported_by TEXT NOT NULL,
    PRIMARY KEY (package_id, channel, name)
);
