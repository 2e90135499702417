-- name: FhirResourceGet :one
SELECT * FROM fhir_resources WHERE tenant_id = @tenant_id AND resource_type = @resource_type AND id = @id;

-- name: FhirResourceUpsert :exec
INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, deleted, resource)
VALUES (@tenant_id, @resource_type, @id, @version_id, @last_updated, @deleted, @resource)
ON CONFLICT (tenant_id, resource_type, id) DO UPDATE
SET version_id = excluded.version_id, last_updated = excluded.last_updated,
    deleted = excluded.deleted, resource = excluded.resource;

-- name: FhirResourceHistoryInsert :exec
INSERT INTO fhir_resource_history (tenant_id, resource_type, id, version_id, last_updated, deleted, method, resource)
VALUES (@tenant_id, @resource_type, @id, @version_id, @last_updated, @deleted, @method, @resource);

-- name: FhirResourceSearch :many
-- containment is a JSON document the resource must contain (jsonb @>), '{}' for all.
SELECT * FROM fhir_resources
WHERE tenant_id = @tenant_id AND resource_type = @resource_type AND NOT deleted
  AND resource @> @containment::jsonb
ORDER BY last_updated, id
LIMIT @max_rows;

-- name: FhirResourceCount :one
SELECT count(*) FROM fhir_resources
WHERE tenant_id = @tenant_id AND resource_type = @resource_type AND NOT deleted
  AND resource @> @containment::jsonb;

-- name: AdvisoryXactLock :exec
-- Serialises writers of one logical key (e.g. a conditional create's identifier) across processes.
SELECT pg_advisory_xact_lock(hashtextextended(@lock_key::text, 0));
