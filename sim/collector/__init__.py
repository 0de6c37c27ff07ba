"""The reference collector: a Kaltura-compatible analytics endpoint that stores every request in DuckDB.

    player-sim collector --port 0 --store events.duckdb

Modules: `kaltura_api` (Kaltura's validation and response bodies), `store` (the `events`
table and its batching writer), `app` (request handling), `faults` (test-double mode),
`live` (the page at `/` and `/stats.json`), `http1` (HTTP/1.1 connections), `worker` (a worker
process), `server` (port, workers, clean shutdown).
"""
