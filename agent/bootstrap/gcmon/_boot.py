"""gcmon/_boot.py: the one implementation of loading the gcmon agent.

Three ways in share it: sitecustomize.py (the launcher's bootstrap
directory on PYTHONPATH), gcmon-autoload.pth (a site directory; acts only
when GCMON_SOCKET is set) and gcmon.start() (the program's own code). The
first to run loads the agent; the others find it loaded and do nothing, so
a process never has two agents. Loading: _gcmon creates this process's
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


_agent = None
_hooks_installed = False        # once per process, whatever the starts


def _warn(msg):
    try:
        sys.stderr.write("gcmon: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def _bytes(s, cap):
    """UTF-8 (backslashreplace, no NUL) of at most cap bytes."""
    b = str(s).encode("utf-8", "backslashreplace").replace(b"\0", b"\\x00")
    if len(b) > cap:
        b = b[:cap].decode("utf-8", "ignore").encode("utf-8")
    return b


def _unsupported():
    """Why this interpreter cannot load the agent, or None."""
    if sys.version_info < (3, 10):
        return "Python %d.%d is not supported (3.10 or later)" % sys.version_info[:2]
    if sys.implementation.name != "cpython":
        return "%s is not supported (CPython 3.10 or later)" % sys.implementation.name
    if _free_threaded():
        return ("Python %d.%d free-threaded builds cannot load abi3 "
                "extensions such as the agent" % sys.version_info[:2])
    return None


def _free_threaded():
    """Whether this is a free-threaded build (3.13t and later)."""
    gil = getattr(sys, "_is_gil_enabled", None)
    if gil is None:
        return False
    # The build's "t" ABI flag (PEP 703) says Py_GIL_DISABLED without
    # importing sysconfig, which would cost every 3.13 start a millisecond.
    return not gil() or "t" in getattr(sys, "abiflags", "")


class _Settings(object):
    def __init__(self, env, warn, mod):
        self.warn = warn
        self.run_id = env.get("GCMON_RUN_ID", "")
        self.ring = self.num(env, "GCMON_RING", int, mod.RING_DEFAULT,
                             mod.RING_MIN, mod.RING_MAX)
        if self.ring & (self.ring - 1):
            self.warn("GCMON_RING=%r is not a power of 2; using %d"
                      % (env.get("GCMON_RING"), mod.RING_DEFAULT))
            self.ring = mod.RING_DEFAULT
        self.dump_objects = self.flag(env, "GCMON_DUMP_OBJECTS")
        self.dump_garbage = self.flag(env, "GCMON_DUMP_GARBAGE")

    def num(self, env, name, kind, default, lo, hi):
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            v = kind(raw)
            if not lo <= v <= hi:
                raise ValueError
            return v
        except ValueError:
            self.warn("%s=%r is not a number in [%s, %s]; using %s"
                      % (name, raw, lo, hi, default))
            return default

    def flag(self, env, name):
        raw = env.get(name, "")
        if raw in ("", "0"):
            return False
        if raw == "1":
            return True
        self.warn("%s=%r is not 0 or 1; using 0" % (name, raw))
        return False


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


def _gc_model_of(hexversion, gil_enabled, gil_disabled_build):
    """The collector model, "CLASSIC", "INCREMENTAL" or "FREE_THREADED"
    (the extension's GC_MODEL_*), of an interpreter: sys.hexversion,
    sys._is_gil_enabled() (True before 3.13), Py_GIL_DISABLED. Pure, for
    tests/e2e/test_gc_models.py. A free-threaded build keeps its collector
    with the GIL turned back on (PYTHON_GIL=1). 3.14.0-3.14.4 shipped the
    incremental collector; 3.14.5 brought the generational one back."""
    if gil_disabled_build or not gil_enabled:
        return "FREE_THREADED"
    if 0x030E0000 <= hexversion < 0x030E0500:
        return "INCREMENTAL"
    return "CLASSIC"


def _gc_model(mod):
    gil = getattr(sys, "_is_gil_enabled", None)
    return getattr(mod, "GC_MODEL_" + _gc_model_of(
        sys.hexversion, gil is None or gil(), _free_threaded()))


def _argv(mod):
    argv, total = [], 0
    for a in getattr(sys, "orig_argv", None) or sys.argv or [sys.executable]:
        b = _bytes(a, mod.MAX_STR)
        if len(argv) >= mod.MAX_ARGC or total + len(b) > mod.MAX_ARGV:
            break
        argv.append(b)
        total += len(b)
    return argv


def _register(mod, cfg, socket, service, origin):
    """Baseline, shared area and callback; returns the area's path."""
    import gc
    flags = 0
    if cfg.dump_garbage:
        gc.set_debug(gc.get_debug() | gc.DEBUG_SAVEALL)
        flags |= mod.HELLO_DEBUG_SAVEALL
        if origin == mod.ORIGIN_ROOT:
            _warn("--dump-garbage: gc.DEBUG_SAVEALL is set for this process")
    # Baseline and registration with automatic collection off, so no
    # collection falls between the snapshot and the first callback.
    enabled = gc.isenabled()
    gc.disable()
    try:
        stats = gc.get_stats()
        baseline = [(s.get("collections", 0), s.get("collected", 0),
                     s.get("uncollectable", 0)) for s in stats][:mod.MAX_GEN]
        thresholds = [int(t) for t in gc.get_threshold()][:mod.MAX_GEN]
        path = mod.start(socket=socket,
                         run_id=_bytes(cfg.run_id, mod.MAX_ID),
                         py_version=_bytes(sys.version.splitlines()[0], mod.MAX_STR),
                         executable=_bytes(sys.executable or "", mod.MAX_STR),
                         argv=_argv(mod), baseline=baseline,
                         thresholds=thresholds, hexversion=sys.hexversion,
                         origin=origin, gc_model=_gc_model(mod), flags=flags,
                         ring=cfg.ring, service=service)
        gc.callbacks.append(mod.callback)
    finally:
        if enabled:
            gc.enable()
    return path


def _exit_writer(mod, cfg):
    """The exit data, once: by the atexit handler or gcmon.stop() (detach:
    the area is final then, and unmapped)."""
    import gc
    done = []

    def at_exit(detach=False):
        if done:
            return
        done.append(True)
        try:
            objects = garbage = None
            if cfg.dump_objects:
                objects = _histogram(gc.get_objects(), _TOP, mod.MAX_ID)
            if cfg.dump_garbage:
                garbage = _histogram(gc.garbage, mod.MAX_TYPES, mod.MAX_ID)
            mod.stop(objects=objects, garbage=garbage,
                     freeze_count=gc.get_freeze_count(), detach=detach)
        except Exception as e:
            _warn("exit data not written: %s" % e)
    return at_exit


def _load(env, socket, service, warn_all, via):
    """Loads the agent; returns it. Raises on any failure."""
    global _agent, _hooks_installed
    from gcmon import _gcmon as mod

    origin = mod.ORIGIN_ROOT
    if _agent is not None:
        # Started again after stop(): what it was (GCMON_AGENT_PID is
        # our own pid now, set by the first start).
        origin = _agent.origin
    elif env.get("GCMON_AGENT_PID", "").isdigit():
        origin = mod.ORIGIN_EXEC
    # Exec'd children see the same settings: one warning is enough.
    warn = _warn if warn_all or origin == mod.ORIGIN_ROOT else (lambda m: None)
    cfg = _Settings(env, warn, mod)
    svc = _bytes(service, mod.MAX_ID) if service else b""
    path = _register(mod, cfg, socket, svc, origin)
    # Marks interpreters exec'd from here (forked children need nothing:
    # the extension gives them their own area before any Python runs).
    os.environ["GCMON_AGENT_PID"] = str(os.getpid())
    at_exit = _exit_writer(mod, cfg)
    # Registered first when loaded at start-up, so it runs after the
    # program's own atexit handlers. Only the exit data depends on it:
    # counts survive any kind of end.
    import atexit
    atexit.register(at_exit)
    # os._exit skips atexit: billiard (celery) and multiprocessing end
    # their workers with it. The stand-in writes the exit code and exit
    # data, then calls _exit(2) as posix._exit does; a fork inherits it.
    os._exit = mod._exit
    _agent = _Agent(mod, socket, service or None, path, at_exit, via)
    _agent.origin = origin
    # pygcprofiler run --requests: the servers' applications get the
    # request middleware (gcmon/_hooks.py).
    if env.get("GCMON_REQUESTS") == "1" and not _hooks_installed:
        _hooks_installed = True
        try:
            from gcmon import _hooks
            _hooks.install(warn)
        except Exception as e:
            warn("--requests: hooks not installed: %s" % e)
    return _agent


def autoload(via):
    """From the environment (via: "sitecustomize" or "pth", whichever runs
    first; the .pth does, from site's addsitepackages): never raises."""
    env = os.environ
    if _agent is not None or not env.get("GCMON_SOCKET"):
        return
    why = _unsupported()
    if why is not None:
        if not env.get("GCMON_AGENT_PID"):
            _warn("%s; not monitored" % why)
        return
    try:
        _load(env, env["GCMON_SOCKET"], env.get("GCMON_SERVICE") or None,
              False, via)
    except Exception as e:
        _warn("agent not loaded: %s" % e)


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
