"""Analytics protocols: beacon policies (timeline -> beacons) and wire codecs (beacon <-> HTTP)."""
