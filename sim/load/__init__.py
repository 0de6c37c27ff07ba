"""Live load: simulated viewers as rows in a send schedule, sent by a few Locust users.

- `schedule`: arrival models (open / closed), re-timing of generated sessions, the
  time-ordered queue of beacons to send, per-session player state (KAVA server answers).
- `sender`: the send loop over shared keep-alive pools, lateness, failures, the ledger.
- `locust_glue`: command-line options, safety checks, the Locust user and event hooks.
"""
