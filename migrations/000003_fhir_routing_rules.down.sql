DROP TABLE IF EXISTS fhir_routing_rules;
DROP FUNCTION IF EXISTS fhir_routing_rules_unambiguous();
