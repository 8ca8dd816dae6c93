"""gcmon.asgi: an ASGI 3 middleware recording each HTTP request into the
gcmon agent's request ring (gcmonctl requests). websocket and lifespan
scopes pass through untouched.

    import gcmon.asgi
    app = gcmon.asgi.Middleware(app)

A request starts when the server calls the application and ends when the
last body chunk was sent (http.response.body without more_body), or
when the application returns or raises without sending it: a streaming
response ends at its last chunk. Counted beside the time: an application
that raises (REQ_ERROR), a client that went away (http.disconnect
received, or send() failed: REQ_DISCONNECT), a body of several chunks
(REQ_STREAMED). The route is Starlette's scope["route"].path (or
scope["gcmon.route"]; a Starlette that does not set scope["route"] has its
routes matched again: gcmon/_requests.py), else the method and first path
segment. Without an
agent: pass-through, and one warning.
"""
from gcmon import _requests as _r


def _route(mod, scope, path):
    method = scope.get("method", "?")
    name = scope.get("gcmon.route")
    if name is None:
        tpl = _r.starlette_path(scope, path)
        if tpl is not None:
            name = "%s %s" % (method, tpl)
    if name is None:
        name = _r.fallback(method, path)
    return _r.route_id(mod, name)


class Middleware(_r.Wrapper):
    """Wraps an ASGI 3 application; see the module's docstring."""

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        mod = self._mod if self._looked else self._recorder(
            "gcmon.asgi.Middleware")
        if mod is None:
            return await self.app(scope, receive, send)
        st = [0, 0, 0, False, -1]   # status, flags, chunks, ended, token
        # A Mount rewrites scope["path"] on the way in: the server's, kept.
        path = scope.get("path", "/")

        def end():
            if st[3]:
                return
            st[3] = True
            flags = st[1] | (_r.STREAMED if st[2] > 1 else 0)
            rid = _route(mod, scope, path)
            mod.request_end(st[4], rid, st[0], flags)

        async def rcv():
            msg = await receive()
            if msg.get("type") == "http.disconnect":
                st[1] |= _r.DISCONNECT
            return msg

        async def snd(msg):
            t = msg.get("type")
            if t == "http.response.start":
                st[0] = int(msg.get("status", 0))
            try:
                await send(msg)
            except BaseException:
                st[1] |= _r.DISCONNECT
                raise
            if t == "http.response.body":
                st[2] += 1
                if not msg.get("more_body", False):
                    end()

        # The coroutine made (it allocates) before the request begins;
        # awaiting it runs the application at once.
        coro = self.app(scope, rcv, snd)
        st[4] = mod.request_begin()
        if st[4] < 0:
            return await coro
        try:
            await coro
        except BaseException:
            if not st[3]:
                st[1] |= _r.ERROR
                if st[0] == 0:
                    st[0] = 500
            raise
        finally:
            end()
