DROP TABLE IF EXISTS bulk_export_files;
DROP FUNCTION IF EXISTS bulk_export_files_immutable();
DROP TABLE IF EXISTS bulk_export_jobs;
DROP TYPE IF EXISTS bulk_export_level;
DROP TYPE IF EXISTS bulk_export_status;
