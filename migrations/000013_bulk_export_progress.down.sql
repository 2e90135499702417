DROP TABLE bulk_export_tasks;
