"""gcmon/_hooks.py: `pygcprofiler run --requests` without code changes
(GCMON_REQUESTS=1): wraps the application the server loads in gcmon.wsgi
or gcmon.asgi, in every worker. Installed by _boot.py once the agent is
loaded; acts only when the server's module is imported, so any other
program is untouched.

How each server is hooked:
* gunicorn (sync, gthread and the other workers built on
  gunicorn.workers.base.Worker): Worker.load_wsgi, which each worker
  calls after fork to load the application, is wrapped: self.wsgi goes
  into gcmon.wsgi.Middleware (gcmon.asgi.Middleware for uvicorn's
  gunicorn worker, whose application is ASGI).
* uvicorn (with or without --workers: each worker is a spawned
  interpreter that loads the agent from the environment):
  uvicorn.config.Config.load is wrapped: self.loaded_app, the ASGI 3
  application the server calls, goes into gcmon.asgi.Middleware.
* uWSGI (`pygcprofiler exec --requests -- uwsgi ...`): its master
  initialises the interpreter (the agent loads), then loads the
  application in C and forks its workers in C. An application named by
  --module/-w/--wsgi (MODULE[:CALLABLE], --callable) is imported through
  the import system: right after MODULE executes, its callable is
  replaced by gcmon.wsgi.Middleware around it, before uWSGI reads it.
  One loaded by --wsgi-file, --file, --paste, --eval, --pecan or --mount
  is compiled and executed by uWSGI's C with no Python hook in between:
  one warning says its requests are not recorded (and how to get them),
  and it runs as it would without gcmon.
A server version outside the ranges known (gunicorn 19-23, uvicorn
0.13-0.39), or one whose hook point is not there, gets one warning and
runs as it would without gcmon: its requests are not recorded, its
collections still are. A hook never raises into the server.
"""
import os
import sys

_KNOWN = {"gunicorn": ((19,), (24,)), "uvicorn": ((0, 13), (0, 40))}
_warn = None


def _version(modname):
    """(major, minor) and the text. The package's metadata first: the hook
    runs while the package itself is still being imported (uvicorn's
    __init__ imports uvicorn.config before it sets __version__)."""
    raw = ""
    try:
        from importlib import metadata
        raw = metadata.version(modname)
    except Exception:
        mod = sys.modules.get(modname)
        raw = str(getattr(mod, "__version__", "") or "")
    try:
        return tuple(int(x) for x in raw.split(".")[:2]), raw
    except ValueError:
        return (), raw or "?"


def _known(server):
    v, raw = _version(server)
    lo, hi = _KNOWN[server]
    if v and lo <= v < hi:
        return True
    _warn("--requests: %s %s is not a version gcmon knows; its requests are "
          "not recorded" % (server, raw))
    return False


def _middleware(app, asgi):
    """app in gcmon.asgi's or gcmon.wsgi's Middleware, marked: a server
    that loads it again gets it unchanged."""
    if asgi:
        from gcmon.asgi import Middleware
    else:
        from gcmon.wsgi import Middleware
    w = Middleware(app)
    w._gcmon_wrapped = True
    return w


def _hook_after(mod, clsname, method, server, wrap):
    """Makes mod.<clsname>.<method>, once it has loaded the application,
    call wrap(self) to put it in a middleware; a failure there is a
    warning, never an exception in the server."""
    cls = getattr(mod, clsname, None)
    orig = getattr(cls, method, None)
    if orig is None or not _known(server):
        if orig is None:
            _warn("--requests: %s has no %s.%s; requests are not recorded"
                  % (server, clsname, method))
        return

    def hooked(self):
        orig(self)
        try:
            wrap(self)
        except Exception as e:
            _warn("--requests: cannot wrap %s's application: %s"
                  % (server, e))
    hooked.__wrapped__ = orig
    setattr(cls, method, hooked)


def _wrap_gunicorn(worker):
    asgi = type(worker).__module__.startswith("uvicorn")   # its ASGI worker
    if not getattr(worker.wsgi, "_gcmon_wrapped", False):
        worker.wsgi = _middleware(worker.wsgi, asgi)


def _wrap_uvicorn(config):
    app = getattr(config, "loaded_app", None)
    if app is not None and not getattr(app, "_gcmon_wrapped", False):
        config.loaded_app = _middleware(app, True)


