"""player-sim: simulated video-player sessions and the analytics beacons they send."""
