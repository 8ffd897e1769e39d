-- ChronicleWeaver schema v1.
--
-- events      one row per distinct (topic, event_id): the first copy committed.
--             It also holds that copy's audit moments (received, queued, stored).
-- dropped     one row per duplicate copy (the DROPPED audit entries).
-- failed      one row per event of a dead-lettered entry (the FAILED audit entries).
-- applied_entries  the ledger: one row per stream entry applied (or failed), keyed
--             on the entry's token, written in the same transaction as its effect.
-- counters    exact counts per (worker, topic), updated in the same transaction;
--             each worker writes only its own rows, so workers never contend.
--             It is also the topic registry.

CREATE SEQUENCE audit_seq CACHE 1000;

CREATE TABLE events (
    topic       text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL,
    source      text NOT NULL,
    ts          timestamptz NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL,
    queued_at   timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL,
    worker_id   text NOT NULL,
    entry_id    text NOT NULL,
    seq         bigint NOT NULL DEFAULT nextval('audit_seq'),
    PRIMARY KEY (topic, event_id)
);
-- Keyset pagination, newest event first, with and without a topic filter.
CREATE INDEX events_by_ts ON events (ts DESC, topic DESC, event_id DESC);
CREATE INDEX events_by_topic_ts ON events (topic, ts DESC, event_id DESC);

CREATE TABLE dropped (
    seq         bigint NOT NULL DEFAULT nextval('audit_seq'),
    topic       text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL,
    source      text NOT NULL,
    received_at timestamptz NOT NULL,
    queued_at   timestamptz NOT NULL,
    dropped_at  timestamptz NOT NULL,
    worker_id   text NOT NULL,
    entry_id    text NOT NULL
);
CREATE INDEX dropped_by_key ON dropped (topic, event_id);

CREATE TABLE failed (
    seq         bigint NOT NULL DEFAULT nextval('audit_seq'),
    topic       text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL,
    source      text NOT NULL,
    received_at timestamptz NOT NULL,
    queued_at   timestamptz NOT NULL,
    failed_at   timestamptz NOT NULL,
    worker_id   text NOT NULL,
    entry_id    text NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX failed_by_key ON failed (topic, event_id);

CREATE TABLE applied_entries (
    token      text COLLATE "C" PRIMARY KEY,
    entry_id   text NOT NULL,
    outcome    "char" NOT NULL CHECK (outcome IN ('a', 'f')), -- applied, failed
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE counters (
    worker_id text COLLATE "C" NOT NULL,
    topic     text COLLATE "C" NOT NULL,
    processed bigint NOT NULL DEFAULT 0,
    dropped   bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (worker_id, topic)
);

-- The audit log as the API shows it: three moments per event copy.
CREATE VIEW audit_log AS
    SELECT seq * 4 + 0 AS id, event_id, topic, source, 'RECEIVED'::text AS action, NULL::text AS worker_id, received_at AS created_at FROM events
    UNION ALL
    SELECT seq * 4 + 1, event_id, topic, source, 'QUEUED', NULL, queued_at FROM events
    UNION ALL
    SELECT seq * 4 + 2, event_id, topic, source, 'PROCESSED', worker_id, stored_at FROM events
    UNION ALL
    SELECT seq * 4 + 0, event_id, topic, source, 'RECEIVED', NULL, received_at FROM dropped
    UNION ALL
    SELECT seq * 4 + 1, event_id, topic, source, 'QUEUED', NULL, queued_at FROM dropped
    UNION ALL
    SELECT seq * 4 + 2, event_id, topic, source, 'DROPPED', worker_id, dropped_at FROM dropped
    UNION ALL
    SELECT seq * 4 + 0, event_id, topic, source, 'RECEIVED', NULL, received_at FROM failed
    UNION ALL
    SELECT seq * 4 + 1, event_id, topic, source, 'QUEUED', NULL, queued_at FROM failed
    UNION ALL
    SELECT seq * 4 + 2, event_id, topic, source, 'FAILED', worker_id, failed_at FROM failed;
