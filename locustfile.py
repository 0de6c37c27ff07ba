"""player-sim live load: simulated viewers' analytics beacons, sent by a few Locust users.

    locust -f locustfile.py                                   # web UI, local collector
    locust -f locustfile.py --headless -u 2 -t 1m --protocol kava --session-rate 20 --time-scale 10
    locust -f locustfile.py --headless -u 2 -t 1m --processes 2 --ledger out/ledger.jsonl

Each user is a sender, not a viewer: viewers are rows of a schedule (see sim/load).
"""

from sim.load.locust_glue import BeaconSenderUser, install

__all__ = ["BeaconSenderUser"]

install()
