CREATE OR REPLACE FUNCTION interop_connectors_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'retired' AND NEW.status <> 'retired' THEN
        RAISE EXCEPTION 'connector % is retired', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.tenant_id <> OLD.tenant_id THEN
        RAISE EXCEPTION 'connector % cannot change tenant', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

ALTER TABLE interop_connectors DROP COLUMN IF EXISTS version;
