-- The benchmark questions of issue 6, asked of DuckDB: the same questions, with the
-- same definitions, that `faultline bench questions` answers with polars
-- (analyzers/src/queries.rs, whose module documentation is the reference).
--
-- The capture is OTLP JSON lines as faultline and the OpenTelemetry Collector's file
-- exporter write them: one ExportTraceServiceRequest per line, lowerCamelCase keys,
-- 64-bit integers (times, intValue) as strings, enums (kind, status code) as numbers,
-- default values left out. DuckDB infers the schema from the file (its fastest way
-- here), so the capture needs what the questions read: span attributes with string
-- and integer values, and some span with a status code. Generated captures have them.
--
-- Run it with the DuckDB CLI:
--   duckdb -c "SET VARIABLE capture = 'capture.jsonl'" -f bench/duckdb/questions.sql
-- compare.py runs it section by section (the `-- section:` lines) to time each.

-- section: load
SET VARIABLE capture = coalesce(getvariable('capture'), 'capture.jsonl');

-- The value of the first attribute named `k` (as faultline's Attributes::get does),
-- NULL when there is none.
CREATE OR REPLACE TEMP MACRO attr(attrs, k) AS list_filter(attrs, lambda a: a.key = k)[1].value;
-- An integer attribute value: intValue, or a string holding an integer (Value::as_i64).
CREATE OR REPLACE TEMP MACRO as_i64(v) AS
    coalesce(try_cast(v.intValue AS BIGINT), try_cast(trim(v.stringValue) AS BIGINT));
-- An integer that fits 16 bits unsigned, else 0 (the table's u16 columns).
CREATE OR REPLACE TEMP MACRO as_u16(i) AS CASE WHEN i BETWEEN 0 AND 65535 THEN i ELSE 0 END;
-- Times: strings of ns since the epoch; 0 when left out.
CREATE OR REPLACE TEMP MACRO ns(t) AS coalesce(try_cast(t AS BIGINT), 0);

-- One row per span with the columns the questions need: the SpanTable's.
CREATE OR REPLACE TEMP TABLE spans AS
WITH resource_spans AS (
    SELECT unnest(resourceSpans) AS rs
    -- The schema is left to DuckDB to infer: on this capture that was almost twice as
    -- fast as giving it (`columns = {...}`, with or without the fields left unread).
    FROM read_ndjson(getvariable('capture'))
),
scope_spans AS (
    SELECT
        coalesce(attr(rs.resource.attributes, 'service.name').stringValue, 'unknown_service') AS service,
        unnest(rs.scopeSpans) AS ss
    FROM resource_spans
),
raw AS (
    SELECT service, unnest(ss.spans) AS s FROM scope_spans
),
decoded AS (
    SELECT
        service,
        coalesce(s.kind, 0) AS kind,
        ns(s.startTimeUnixNano) AS start_ns,
        ns(s.endTimeUnixNano) AS end_ns,
        -- status is inferred as a MAP when most spans have an empty one ({}).
        coalesce(try_cast(json_extract_string(to_json(s.status), '$.code') AS INTEGER), 0) = 2
            AS status_error,
        -- http.response.status_code if the span has it, else the older http.status_code.
        as_u16(as_i64(coalesce(
            attr(s.attributes, 'http.response.status_code'),
            attr(s.attributes, 'http.status_code')
        ))) AS http_status,
        as_u16(as_i64(attr(s.attributes, 'http.request.resend_count'))) AS resend,
        -- Who a client or producer span calls: the table's PEER_KEYS, in order.
        CASE WHEN coalesce(s.kind, 0) IN (3, 4) THEN coalesce(
            attr(s.attributes, 'peer.service').stringValue,
            attr(s.attributes, 'server.address').stringValue,
            attr(s.attributes, 'net.peer.name').stringValue,
            attr(s.attributes, 'http.host').stringValue,
            attr(s.attributes, 'db.system.name').stringValue,
            attr(s.attributes, 'db.system').stringValue,
            attr(s.attributes, 'messaging.system').stringValue,
            ''
        ) ELSE '' END AS peer
    FROM raw
)
SELECT
    service,
    kind,
    start_ns,
    greatest(end_ns - start_ns, 0) AS duration_ns,
    status_error OR (http_status >= 500 AND kind IN (2, 3)) AS error,
    resend,
    peer
FROM decoded;

-- section: service_minutes
-- Calls (server and consumer spans), errors, error rate, p50 and p99 latency in ms, per
-- service and minute since the epoch (start_ns is never negative: // is the floor).
SELECT
    service,
    start_ns // 60000000000 AS minute,
    count(*) AS calls,
    count(*) FILTER (WHERE error) AS errors,
    count(*) FILTER (WHERE error) / count(*) AS error_rate,
    quantile_cont(duration_ns, 0.5) / 1e6 AS p50_ms,
    quantile_cont(duration_ns, 0.99) / 1e6 AS p99_ms
FROM spans
WHERE kind IN (2, 5)
GROUP BY service, minute
ORDER BY service, minute;

-- section: edges
-- Retry amplification per caller → callee edge: client spans ÷ first attempts
-- (http.request.resend_count absent or 0).
SELECT
    service AS caller,
    peer AS callee,
    count(*) AS attempts,
    count(*) FILTER (WHERE resend = 0) AS logical_calls,
    count(*) / nullif(count(*) FILTER (WHERE resend = 0), 0) AS amplification
FROM spans
WHERE kind = 3
GROUP BY service, peer
ORDER BY caller, callee;
