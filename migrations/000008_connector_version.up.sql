-- A version number for optimistic concurrency on the admin API (ETag / If-Match): every update
-- of a connector bumps it, so a client that read version N can only overwrite version N.
-- (updated_at is the transaction's start time: it can repeat, and go backwards.)
ALTER TABLE interop_connectors ADD COLUMN version bigint NOT NULL DEFAULT 1 CHECK (version > 0);

CREATE OR REPLACE FUNCTION interop_connectors_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'retired' AND NEW.status <> 'retired' THEN
        RAISE EXCEPTION 'connector % is retired', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.tenant_id <> OLD.tenant_id THEN
        RAISE EXCEPTION 'connector % cannot change tenant', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$;
