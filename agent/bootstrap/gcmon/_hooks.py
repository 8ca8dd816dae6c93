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
A server version outside the ranges known (gunicorn 19-23, uvicorn
0.13-0.39), or one whose hook point is not there, gets one warning and
runs as it would without gcmon: its requests are not recorded, its
collections still are. A hook never raises into the server.
"""
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


def _patch_gunicorn(mod):
    worker = getattr(mod, "Worker", None)
    orig = getattr(worker, "load_wsgi", None)
    if orig is None or not _known("gunicorn"):
        if orig is None:
            _warn("--requests: gunicorn has no Worker.load_wsgi; requests "
                  "are not recorded")
        return

    def load_wsgi(self):
        orig(self)
        try:
            app = self.wsgi
            if getattr(app, "_gcmon_wrapped", False):
                return
            if type(self).__module__.startswith("uvicorn"):
                from gcmon.asgi import Middleware
            else:
                from gcmon.wsgi import Middleware
            self.wsgi = Middleware(app)
            self.wsgi._gcmon_wrapped = True
        except Exception as e:
            _warn("--requests: cannot wrap gunicorn's application: %s" % e)
    load_wsgi.__wrapped__ = orig
    worker.load_wsgi = load_wsgi


def _patch_uvicorn(mod):
    config = getattr(mod, "Config", None)
    orig = getattr(config, "load", None)
    if orig is None or not _known("uvicorn"):
        if orig is None:
            _warn("--requests: uvicorn has no Config.load; requests are "
                  "not recorded")
        return

    def load(self):
        orig(self)
        try:
            app = getattr(self, "loaded_app", None)
            if app is None or getattr(app, "_gcmon_wrapped", False):
                return
            from gcmon.asgi import Middleware
            self.loaded_app = Middleware(app)
            self.loaded_app._gcmon_wrapped = True
        except Exception as e:
            _warn("--requests: cannot wrap uvicorn's application: %s" % e)
    load.__wrapped__ = orig
    config.load = load


_PATCHES = {"gunicorn.workers.base": _patch_gunicorn,
            "uvicorn.config": _patch_uvicorn}


class _Finder(object):
    """Runs a patch right after its module is executed."""

    def find_spec(self, name, path=None, target=None):
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
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
