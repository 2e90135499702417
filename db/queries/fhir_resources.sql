-- name: FhirResourceGet :one
SELECT * FROM fhir_resources WHERE tenant_id = @tenant_id AND resource_type = @resource_type AND id = @id;

-- name: FhirResourceUpsert :exec
-- Writes the current version; the write's search index goes in with FhirSearchIndexReplace,
-- in the same transaction, so search_indexed is true.
INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, deleted, resource, sort_date, search_indexed)
VALUES (@tenant_id, @resource_type, @id, @version_id, @last_updated, @deleted, @resource, @sort_date, true)
ON CONFLICT (tenant_id, resource_type, id) DO UPDATE
SET version_id = excluded.version_id, last_updated = excluded.last_updated,
    deleted = excluded.deleted, resource = excluded.resource,
    sort_date = excluded.sort_date, search_indexed = true;

-- name: FhirResourceHistoryInsert :exec
INSERT INTO fhir_resource_history (tenant_id, resource_type, id, version_id, last_updated, deleted, method, resource)
VALUES (@tenant_id, @resource_type, @id, @version_id, @last_updated, @deleted, @method, @resource);

-- name: FhirResourceVersionGet :one
SELECT * FROM fhir_resource_history
WHERE tenant_id = @tenant_id AND resource_type = @resource_type AND id = @id AND version_id = @version_id;

-- name: FhirResourceHistoryList :many
-- An instance's versions, newest first.
SELECT * FROM fhir_resource_history
WHERE tenant_id = @tenant_id AND resource_type = @resource_type AND id = @id AND version_id < @before_version
ORDER BY version_id DESC
LIMIT @max_rows;

-- name: FhirResourceTypeHistoryList :many
-- A page of the versions of a type's resources made at or after since, newest first, from
-- the keyset position of the previous page's last version (on the first page one after every
-- version), by fhir_resource_history_type_time.
SELECT * FROM fhir_resource_history
WHERE tenant_id = @tenant_id AND resource_type = @resource_type AND last_updated >= @since
  AND (last_updated, id, version_id) < (@before_time::timestamptz, @before_id::text, @before_version::bigint)
ORDER BY last_updated DESC, id DESC, version_id DESC
LIMIT @max_rows;

-- name: FhirResourceSystemHistoryList :many
-- FhirResourceTypeHistoryList over every type of the tenant, by fhir_resource_history_time.
SELECT * FROM fhir_resource_history
WHERE tenant_id = @tenant_id AND last_updated >= @since
  AND (last_updated, resource_type, id, version_id) < (@before_time::timestamptz, @before_type::text, @before_id::text, @before_version::bigint)
ORDER BY last_updated DESC, resource_type DESC, id DESC, version_id DESC
LIMIT @max_rows;

-- name: FhirSearchIndexReplace :exec
-- Replaces the search index rows of one resource (empty arrays: removes them), in one round trip.
-- The arrays of each table run in parallel (unnest zips them in a select list).
WITH del_tokens AS (
    DELETE FROM fhir_search_tokens dt WHERE dt.tenant_id = @tenant_id AND dt.resource_type = @resource_type AND dt.id = @id
), del_refs AS (
    DELETE FROM fhir_search_refs dr WHERE dr.tenant_id = @tenant_id AND dr.resource_type = @resource_type AND dr.id = @id
), del_dates AS (
    DELETE FROM fhir_search_dates dd WHERE dd.tenant_id = @tenant_id AND dd.resource_type = @resource_type AND dd.id = @id
), ins_tokens AS (
    INSERT INTO fhir_search_tokens (tenant_id, resource_type, id, param, system, code)
    SELECT @tenant_id, @resource_type, @id, unnest(@token_params::text[]), unnest(@token_systems::text[]), unnest(@token_codes::text[])
), ins_refs AS (
    INSERT INTO fhir_search_refs (tenant_id, resource_type, id, param, target_type, target_id)
    SELECT @tenant_id, @resource_type, @id, unnest(@ref_params::text[]), unnest(@ref_types::text[]), unnest(@ref_ids::text[])
)
INSERT INTO fhir_search_dates (tenant_id, resource_type, id, param, lo, hi)
SELECT @tenant_id, @resource_type, @id, unnest(@date_params::text[]), unnest(@date_los::timestamptz[]), unnest(@date_his::timestamptz[]);

-- name: FhirResourceUnindexed :many
-- Rows written before the search index existed, for Store.Reindex. Locked, skipping rows a
-- writer or another replica's Reindex holds, so that an index is never written from a stale
-- version and several gateways may reindex at once.
SELECT * FROM fhir_resources WHERE NOT search_indexed ORDER BY tenant_id, resource_type, id LIMIT @max_rows
FOR UPDATE SKIP LOCKED;

-- name: FhirResourceMarkIndexed :exec
UPDATE fhir_resources SET search_indexed = true, sort_date = @sort_date
WHERE tenant_id = @tenant_id AND resource_type = @resource_type AND id = @id;

-- name: AdvisoryXactLock :exec
-- Serialises writers of one logical key (e.g. a conditional create's identifier) across processes.
SELECT pg_advisory_xact_lock(hashtextextended(@lock_key::text, 0));

-- name: FhirResourceByIdentifier :many
-- The conditional writes' lookup (at most two matches): the identifier tokens first (a
-- materialised CTE, so the plan cannot start from the type's whole key range, which it did on
-- a young table whose statistics said "one row"), then each match by primary key.
WITH m AS MATERIALIZED (
    SELECT DISTINCT t.id FROM fhir_search_tokens t
    WHERE t.tenant_id = @tenant_id AND t.resource_type = @resource_type
      AND t.param = 'identifier' AND t.code = @value
      AND (@any_system::boolean OR t.system = @system)
)
SELECT r.* FROM m JOIN fhir_resources r
  ON r.tenant_id = @tenant_id AND r.resource_type = @resource_type AND r.id = m.id
WHERE NOT r.deleted
LIMIT 2;

-- name: FhirResourceListCurrentByKeys :many
-- The current, not deleted, resources of the tenant among the (type, id) pairs given as two
-- parallel arrays: a search's _include targets.
SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.resource FROM fhir_resources r
WHERE r.tenant_id = @tenant_id AND NOT r.deleted
  AND (r.resource_type, r.id) IN (SELECT unnest(@resource_types::text[]), unnest(@ids::text[]))
ORDER BY r.resource_type, r.id;
