"""gcmon bootstrap: loads the gcmon agent into this interpreter.

Put first on PYTHONPATH by the launcher (pygcprofiler) or by hand:
PYTHONPATH=<builddir>/agent or $(pkglibdir). When GCMON_SOCKET is set it
loads _gcmon from this directory, which creates this process's shared area
in the gcmond's agent directory (GCMON_SOCKET + ".d") and registers its
callback in gc.callbacks with the gc.get_stats() baseline; at exit it
writes the exit data there, and so does os._exit, which it replaces with
_gcmon._exit (the exit code too; posix._exit stays the real one). It then removes this directory from sys.path
and runs the sitecustomize the interpreter would have run without it. It must never stop the program: any trouble is one
stderr line starting "gcmon:". It never calls gc.collect, gc.freeze,
gc.set_threshold, and gc.get_objects only at exit when asked.
"""
import os
import sys


def _gcmon_warn(msg):
    try:
        sys.stderr.write("gcmon: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


_GCMON_DIR = os.path.dirname(os.path.abspath(__file__))
_GCMON_SELF = sys.modules.get(__name__)
_GCMON_TOP = 50                   # types in the OBJECTS histogram


def _gcmon_bytes(s, cap):
    """UTF-8 (backslashreplace, no NUL) of at most cap bytes."""
    b = str(s).encode("utf-8", "backslashreplace").replace(b"\0", b"\\x00")
    if len(b) > cap:
        b = b[:cap].decode("utf-8", "ignore").encode("utf-8")
    return b


class _GcmonSettings:
    def __init__(self, env, warn, mod):
        self.warn = warn
        self.socket = env.get("GCMON_SOCKET", "")
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


def _gcmon_type_name(t, cap):
    mod = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    if mod and mod != "builtins":
        name = "%s.%s" % (mod, name)
    return _gcmon_bytes(name, cap)


def _gcmon_histogram(objs, top, cap):
    counts = {}
    for o in objs:
        t = type(o)
        counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return (len(objs), [(_gcmon_type_name(t, cap), n) for t, n in ranked])


def _gcmon_gc_model_of(hexversion, gil_enabled, gil_disabled_build):
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


def _gcmon_free_threaded():
    """Whether this is a free-threaded build (3.13t and later)."""
    gil = getattr(sys, "_is_gil_enabled", None)
    if gil is None:
        return False
    import sysconfig
    return not gil() or bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _gcmon_argv(mod):
    argv, total = [], 0
    for a in getattr(sys, "orig_argv", None) or sys.argv or [sys.executable]:
        b = _gcmon_bytes(a, mod.MAX_STR)
        if len(argv) >= mod.MAX_ARGC or total + len(b) > mod.MAX_ARGV:
            break
        argv.append(b)
        total += len(b)
    return argv


def _gcmon_load(env):
    import gc
    # This directory is first on sys.path: the plain import finds our
    # extension without importlib.util (2.7 ms of every interpreter start).
    import _gcmon as mod

    origin = mod.ORIGIN_ROOT
    if env.get("GCMON_AGENT_PID", "").isdigit():
        origin = mod.ORIGIN_EXEC
    # Exec'd children see the same settings: one warning is enough.
    warn = _gcmon_warn if origin == mod.ORIGIN_ROOT else (lambda msg: None)
    cfg = _GcmonSettings(env, warn, mod)

    flags = 0
    free_threaded = _gcmon_free_threaded()
    if free_threaded:
        flags |= mod.HELLO_FREE_THREADED
    gil = getattr(sys, "_is_gil_enabled", None)
    gc_model = getattr(mod, "GC_MODEL_" + _gcmon_gc_model_of(
        sys.hexversion, gil() if gil else True, free_threaded))
    if cfg.dump_garbage:
        gc.set_debug(gc.get_debug() | gc.DEBUG_SAVEALL)
        flags |= mod.HELLO_DEBUG_SAVEALL
        if origin == mod.ORIGIN_ROOT:
            _gcmon_warn("--dump-garbage: gc.DEBUG_SAVEALL is set for this process")

    # Baseline and registration with automatic collection off, so no
    # collection falls between the snapshot and the first callback.
    enabled = gc.isenabled()
    gc.disable()
    try:
        stats = gc.get_stats()
        baseline = [(s.get("collections", 0), s.get("collected", 0),
                     s.get("uncollectable", 0)) for s in stats][:mod.MAX_GEN]
        thresholds = [int(t) for t in gc.get_threshold()][:mod.MAX_GEN]
        mod.start(socket=cfg.socket,
                  run_id=_gcmon_bytes(cfg.run_id, mod.MAX_ID),
                  py_version=_gcmon_bytes(sys.version.splitlines()[0], mod.MAX_STR),
                  executable=_gcmon_bytes(sys.executable or "", mod.MAX_STR),
                  argv=_gcmon_argv(mod), baseline=baseline,
                  thresholds=thresholds, hexversion=sys.hexversion,
                  origin=origin, gc_model=gc_model, flags=flags,
                  ring=cfg.ring)
        gc.callbacks.append(mod.callback)
    finally:
        if enabled:
            gc.enable()

    # Marks interpreters exec'd from here (forked children need nothing:
    # the extension gives them their own area before any Python runs).
    os.environ["GCMON_AGENT_PID"] = str(os.getpid())
    done = []

    def at_exit():
        if done:
            return
        done.append(True)
        try:
            objects = garbage = None
            if cfg.dump_objects:
                objects = _gcmon_histogram(gc.get_objects(), _GCMON_TOP,
                                           mod.MAX_ID)
            if cfg.dump_garbage:
                garbage = _gcmon_histogram(gc.garbage, mod.MAX_TYPES,
                                           mod.MAX_ID)
            mod.stop(objects=objects, garbage=garbage,
                     freeze_count=gc.get_freeze_count())
        except Exception as e:
            _gcmon_warn("exit data not written: %s" % e)

    # Registered first, so it runs after the program's own atexit handlers.
    # Only the exit data depends on it: counts survive any kind of end.
    import atexit
    atexit.register(at_exit)
    # os._exit skips atexit: billiard (celery) and multiprocessing end
    # their workers with it. The stand-in writes the exit code and exit
    # data, then calls _exit(2) as posix._exit does; a fork inherits it.
    os._exit = mod._exit


def _gcmon_chain():
    """Run the sitecustomize this interpreter would have run without us."""
    here = os.path.realpath(_GCMON_DIR)
    name = os.path.basename(here)
    # realpath (a stat a component) only for entries that could be ours.
    sys.path[:] = [p for p in sys.path
                   if os.path.basename(os.path.normpath(p or os.curdir)) != name
                   and p != _GCMON_DIR
                   or os.path.realpath(p or os.curdir) != here]
    sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401  (the next one on sys.path)
    except ImportError as e:
        if e.name != "sitecustomize":
            raise
        if _GCMON_SELF is not None:
            sys.modules["sitecustomize"] = _GCMON_SELF


if os.environ.get("GCMON_SOCKET") and sys.version_info < (3, 10):
    if not os.environ.get("GCMON_AGENT_PID"):
        _gcmon_warn("Python %d.%d is not supported (3.10 or later); not monitored"
                    % sys.version_info[:2])
elif os.environ.get("GCMON_SOCKET") and _gcmon_free_threaded():
    if not os.environ.get("GCMON_AGENT_PID"):
        _gcmon_warn("Python %d.%d free-threaded: not monitored (free-threaded "
                    "builds cannot load abi3 extensions)" % sys.version_info[:2])
elif os.environ.get("GCMON_SOCKET"):
    try:
        _gcmon_load(os.environ)
    except Exception as e:
        _gcmon_warn("agent not loaded: %s" % e)
_gcmon_chain()
