-- name: FhirResourceTypesOfTenant :many
-- The resource types a tenant has stored: a loose index scan over the primary key, one probe
-- per type rather than a scan of every row.
WITH RECURSIVE t AS (
    (SELECT f.resource_type FROM fhir_resources f WHERE f.tenant_id = @tenant_id ORDER BY f.resource_type LIMIT 1)
    UNION ALL
    SELECT (SELECT r.resource_type FROM fhir_resources r
            WHERE r.tenant_id = @tenant_id AND r.resource_type > t.resource_type ORDER BY r.resource_type LIMIT 1)
    FROM t WHERE t.resource_type IS NOT NULL
)
SELECT t.resource_type::text FROM t WHERE t.resource_type IS NOT NULL;

-- name: FhirResourceDeletedBetween :many
-- The `deleted` part of an export with _since: ids deleted in (since, until], ascending.
SELECT r.id FROM fhir_resources r
WHERE r.tenant_id = @tenant_id AND r.resource_type = @resource_type AND r.id > @after AND r.deleted
  AND r.last_updated > @since AND r.last_updated <= @until
ORDER BY r.id LIMIT @max_rows;
