-- One version of the order-status read model. %SCHEMA% is replaced by the
-- version's schema, such as order_status_v2; queries read the live version
-- through the views in schema order_status.
CREATE SCHEMA %SCHEMA%;

-- checkpoints: every commit of the partition at or below seq is applied.
CREATE TABLE %SCHEMA%.checkpoints (
    partition   integer     PRIMARY KEY,
    seq         bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE %SCHEMA%.orders (
    order_id         text        PRIMARY KEY,
    customer_id      text        NOT NULL,
    customer         jsonb       NOT NULL,
    shipping_address jsonb       NOT NULL,
    status           text        NOT NULL,
    total_amount     bigint      NOT NULL,
    currency         text        NOT NULL,
    payment_status   text        NOT NULL,
    payment_id       text        NOT NULL,
    checkout_url     text        NOT NULL,
    carrier          text        NOT NULL,
    tracking_number  text        NOT NULL,
    status_reason    text        NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL,
    last_seq         bigint      NOT NULL
);
CREATE INDEX ON %SCHEMA%.orders (customer_id, created_at DESC, order_id DESC);
CREATE INDEX ON %SCHEMA%.orders (customer_id, status, created_at DESC, order_id DESC);

CREATE TABLE %SCHEMA%.order_lines (
    order_id    text    NOT NULL,
    line_no     integer NOT NULL,
    sku         text    NOT NULL,
    qty         bigint  NOT NULL,
    unit_price  bigint  NOT NULL,
    amount      bigint  NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- order_timeline: one row per order event (every one changes the status),
-- keyed by the event's version, so an event applied twice is an error,
-- never a second row.
CREATE TABLE %SCHEMA%.order_timeline (
    order_id        text        NOT NULL,
    version         bigint      NOT NULL,
    seq             bigint      NOT NULL,
    at              timestamptz NOT NULL,
    event_type      text        NOT NULL,
    status          text        NOT NULL,
    detail          text        NOT NULL,
    commit_id       text        NOT NULL,
    causation_id    text        NOT NULL,
    correlation_id  text        NOT NULL,
    actor           text        NOT NULL,
    PRIMARY KEY (order_id, version)
);
