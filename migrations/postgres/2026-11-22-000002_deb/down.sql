DROP INDEX packages_pool_path;
ALTER TABLE packages DROP COLUMN pool_path;
ALTER TABLE packages DROP COLUMN apt_stanza;
