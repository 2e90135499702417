-- name: FhirRoutingRuleListForType :many
-- The rules that can own resourceType: its own rules, then the tenant's '*' default.
SELECT * FROM fhir_routing_rules
WHERE tenant_id = @tenant_id AND enabled AND resource_type IN (@resource_type, '*')
ORDER BY (resource_type = '*'), category;

-- name: FhirRoutingRuleListEnabled :many
-- A tenant's whole routing table.
SELECT * FROM fhir_routing_rules WHERE tenant_id = @tenant_id AND enabled ORDER BY resource_type, category;
