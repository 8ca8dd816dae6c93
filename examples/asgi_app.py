"""examples/asgi_app.py: a small ASGI app for uvicorn; each request makes
cyclic garbage like examples/app.py does.

    pygcprofiler run -m uvicorn --app-dir examples --workers 2 asgi_app:app
"""
import json


def _garbage(n):
    out = []
    for i in range(n):
        a, b = {"i": i}, {"i": -i}
        a["peer"], b["peer"] = b, a   # a two-object cycle
        out.append(a)
    return len(out)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = json.dumps({"objects": _garbage(2000)}).encode() + b"\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
