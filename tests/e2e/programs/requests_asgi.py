"""An ASGI 3 app for test_requests.py under uvicorn: /cycles builds many
cycles, /plain is cheap; each request's GC time is measured by
requests_oracle from app entry to after its last body chunk was sent."""
import requests_oracle as oracle


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    tok = oracle.begin()
    if scope["path"] == "/cycles":
        oracle.build_cycles(4000)
        route, body = "GET /cycles", b"cycles\n"
    else:
        route, body = "GET /plain", b"plain %d\n" % oracle.plain()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    oracle.end(tok, route)
