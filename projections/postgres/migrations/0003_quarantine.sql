-- Commits a projector set aside because they could not be applied (they
-- do not decode, do not fold onto the read model, or the database refuses
-- their data), per version of a projection: a rebuild meets them again.
-- open: counts against readiness ("degraded") until retried or
-- acknowledged; acknowledged: an operator accepted that it cannot apply
-- (its order stays marked degraded); resolved: a retry applied it.
CREATE TABLE ordo.projection_quarantine (
    projection      text        NOT NULL,
    version         integer     NOT NULL,
    seq             bigint      NOT NULL,
    partition       integer     NOT NULL,
    aggregate_id    text        NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL,
    state           text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    note            text        NOT NULL DEFAULT '',
    PRIMARY KEY (projection, version, seq)
);
CREATE INDEX projection_quarantine_by_aggregate ON ordo.projection_quarantine (projection, aggregate_id) WHERE state <> 'resolved';
