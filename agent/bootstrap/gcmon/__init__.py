"""gcmon: attach the gcmon agent to this Python process from code.

    import gcmon
    gcmon.start(socket=None, service=None)   # returns the area's path
    ...
    gcmon.stop()

For programs whose command line cannot change, and for embedding. The
agent is the one `pygcprofiler run` and the gcmon-autoload.pth hook load;
whichever runs first loads it, the others do nothing. See gcmon(7).

This module is all that a program started with the agent's environment
imports besides the extension: _autoload() (sitecustomize.py and the .pth
hook) has the extension load the agent (agent/boot.c); start(), stop()
and GcmonError come from gcmon/_boot.py when first used. Keep it
parseable by old Pythons: an unsupported one must get the message, not a
SyntaxError.
"""
import os
import sys

__all__ = ["GcmonError", "start", "stop", "__version__"]


def _warn(msg):
    try:
        sys.stderr.write("gcmon: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def _free_threaded():
    """Whether this is a free-threaded build (3.13t and later)."""
    gil = getattr(sys, "_is_gil_enabled", None)
    if gil is None:
        return False
    # The build's "t" ABI flag (PEP 703) says Py_GIL_DISABLED without
    # importing sysconfig, which would cost every 3.13 start a millisecond.
    return not gil() or "t" in getattr(sys, "abiflags", "")


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


def _install_hooks(warn):
    """pygcprofiler run --requests: the servers' applications get the
    request middleware (gcmon/_hooks.py)."""
    if os.environ.get("GCMON_REQUESTS") == "1":
        try:
            from gcmon import _hooks
            _hooks.install(warn)
        except Exception as e:
            warn("--requests: hooks not installed: %s" % e)


def _extension():
    """gcmon._gcmon, loaded as the import system loads it once it has
    found it. The search (the path finder of the package's directory,
    its listing, each suffix tried) is 0.1 ms of every monitored start,
    and the file's name is the build's own. Any trouble: the import
    statement, which says what is wrong."""
    mod = sys.modules.get("gcmon._gcmon")
    if mod is not None:
        return mod
    try:
        bootstrap = sys.modules["_frozen_importlib"]
        external = sys.modules["_frozen_importlib_external"]
        path = os.path.join(__path__[0], "_gcmon.abi3.so")
        spec = bootstrap.spec_from_loader(
            "gcmon._gcmon", external.ExtensionFileLoader("gcmon._gcmon", path),
            origin=path)
        mod = bootstrap.module_from_spec(spec)
    except Exception:
        from gcmon import _gcmon as mod
        return mod
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[spec.name]
        raise
    globals()["_gcmon"] = mod       # the package's attribute, as import sets
    return mod


def _autoload(via):
    """From the environment (via: "sitecustomize" or "pth", whichever runs
    first; the .pth does, from site's addsitepackages): never raises."""
    env = os.environ
    if not env.get("GCMON_SOCKET"):
        return
    mod = sys.modules.get("gcmon._gcmon")
    if mod is not None and mod.agent() is not None:
        return
    exec_child = bool(env.get("GCMON_AGENT_PID"))
    why = _unsupported()
    if why is not None:
        if not exec_child:
            _warn("%s; not monitored" % why)
        return
    exec_child = env.get("GCMON_AGENT_PID", "").isdigit()
    try:
        _extension().load(env["GCMON_SOCKET"],
                          env.get("GCMON_SERVICE") or None, False, via)
    except Exception as e:
        _warn("agent not loaded: %s" % e)
        return
    _install_hooks((lambda m: None) if exec_child else _warn)


def __getattr__(name):
    # PEP 562: the API's module only when the program uses it.
    if name in ("GcmonError", "start", "stop"):
        from gcmon import _boot
        return getattr(_boot, name)
    if name == "__version__":
        from gcmon._version import __version__
        return __version__
    raise AttributeError("module 'gcmon' has no attribute %r" % (name,))


if sys.version_info < (3, 7):
    # No module __getattr__ before 3.7: the API at once, so that
    # gcmon.start() can say this interpreter is not supported.
    from gcmon._boot import GcmonError, start, stop  # noqa: F401
    from gcmon._version import __version__  # noqa: F401
