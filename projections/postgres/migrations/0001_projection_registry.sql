-- The projection registry: which versions of each projection exist, which
-- one queries read, and how instances share the work.
CREATE TABLE ordo.projection_versions (
    projection  text        NOT NULL,
    version     integer     NOT NULL CHECK (version > 0),
    state       text        NOT NULL CHECK (state IN ('building', 'live', 'retired')),
    partitions  integer     NOT NULL CHECK (partitions > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    live_since  timestamptz,
    PRIMARY KEY (projection, version)
);
CREATE UNIQUE INDEX projection_versions_one_live ON ordo.projection_versions (projection) WHERE state = 'live';

-- Instances running a projection, for the fair share of partitions.
CREATE TABLE ordo.projection_instances (
    projection  text        NOT NULL,
    instance    text        NOT NULL,
    seen_at     timestamptz NOT NULL,
    PRIMARY KEY (projection, instance)
);

-- Which instance works on which partition, until when.
CREATE TABLE ordo.projection_leases (
    projection  text        NOT NULL,
    partition   integer     NOT NULL,
    owner       text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (projection, partition)
);
