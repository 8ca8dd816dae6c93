"""gcmon/_boot.py: gcmon.start() and gcmon.stop(), the program's own way to
load and unload the gcmon agent, and the exit dumps.

Loading itself is the extension's (agent/boot.c, _gcmon.load()), shared
with the environment's ways in: sitecustomize.py (the launcher's bootstrap
directory on PYTHONPATH) and gcmon-autoload.pth (a site directory; acts
only when GCMON_SOCKET is set), which call gcmon._autoload() and never
import this module. The first to run loads the agent; the others find it
loaded and do nothing, so a process never has two agents. Loading: _gcmon
creates this process's
shared area in the gcmond's agent directory (<socket> + ".d"), records the
gc.get_stats() baseline (collections before the agent loaded) and the
callback goes into gc.callbacks; at exit (or gcmon.stop()) the exit data
is written there, and so does os._exit, which it replaces with
_gcmon._exit until gcmon.stop() (the exit code too; posix._exit stays
the real one). From the environment it must never stop the program: any
trouble is one stderr line starting "gcmon:"; gcmon.start() raises instead.
Never calls gc.collect, gc.freeze or gc.set_threshold, and gc.get_objects
only at exit when asked. Keep it parseable by old Pythons: an unsupported
one must get the message, not a SyntaxError.
"""
import os
import sys

from gcmon import _free_threaded, _install_hooks, _unsupported, _warn  # noqa: F401

_TOP = 50                       # types in the OBJECTS histogram


class GcmonError(RuntimeError):
    """gcmon.start() could not attach the agent (the message says why)."""
    __module__ = "gcmon"


class _Agent(object):
    """The loaded agent of this process (one at most)."""

    def __init__(self, mod, socket, service, path, at_exit, via):
        self.mod = mod
        self.via = via              # "pth", "sitecustomize" or "start"
        self.socket = socket
        self.service = service
        self.path = path
        self.at_exit = at_exit
        self.stopped = False


def _adopt():
    """The agent the environment loaded before this module was imported."""
    mod = sys.modules.get("gcmon._gcmon")
    info = mod.agent() if mod is not None else None
    if info is None:
        return None
    return _Agent(mod, info["socket"], info["service"], info["path"],
                  mod.exit_data, info["via"])


_agent = _adopt()


def _bytes(s, cap):
    """UTF-8 (backslashreplace, no NUL) of at most cap bytes."""
    b = str(s).encode("utf-8", "backslashreplace").replace(b"\0", b"\\x00")
    if len(b) > cap:
        b = b[:cap].decode("utf-8", "ignore").encode("utf-8")
    return b


def _type_name(t, cap):
    mod = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    if mod and mod != "builtins":
        name = "%s.%s" % (mod, name)
    return _bytes(name, cap)


def _histogram(objs, top, cap):
    counts = {}
    for o in objs:
        t = type(o)
        counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return (len(objs), [(_type_name(t, cap), n) for t, n in ranked])


def _exit_dumps(mod, dump_objects, dump_garbage):
    """(objects, garbage) for the exit data (_gcmon.exit_data() asks, only
    with --dump-objects or --dump-garbage): type histograms or None."""
    import gc
    objects = garbage = None
    if dump_objects:
        objects = _histogram(gc.get_objects(), _TOP, mod.MAX_ID)
    if dump_garbage:
        garbage = _histogram(gc.garbage, mod.MAX_TYPES, mod.MAX_ID)
    return objects, garbage


def _load(env, socket, service, warn_all, via):
    """Loads the agent; returns it. Raises on any failure."""
    global _agent
    from gcmon import _gcmon as mod
    exec_child = env.get("GCMON_AGENT_PID", "").isdigit()
    again = _agent is not None      # after stop(): the agent's next area
    path = mod.load(socket, service, warn_all, via)
    _agent = _Agent(mod, socket, service or None, path, mod.exit_data, via)
    if not again:                   # once per process, whatever the starts
        _install_hooks(_warn if warn_all or not exec_child else (lambda m: None))
    return _agent


def autoload(via):
    """The environment's way in of earlier releases' .pth hooks."""
    import gcmon
    gcmon._autoload(via)


