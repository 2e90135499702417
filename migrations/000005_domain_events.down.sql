DROP TABLE IF EXISTS domain_events;
