DROP INDEX packages_pool_path;
CREATE INDEX packages_pool_path ON packages (pool_path);