def _check_service(mod, service):
    if service is None:
        service = os.environ.get("GCMON_SERVICE") or None
        if service is None:
            return None
    if not isinstance(service, str):
        raise TypeError("gcmon.start: service must be a str, not %s"
                        % type(service).__name__)
    raw = service.encode("utf-8", "surrogateescape")
    if not raw or b"\0" in raw or len(raw) > mod.MAX_ID:
        raise ValueError("gcmon.start: service %r must be 1 to %d bytes "
                         "of UTF-8 without NUL" % (service, mod.MAX_ID))
    return service


def _check_socket(mod, socket):
    if socket is None:
        socket = mod.default_socket()
    if not socket or "\0" in socket:
        raise ValueError("gcmon.start: socket %r is not a path" % (socket,))
    parent = os.path.dirname(os.path.abspath(socket))
    if not os.path.isdir(parent):
        raise GcmonError("gcmon.start: no directory %s for the gcmond socket "
                         "%s (gcmond makes it when it starts; start gcmond, "
                         "or pass socket= or set GCMON_SOCKET)" % (parent, socket))
    return socket


def start(socket=None, service=None):
    """Attach the agent to this process; returns its shared area's path.

    socket: gcmond's socket (default: GCMON_SOCKET, else the user's own
    gcmond's if it is there, else the host's /run/gcmon/gcmon.sock if it
    is there, as gcmonctl finds it). service: a name for this process's service (default:
    GCMON_SERVICE, else gcmond derives one from the command line).
    Collections before start() are counted as "before the agent loaded".
    Already attached (by an earlier start(), sitecustomize or the .pth
    hook): nothing is done and the same path is returned; a socket or
    service other than the running agent's is a GcmonError. After stop(),
    start() attaches the agent again with a new area (a new record in
    gcmond; by default to the same socket, with the same service): the
    collections while it was stopped count as "before the agent loaded",
    each one once. Errors: GcmonError (unsupported interpreter,
    no directory for the socket, the area cannot be made), TypeError and
    ValueError (a bad argument).
    """
    why = _unsupported()
    if why is not None:
        raise GcmonError("gcmon.start: %s" % why)
    from gcmon import _gcmon as mod
    if socket is not None:
        socket = os.fsdecode(os.fspath(socket))
    a = _agent
    if a is not None and not a.stopped:
        # Only what the caller named is compared: start() with no
        # arguments is a no-op whoever loaded the agent.
        if socket is not None and (os.path.abspath(socket) !=
                                   os.path.abspath(a.socket)):
            raise GcmonError("gcmon.start: the agent already reports to %s, "
                             "not %s" % (a.socket, socket))
        if service is not None and service != a.service:
            raise GcmonError("gcmon.start: the agent already runs with "
                             "service %r, not %r" % (a.service, service))
        return a.path
    if a is not None:
        # Started again after stop(): where and as what it ran, unless
        # told otherwise.
        socket = a.socket if socket is None else socket
        service = a.service if service is None else service
    # The arguments first, then what the host has.
    service = _check_service(mod, service)
    socket = _check_socket(mod, socket)
    try:
        return _load(os.environ, socket, service, True, "start").path
    except OSError as e:
        err = e
    # Raised outside the handler: the OSError is in the message, not
    # chained (and the module still parses in Python 2, for the message).
    raise GcmonError("gcmon.start: cannot create this process's area in "
                     "%s: %s" % (err.filename or socket + ".d",
                                 err.strerror or err))


def stop():
    """Detach the agent: take its callback out of gc.callbacks, write the
    exit data and give the area up (gcmond ends its record as if the
    process had ended). The process's figures then cover the collections
    up to here (the baseline included); later ones are not counted until
    a start() attaches it again. Returns False when there was nothing to
    stop (never started, or stopped)."""
    a = _agent
    if a is None or a.stopped:
        return False
    import gc
    a.stopped = True
    while a.mod.callback in gc.callbacks:
        gc.callbacks.remove(a.mod.callback)
    if os._exit is a.mod._exit:
        import posix
        os._exit = posix._exit
    a.at_exit(detach=True)
    return True
