"""player-sim: simulated video-player sessions and the analytics beacons they send."""

from sim import compiled as _compiled

_compiled.install()  # the request path's compiled modules, where a build of the same source exists
