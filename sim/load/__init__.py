"""Live load: simulated viewers as rows in a send schedule, sent by a few Locust users.

- `schedule`: arrival models (open / closed), re-timing of generated sessions, the
  time-ordered queue of beacons to send, per-session player state (KAVA server answers).
- `sender`: the send loop over shared keep-alive pools, lateness, failures, the ledger.
- `plan`: the run's options, safety checks against Kaltura's hosts, one process's schedule.
- `viewers`: the Viewers tab's figures by scenario (viewers in progress, start rates,
  drops, lateness), one process's or merged across workers.
- `locust_glue`: the Locust user and event hooks (workers, master summary, ledgers).
"""
