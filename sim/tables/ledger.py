"""The ledger line: one send of a beacon as a JSON object, the same in request files and live-load ledgers.

    {"ts": 1.7e9, "method": "GET", "url": "/api_v3/index.php?...", "headers": {...}, "body": null,
     "protocol": "legacy", "key": "legacy:..."}

`ts` epoch seconds of the (scheduled) send, `url` path and query exactly as sent, `body` the
request body as a string (null when none), `key` the beacon's ledger key (the codec's
`ledger_key`), which `player-sim reconcile` matches against the store. Optional fields follow:
`preflight` (a browser's CORS preflight: method OPTIONS, no key, not a beacon), and from live
load `run`, `seq` (the X-Player-Sim-Run header), `attempts` (when retried), `failed` and `error`.
"""

from __future__ import annotations

from typing import Any

# Every line has these, in this order.
LINE_FIELDS = ("ts", "method", "url", "headers", "body", "protocol", "key")
# Present only when they say something.
OPTIONAL_FIELDS = ("preflight", "run", "seq", "attempts", "failed", "error")


def ledger_line(
    ts: float,
    method: str,
    url: str,
    headers: dict[str, str],
    body: str | None,
    protocol: str,
    key: str | None,
    *,
    run: str | None = None,
    seq: int | None = None,
    attempts: int = 1,
    error: str | None = None,
) -> dict[str, Any]:
    """One send as a ledger line (a dict for orjson): the optional fields only where they apply."""
    line = {"ts": ts, "method": method, "url": url, "headers": headers, "body": body, "protocol": protocol, "key": key}
    if run is not None:  # the X-Player-Sim-Run header the requests carried (RUN:WORKER:SEQ:ATTEMPT)
        line["run"], line["seq"] = run, seq
    if attempts > 1:
        line["attempts"] = attempts
    if error is not None:
        line["failed"] = True
        line["error"] = error
    return line
