-- What each build provides and requires, read once from its metadata (at
-- upload; builds stored before this table are read at the next start), so a
-- promotion's dependency check loads only the rows of the names it needs.
-- role: 'P' a provide (op/version its relation), 'F' a file path requirements
-- may name, 'R' a requirement: one row per capability name it mentions, the
-- whole requirement text in expr.
CREATE TABLE package_deps (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    package_id VARCHAR(64) NOT NULL,
    role VARCHAR(1) NOT NULL,
    name TEXT NOT NULL,
    op VARCHAR(2),
    version TEXT,
    expr TEXT
);
CREATE INDEX package_deps_name ON package_deps (name, role);
CREATE INDEX package_deps_package ON package_deps (package_id);
