-- voxflow run tracking, SQLite flavour. Keep in step with migrations/postgres/0001_runs.sql.
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
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
);
CREATE INDEX runs_by_creation ON runs (created_at);

CREATE TABLE step_runs (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_id         TEXT NOT NULL,
    fanout_key      TEXT NOT NULL DEFAULT '',
    attempt         INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'skipped')),
    plugin          TEXT NOT NULL,
    plugin_version  TEXT,
    plugin_hash     TEXT,
    cache_key       TEXT,
    cache_hit       INTEGER NOT NULL DEFAULT 0,
    cached_from     TEXT,
    inputs_json     TEXT,
    outputs_json    TEXT,
    error           TEXT,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    UNIQUE (run_id, step_id, fanout_key, attempt)
);
CREATE INDEX step_runs_by_run ON step_runs (run_id, started_at);
CREATE INDEX step_runs_by_cache_key ON step_runs (cache_key) WHERE status = 'succeeded';

CREATE TABLE artifacts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    hash            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    size            INTEGER NOT NULL,
    location        TEXT NOT NULL,
    name            TEXT,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_run_id     TEXT REFERENCES step_runs (id) ON DELETE CASCADE,
    output_name     TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX artifacts_by_run ON artifacts (run_id);
CREATE INDEX artifacts_by_hash ON artifacts (hash);

CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_run_id     TEXT REFERENCES step_runs (id) ON DELETE CASCADE,
    step_id         TEXT,
    fanout_key      TEXT,
    at              INTEGER NOT NULL,
    level           TEXT NOT NULL,
    message         TEXT NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, id);
