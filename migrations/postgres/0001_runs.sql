-- voxflow run tracking, PostgreSQL flavour. Keep in step with migrations/sqlite/0001_runs.sql.
-- Timestamps are milliseconds since the Unix epoch (UTC); JSON is stored as text.

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    workflow_name   TEXT NOT NULL,
    workflow_file   TEXT NOT NULL,
    workflow_hash   TEXT NOT NULL,
    workflow_text   TEXT NOT NULL,
    inputs_json     TEXT NOT NULL,
    params_json     TEXT NOT NULL,
    outputs_json    TEXT,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    error           TEXT,
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE INDEX runs_by_creation ON runs (created_at);

CREATE TABLE step_runs (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_id         TEXT NOT NULL,
    fanout_key      TEXT NOT NULL DEFAULT '',
    attempt         BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'skipped')),
    plugin          TEXT NOT NULL,
    plugin_version  TEXT,
    plugin_hash     TEXT,
    cache_key       TEXT,
    cache_hit       BIGINT NOT NULL DEFAULT 0,
    cached_from     TEXT,
    inputs_json     TEXT,
    outputs_json    TEXT,
    error           TEXT,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    UNIQUE (run_id, step_id, fanout_key, attempt)
);
CREATE INDEX step_runs_by_run ON step_runs (run_id, started_at);
CREATE INDEX step_runs_by_cache_key ON step_runs (cache_key) WHERE status = 'succeeded';

CREATE TABLE artifacts (
    id              BIGSERIAL PRIMARY KEY,
    hash            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    size            BIGINT NOT NULL,
    location        TEXT NOT NULL,
    name            TEXT,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_run_id     TEXT REFERENCES step_runs (id) ON DELETE CASCADE,
    output_name     TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX artifacts_by_run ON artifacts (run_id);
CREATE INDEX artifacts_by_hash ON artifacts (hash);

CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_run_id     TEXT REFERENCES step_runs (id) ON DELETE CASCADE,
    step_id         TEXT,
    fanout_key      TEXT,
    at              BIGINT NOT NULL,
    level           TEXT NOT NULL,
    message         TEXT NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, id);
