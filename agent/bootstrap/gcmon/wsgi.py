"""gcmon.wsgi: a WSGI middleware recording each request into the gcmon
agent's request ring, so that gcmond can say which requests each
collection delayed (gcmonctl requests).

    import gcmon.wsgi
    application = gcmon.wsgi.Middleware(application)

A request starts when the server calls the application and ends when the
server closes the response iterable (PEP 3333: after the last chunk was
sent, or when it gave up): a streaming response ends at its last chunk.
An application that raises is counted (REQ_ERROR), so is a response the
server closed before its end (REQ_DISCONNECT: the client went away). The
route is the framework's template (Flask, Django: gcmon/_requests.py,
read before the response's own close(), which lets Django's request go) or
the method and first path segment. Without an agent: pass-through, and
one warning.
"""
from gcmon import _requests as _r


def _route(mod, environ, state, response=None):
    method = environ.get("REQUEST_METHOD", "?")
    name = environ.get("gcmon.route")
    if name is None:
        req = state[2]
        name = _r.template(method, req if req is not None
                           else environ.get("werkzeug.request"))
    if name is None:
        name = _r.template(method, environ.get("gcmon.request"))
    if name is None and response is not None:
        name = _r.template(method, _r.django_request(response))
    if name is None:
        name = _r.fallback(method, environ.get("PATH_INFO", "/"))
    return _r.route_id(mod, name)


class _Response(object):
    """The application's iterable; the request ends at close()."""

    def __init__(self, mod, token, environ, it, state):
        self._mod, self._token, self._environ = mod, token, environ
        self._it, self._state = it, state
        self._chunks = 0
        self._done = False
        self._ended = False

    def __iter__(self):
        try:
            for chunk in self._it:
                self._chunks += 1
                yield chunk
        except GeneratorExit:
            raise
        except BaseException:
            self._state[1] |= _r.ERROR
            raise
        self._done = True

    def close(self):
        if self._ended:
            return
        self._ended = True
        # The route first: whatever it allocates (and any collection that
        # triggers) is inside the request, as the application's close is.
        rid = _route(self._mod, self._environ, self._state, self._it)
        flags = self._state[1]
        if not self._done and not flags & _r.ERROR:
            flags |= _r.DISCONNECT
        if self._chunks > 1:
            flags |= _r.STREAMED
        try:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()
        except BaseException:
            flags |= _r.ERROR
            raise
        finally:
            self._mod.request_end(self._token, rid, self._state[0], flags)


class Middleware(_r.Wrapper):
    """Wraps a WSGI application; see the module's docstring."""

    def __call__(self, environ, start_response):
        mod = self._mod if self._looked else self._recorder(
            "gcmon.wsgi.Middleware")
        if mod is None:
            return self.app(environ, start_response)
        # status, flags, and the werkzeug request as start_response saw
        # it (Flask takes it out of environ when its context ends, before
        # the server closes the response).
        state = [0, 0, None]

        def sr(status, headers, exc_info=None):
            try:
                state[0] = int(str(status)[:3])
            except ValueError:
                pass
            state[2] = environ.get("werkzeug.request")
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        # Last before the application: what allocates is done already.
        token = mod.request_begin()
        if token < 0:
            return self.app(environ, start_response)
        try:
            it = self.app(environ, sr)
        except BaseException:
            rid = _route(mod, environ, state)
            mod.request_end(token, rid, state[0] or 500, _r.ERROR)
            raise
        return _Response(mod, token, environ, it, state)
