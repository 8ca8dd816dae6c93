"""gcmon: attach the gcmon agent to this Python process from code.

    import gcmon
    gcmon.start(socket=None, service=None)   # returns the area's path
    ...
    gcmon.stop()

For programs whose command line cannot change, and for embedding. The
agent is the one `pygcprofiler run` and the gcmon-autoload.pth hook load
(gcmon/_boot.py); whichever runs first loads it, the others do nothing.
See gcmon(7).
"""
from gcmon._boot import GcmonError, start, stop
from gcmon._version import __version__

__all__ = ["GcmonError", "start", "stop", "__version__"]