def _patch_gunicorn(mod):
    _hook_after(mod, "Worker", "load_wsgi", "gunicorn", _wrap_gunicorn)


def _patch_uvicorn(mod):
    _hook_after(mod, "Config", "load", "uvicorn", _wrap_uvicorn)


_PATCHES = {"gunicorn.workers.base": _patch_gunicorn,
            "uvicorn.config": _patch_uvicorn}

# uWSGI's loaders that run the application's file in C (pyloader.c), as
# its options are spelled on the command line and in uwsgi.opt.
_UWSGI_C_LOADERS = ("wsgi-file", "file", "paste", "eval", "pecan", "mount")
_UWSGI_MODULE = ("module", "wsgi", "w")
_uwsgi = {"on": False, "done": False, "warned": False}


def _uwsgi_warn(option):
    if _uwsgi["warned"]:
        return
    _uwsgi["warned"] = True
    _warn("--requests: uWSGI runs the application of --%s in C, where gcmon "
          "cannot wrap it; its requests are not recorded (load it with "
          "--module MODULE[:CALLABLE], or wrap it in gcmon.wsgi.Middleware)"
          % option)


def _uwsgi_values(opt, key):
    v = opt.get(key)
    if v is None:
        return []
    vals = v if isinstance(v, list) else [v]
    out = []
    for x in vals:
        if isinstance(x, bytes):
            x = x.decode("utf-8", "replace")
        if isinstance(x, str):
            out.append(x)
    return out


def _patch_uwsgi_module(callable_name):
    def patch(module):
        app = getattr(module, callable_name, None)
        if app is not None and not getattr(app, "_gcmon_wrapped", False):
            setattr(module, callable_name, _middleware(app, False))
    return patch


def _uwsgi_resolve():
    """Once uWSGI's own module exists (it is made after the interpreter
    started, before the application loads): which module to hook, from
    uwsgi.opt, the options as uWSGI parsed them (command line, ini,
    UWSGI_* environment)."""
    mod = sys.modules.get("uwsgi")
    if mod is None:
        return
    _uwsgi["done"] = True
    opt = getattr(mod, "opt", None)
    if not isinstance(opt, dict):
        return
    dflt = (_uwsgi_values(opt, "callable") or ["application"])[-1]
    hooked = False
    for key in _UWSGI_MODULE:
        for v in _uwsgi_values(opt, key):
            name, _, call = v.partition(":")
            if name and not call.endswith("()") and "/" not in name:
                _PATCHES[name] = _patch_uwsgi_module(call or dflt)
                hooked = True
    if not hooked:
        for key in _UWSGI_C_LOADERS:
            if key in opt:
                _uwsgi_warn(key)
                break


def _uwsgi_cmdline():
    """The C loaders named on uWSGI's command line, at once: an
    application file may import nothing new (no later moment to say it)."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return
    names = set()
    for a in args:
        if a.startswith(b"--"):
            names.add(a[2:].split(b"=", 1)[0].decode("latin-1"))
    if names & set(_UWSGI_MODULE) or b"-w" in args:
        return
    for key in _UWSGI_C_LOADERS:
        if key in names or os.environ.get("UWSGI_" + key.upper().replace("-", "_")):
            _uwsgi_warn(key)
            return


class _Finder(object):
    """Runs a patch right after its module is executed."""

    def find_spec(self, name, path=None, target=None):
        if _uwsgi["on"] and not _uwsgi["done"]:
            try:
                _uwsgi_resolve()
            except Exception as e:
                _uwsgi["done"] = True
                _warn("--requests: cannot read uWSGI's options: %s" % e)
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = None
        for f in sys.meta_path:
            if f is self or not hasattr(f, "find_spec"):
                continue
            spec = f.find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or \
                not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        class _Loader(object):
            def __getattr__(self, attr):
                return getattr(loader, attr)

            def create_module(self, s):
                return loader.create_module(s)

            def exec_module(self, module):
                exec_module(module)
                try:
                    patch(module)
                except Exception as e:
                    _warn("--requests: cannot hook %s: %s" % (name, e))
        spec.loader = _Loader()
        return spec


def install(warn):
    global _warn
    _warn = warn
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            try:
                patch(sys.modules[name])
            except Exception as e:
                warn("--requests: cannot hook %s: %s" % (name, e))
    if os.path.basename(sys.executable or "").startswith("uwsgi"):
        _uwsgi["on"] = True
        _uwsgi_cmdline()
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
