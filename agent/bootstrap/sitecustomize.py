"""gcmon bootstrap: loads the gcmon agent into this interpreter.

Put first on PYTHONPATH by the launcher (pygcprofiler) or by hand:
PYTHONPATH=<builddir>/agent or $(pkglibdir). When GCMON_SOCKET is set it
loads _gcmon from this directory, registers its callback in gc.callbacks
with the gc.get_stats() baseline, and sends at exit; it then removes this
directory from sys.path and runs the sitecustomize the interpreter would
have run without it. It must never stop the program: any trouble is one
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
_GCMON_TOP = 50                   # types in an OBJECTS frame
_GCMON_MAX_TYPES = 4096           # PROTO_MAX_TYPES
_GCMON_MAX_ID = 256               # PROTO_MAX_ID
_GCMON_MAX_STR = 4096             # PROTO_MAX_STR
_GCMON_MAX_ARGC = 1024            # PROTO_MAX_ARGC
_GCMON_MAX_ARGV = 64 << 10        # PROTO_MAX_ARGV


def _gcmon_bytes(s, cap):
    """UTF-8 (backslashreplace, no NUL) of at most cap bytes."""
    b = str(s).encode("utf-8", "backslashreplace").replace(b"\0", b"\\x00")
    if len(b) > cap:
        b = b[:cap].decode("utf-8", "ignore").encode("utf-8")
    return b


class _GcmonSettings:
    def __init__(self, env, warn):
        self.warn = warn
        self.socket = env.get("GCMON_SOCKET", "")
        self.run_id = env.get("GCMON_RUN_ID", "")
        self.flush_ms = self.num(env, "GCMON_FLUSH_MS", int, 100, 1, 3600000)
        self.interval = self.num(env, "GCMON_INTERVAL", float, 5.0, 0.001, 86400.0)
        self.ring = self.num(env, "GCMON_RING", int, 16384, 1, 1 << 24)
        self.exit_timeout_ms = self.num(env, "GCMON_EXIT_TIMEOUT_MS", int,
                                        1000, 0, 3600000)
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


def _gcmon_type_name(t):
    mod = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    if mod and mod != "builtins":
        name = "%s.%s" % (mod, name)
    return _gcmon_bytes(name, _GCMON_MAX_ID)


def _gcmon_histogram(objs, top):
    counts = {}
    for o in objs:
        t = type(o)
        counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return (len(objs), [(_gcmon_type_name(t), n) for t, n in ranked])


def _gcmon_gc_model():
    gil = getattr(sys, "_is_gil_enabled", None)
    if gil is not None and not gil():
        return 2                  # GC_MODEL_FREE_THREADED
    if 0x030E0000 <= sys.hexversion < 0x030E0500:
        return 1                  # GC_MODEL_INCREMENTAL
    return 0                      # GC_MODEL_CLASSIC


def _gcmon_load(env):
    import gc
    import importlib.machinery
    import importlib.util

    origin = 0                    # ORIGIN_ROOT
    parent = env.get("GCMON_AGENT_PID", "")
    if parent.isdigit():
        origin = 2                # ORIGIN_EXEC
    # Exec'd children see the same settings: one warning is enough.
    warn = _gcmon_warn if origin == 0 else (lambda msg: None)
    cfg = _GcmonSettings(env, warn)

    path = os.path.join(_GCMON_DIR, "_gcmon.abi3.so")
    loader = importlib.machinery.ExtensionFileLoader("_gcmon", path)
    spec = importlib.util.spec_from_file_location("_gcmon", path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    sys.modules["_gcmon"] = mod

    flags = 0
    if getattr(sys, "_is_gil_enabled", None) is not None:
        import sysconfig
        if sysconfig.get_config_var("Py_GIL_DISABLED"):
            flags |= 0x0001       # PROTO_HELLO_FREE_THREADED
    if cfg.dump_garbage:
        gc.set_debug(gc.get_debug() | gc.DEBUG_SAVEALL)
        flags |= 0x0002           # PROTO_HELLO_DEBUG_SAVEALL
        if origin == 0:
            _gcmon_warn("--dump-garbage: gc.DEBUG_SAVEALL is set for this process")

    argv, total = [], 0
    for a in getattr(sys, "orig_argv", None) or sys.argv or [sys.executable]:
        b = _gcmon_bytes(a, _GCMON_MAX_STR)
        if len(argv) >= _GCMON_MAX_ARGC or total + len(b) > _GCMON_MAX_ARGV:
            break
        argv.append(b)
        total += len(b)

    # Baseline and registration with automatic collection off, so no
    # collection falls between the snapshot and the first callback.
    enabled = gc.isenabled()
    gc.disable()
    try:
        stats = gc.get_stats()
        baseline = [(s.get("collections", 0), s.get("collected", 0),
                     s.get("uncollectable", 0)) for s in stats][:8]
        thresholds = [int(t) for t in gc.get_threshold()][:8]
        mod.start(socket=cfg.socket,
                  run_id=_gcmon_bytes(cfg.run_id, _GCMON_MAX_ID),
                  py_version=_gcmon_bytes(sys.version.splitlines()[0], _GCMON_MAX_STR),
                  executable=_gcmon_bytes(sys.executable or "", _GCMON_MAX_STR),
                  argv=argv, baseline=baseline, thresholds=thresholds,
                  hexversion=sys.hexversion, origin=origin,
                  gc_model=_gcmon_gc_model(), flags=flags,
                  flush_ms=cfg.flush_ms, interval=cfg.interval, ring=cfg.ring,
                  exit_timeout_ms=cfg.exit_timeout_ms)
        gc.callbacks.append(mod.callback)
    finally:
        if enabled:
            gc.enable()

    os.environ["GCMON_AGENT_PID"] = str(os.getpid())

    def after_fork_child():
        try:
            os.environ["GCMON_AGENT_PID"] = str(os.getpid())
            mod._after_fork_child()
            _gcmon_hook_multiprocessing(sys._getframe(1), at_exit)
        except Exception as e:
            _gcmon_warn("agent not restarted after fork: %s" % e)

    done = []

    def at_exit():
        if done:
            return
        done.append(True)
        try:
            objects = garbage = None
            if cfg.dump_objects:
                objects = _gcmon_histogram(gc.get_objects(), _GCMON_TOP)
            if cfg.dump_garbage:
                garbage = _gcmon_histogram(gc.garbage, _GCMON_MAX_TYPES)
            mod.stop(objects=objects, garbage=garbage)
        except Exception as e:
            _gcmon_warn("final flush failed: %s" % e)

    def before_fork():
        try:
            mod._before_fork()
        except Exception as e:
            _gcmon_warn("agent not paused before fork: %s" % e)

    def after_fork_parent():
        try:
            mod._after_fork_parent()
        except Exception as e:
            _gcmon_warn("agent not resumed after fork: %s" % e)

    # The flusher thread is stopped around os.fork(): 3.12+ warns when a
    # process with threads forks, and a program must see no new warning.
    os.register_at_fork(before=before_fork, after_in_parent=after_fork_parent,
                        after_in_child=after_fork_child)
    # 3.13+ counts threads before the hooks run: pause inside os.fork too.
    for name in ("fork", "forkpty"):
        real = getattr(os, name, None)
        if real is not None:
            setattr(os, name, mod.wrap_fork(real, name))
    # Registered first, so it runs after the program's own atexit handlers.
    import atexit
    atexit.register(at_exit)


def _gcmon_hook_multiprocessing(caller, at_exit):
    """A child forked by multiprocessing (fork or forkserver) leaves with
    os._exit, so atexit never runs there; but multiprocessing runs its
    finalizers (util._exit_function) just before, and the last of them
    sends the final counters and BYE. Only such children: anywhere else
    the finalizers run from atexit, before the program's later handlers,
    and an early BYE would miss their collections."""
    name = caller.f_code.co_filename if caller is not None else ""
    util = sys.modules.get("multiprocessing.util")
    if util is None or not name.endswith(("popen_fork.py", "forkserver.py")):
        return
    # The child's Process._bootstrap clears the finalizers it inherited
    # and then runs the after-fork callbacks: register from there.
    # Finalizers run by descending priority: this one runs last.
    util.register_after_fork(
        sys.modules["_gcmon"],
        lambda _mod: util.Finalize(None, at_exit, exitpriority=-sys.maxsize))


def _gcmon_chain():
    """Run the sitecustomize this interpreter would have run without us."""
    here = os.path.realpath(_GCMON_DIR)
    sys.path[:] = [p for p in sys.path
                   if os.path.realpath(p or os.curdir) != here]
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
elif os.environ.get("GCMON_SOCKET"):
    try:
        _gcmon_load(os.environ)
    except Exception as e:
        _gcmon_warn("agent not loaded: %s" % e)
_gcmon_chain()
