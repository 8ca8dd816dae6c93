"""gcmon/_requests.py: what gcmon.wsgi and gcmon.asgi share: the agent's
request recorder (the extension's request_begin/request_end, which write
the process's request ring in C: common/shm.h, "Requests") and route names.

A route name is the framework's template where the request carries one
(Flask's request.url_rule, Django's request.resolver_match.route,
Starlette's scope["route"].path; an application may set
environ["gcmon.route"] or scope["gcmon.route"] itself), else the method and
the first path segment ("GET /users"). How each is found, without
patching the framework: Flask's request is environ["werkzeug.request"]
(werkzeug puts it there); Django's is the one whose close() its response
will call (the response is what the server iterates); a Starlette without
scope["route"] (before FastAPI set it) has its router in scope["router"],
whose routes are matched again against the request's path. Only that is kept: never a query
string, a body or a header. Names are interned once per process (the
extension keeps at most ROUTES - 1, the rest are "other").

Without an agent loaded the middlewares pass every request through and
warn once.
"""
import sys

ERROR = DISCONNECT = STREAMED = 0
_mod = None
_warned = []
_ids = {}               # route name -> id, this process's (ids survive fork)


def _warn_once(what):
    if _warned:
        return
    _warned.append(True)
    try:
        sys.stderr.write("gcmon: %s: no gcmon agent in this process; "
                         "requests are not recorded (run under pygcprofiler "
                         "run, or call gcmon.start() first)\n" % what)
        sys.stderr.flush()
    except Exception:
        pass


def recorder(what):
    """The extension when an agent records in this process, else None
    (and one warning)."""
    global _mod, ERROR, DISCONNECT, STREAMED
    if _mod is not None:
        return _mod
    try:
        from gcmon import _boot
        if _boot._agent is None or _boot._agent.stopped:
            raise ImportError
        mod = _boot._agent.mod
    except Exception:
        _warn_once(what)
        return None
    ERROR, DISCONNECT, STREAMED = mod.REQ_ERROR, mod.REQ_DISCONNECT, mod.REQ_STREAMED
    _mod = mod
    return mod


def route_id(mod, name):
    rid = _ids.get(name)
    if rid is None:
        b = name.encode("utf-8", "backslashreplace").replace(b"\0", b"")
        rid = mod.request_route(b[:mod.ROUTE_NAME_MAX])
        _ids[name] = rid
    return rid


def fallback(method, path):
    """The method and the first path segment: "GET /users"."""
    if not isinstance(path, str):
        try:
            path = path.decode("latin-1")
        except Exception:
            path = "/"
    seg = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
    if len(seg) > 48:
        seg = seg[:48]
    return "%s /%s" % (method or "?", seg)


def template(method, obj):
    """A framework's template for the request obj (Flask's or Django's
    request), or None."""
    if obj is None:
        return None
    try:
        rule = getattr(obj, "url_rule", None)           # Flask (werkzeug)
        if rule is not None:
            return "%s %s" % (method, getattr(rule, "rule", rule))
        match = getattr(obj, "resolver_match", None)    # Django
        if match is not None and getattr(match, "route", None):
            return "%s /%s" % (method, match.route)
    except Exception:
        pass
    return None


def django_request(response):
    """The Django request behind a WSGI response, or None: Django 3.1+
    hands its response request.close to call (_resource_closers); 2.x-3.0
    the request itself (_closable_objects)."""
    for c in getattr(response, "_resource_closers", None) or ():
        req = getattr(c, "__self__", None)
        if req is not None and hasattr(req, "resolver_match"):
            return req
    for req in getattr(response, "_closable_objects", None) or ():
        if hasattr(req, "resolver_match"):
            return req
    return None


def _match_routes(routes, scope, prefix, depth):
    """The template of the first route of a Starlette router that matches
    scope fully (else the first partial: a 405), Mounts followed."""
    partial = None
    for route in routes:
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        match, child = matches(scope)
        kind = getattr(match, "value", match)       # Match.FULL == 2
        if kind == 0:
            continue
        path = getattr(route, "path", None)
        sub = getattr(route, "routes", None)
        if kind == 2:
            if sub and depth < 8:
                inner = dict(scope)
                inner.update(child)
                found = _match_routes(sub, inner, prefix + (path or ""), depth + 1)
                if found is not None:
                    return found
            if isinstance(path, str):
                return prefix + path
            return None
        if partial is None and isinstance(path, str):
            partial = prefix + path
    return partial


def starlette_path(scope, path):
    """Starlette's route template for scope (the request's path as the
    server gave it), or None."""
    route = scope.get("route")
    tpl = getattr(route, "path", None)
    if isinstance(tpl, str):
        return tpl
    router = scope.get("router")
    routes = getattr(router, "routes", None)
    if not routes or "endpoint" not in scope:
        return None
    probe = {"type": scope.get("type", "http"), "path": path,
             "method": scope.get("method", "GET"),
             "root_path": scope.get("app_root_path", ""),
             "headers": scope.get("headers", ())}
    try:
        return _match_routes(routes, probe, "", 0)
    except Exception:
        return None


class Wrapper(object):
    """What both middlewares are around the application they wrap: its
    attributes show through; the agent's module is looked up on the
    first request (recorder)."""

    def __init__(self, app):
        self.app = app
        self._mod = None
        self._looked = False

    def _recorder(self, what):
        """The agent's module (None: pass through), looked up on the first
        request. The threads of a gthread worker make their first requests
        at once and recorder() may let the GIL go: _looked is set after
        _mod, never before, or another thread would take a lookup still
        in progress for "no agent" and pass its request through
        unrecorded (callers read _looked first, then _mod). Two lookups
        at once are harmless (one warning)."""
        if not self._looked:
            self._mod = recorder(what)
            self._looked = True
        return self._mod

    def __getattr__(self, name):
        return getattr(self.app, name)
