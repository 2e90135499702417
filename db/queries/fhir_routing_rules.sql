-- name: FhirRoutingRuleListEnabled :many
-- A tenant's whole routing table.
SELECT * FROM fhir_routing_rules WHERE tenant_id = @tenant_id AND enabled ORDER BY resource_type, category;

-- name: FhirRoutingRuleSearch :many
-- A tenant's rules for the admin API, each filter applying only when given.
SELECT * FROM fhir_routing_rules
WHERE tenant_id = @tenant_id
  AND (sqlc.narg(resource_type)::text IS NULL OR resource_type = sqlc.narg(resource_type))
  AND (sqlc.narg(category)::text IS NULL OR category = sqlc.narg(category))
  AND (sqlc.narg(enabled)::boolean IS NULL OR enabled = sqlc.narg(enabled))
ORDER BY resource_type, category, enabled DESC, created_at, id;

-- name: FhirRoutingRuleGet :one
SELECT * FROM fhir_routing_rules WHERE tenant_id = @tenant_id AND id = @id;

-- name: FhirRoutingRuleGetForUpdate :one
-- Locks the rule for the rest of the transaction, so that If-Match is checked on the row that
-- is then changed.
SELECT * FROM fhir_routing_rules WHERE tenant_id = @tenant_id AND id = @id FOR UPDATE;

-- name: FhirRoutingRuleCreate :one
INSERT INTO fhir_routing_rules (id, tenant_id, resource_type, category, owner_url, enabled, description)
VALUES (@id, @tenant_id, @resource_type, @category, @owner_url, @enabled, @description)
RETURNING *;

-- name: FhirRoutingRuleUpdate :one
-- Replaces every mutable field (the admin API's PUT, on a row it locked); the trigger bumps
-- version and updated_at.
UPDATE fhir_routing_rules
SET resource_type = @resource_type, category = @category, owner_url = @owner_url, enabled = @enabled,
    description = @description
WHERE tenant_id = @tenant_id AND id = @id
RETURNING *;

-- name: FhirRoutingRuleDelete :execrows
DELETE FROM fhir_routing_rules WHERE tenant_id = @tenant_id AND id = @id;

-- name: FhirRoutingRuleEnabledOfType :many
-- The enabled rules of exactly one type (no '*'), to name the rule a refused change conflicts with.
SELECT * FROM fhir_routing_rules
WHERE tenant_id = @tenant_id AND enabled AND resource_type = @resource_type
ORDER BY category, created_at, id;
