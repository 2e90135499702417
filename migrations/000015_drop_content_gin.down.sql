CREATE INDEX fhir_resources_content ON fhir_resources USING gin (resource jsonb_path_ops);
