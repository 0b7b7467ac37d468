-- .deb packages: the rendered Packages stanza and the shared pool path.
ALTER TABLE packages ADD COLUMN apt_stanza TEXT;
ALTER TABLE packages ADD COLUMN pool_path TEXT;
CREATE INDEX packages_pool_path ON packages (pool_path);
