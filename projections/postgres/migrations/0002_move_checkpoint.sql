-- ordo.move_checkpoint moves one partition's checkpoint of one version of
-- a projection from from_seq to to_seq, or raises SQLSTATE OX409 when it
-- is no longer at from_seq (someone else applied the batch) or, with
-- live_version > 0, when that version is no longer live (a rebuild
-- swapped it out). The projector sends it first in the same pipeline as
-- the batch's writes, one implicit transaction: the error aborts the
-- writes, so a batch costs one round trip.
CREATE FUNCTION ordo.move_checkpoint(projection text, version_schema text, part integer, from_seq bigint, to_seq bigint, live_version integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    EXECUTE format('UPDATE %I.checkpoints SET seq = $1, updated_at = now() WHERE partition = $2 AND seq = $3', version_schema)
        USING to_seq, part, from_seq;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- A statement of its own, so it sees a swap that committed while the
    -- UPDATE waited for the row the swap had locked.
    IF n = 1 AND live_version > 0 AND NOT EXISTS (
        SELECT 1 FROM ordo.projection_versions v
        WHERE v.projection = move_checkpoint.projection AND v.version = live_version AND v.state = 'live') THEN
        n := 0;
    END IF;
    IF n <> 1 THEN
        RAISE EXCEPTION 'checkpoint of %.% partition % is not at %', projection, version_schema, part, from_seq
            USING ERRCODE = 'OX409';
    END IF;
END
$$;
