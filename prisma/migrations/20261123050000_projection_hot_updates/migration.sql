-- Heartbeats rewrite each robot's projection rows about once a second. Free space on every page
-- lets PostgreSQL update a row in place (a HOT update: no new index entries, and the old version
-- is pruned on the page without waiting for VACUUM), so the tables stay small at any fleet size.
-- Only pages written from now on get the space; run VACUUM FULL on an existing database.
ALTER TABLE "devices" SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05);
ALTER TABLE "device_batteries" SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05);
ALTER TABLE "device_components" SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05);
