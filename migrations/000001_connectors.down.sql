DROP TABLE IF EXISTS interop_connectors;
DROP FUNCTION IF EXISTS interop_connectors_guard();
DROP TYPE IF EXISTS connector_status;
DROP TYPE IF EXISTS connector_direction;
DROP TYPE IF EXISTS connector_protocol;
