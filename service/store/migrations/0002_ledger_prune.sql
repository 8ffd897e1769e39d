-- ChronicleWeaver schema v2: the ledger can be pruned (LEDGER_RETENTION).
--
-- A ledger row matters only while an entry it covers can still be
-- delivered; the pruner deletes rows by the time part of their stream
-- entry ID (Redis's clock, the same clock as the stream's oldest entry it is
-- compared with). ledger_entry_ms is that time, NULL for an entry_id that is
-- not a stream ID (such a row is never pruned); the index makes each small
-- delete batch find its rows without scanning the table.
CREATE FUNCTION ledger_entry_ms(entry_id text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN entry_id ~ '^[0-9]{1,18}-[0-9]{1,19}$' THEN split_part(entry_id, '-', 1)::bigint END $$;

CREATE INDEX applied_entries_by_ms ON applied_entries (ledger_entry_ms(entry_id));
