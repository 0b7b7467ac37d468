DROP TABLE events;
DROP TABLE memberships;
DROP TABLE revision_files;
DROP TABLE revisions;
DROP TABLE channels;
DROP TABLE packages;
