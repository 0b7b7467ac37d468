-- One file per apt pool path: the database enforces what ingest checks.
DROP INDEX packages_pool_path;
CREATE UNIQUE INDEX packages_pool_path ON packages (pool_path);
