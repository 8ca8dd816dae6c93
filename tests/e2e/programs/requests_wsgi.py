"""A WSGI app for test_requests.py under gunicorn: /cycles builds many
cycles (gen-2 pauses of tens of ms), /plain is cheap; each request's GC
time is measured by requests_oracle from app entry to the response's
close()."""
import requests_oracle as oracle


class _Body(object):
    def __init__(self, tok, route, body, client_id):
        self.tok, self.route, self.body = tok, route, body
        self.client_id = client_id

    def __iter__(self):
        yield self.body

    def close(self):
        oracle.end(self.tok, self.route, self.client_id)


def app(environ, start_response):
    tok = oracle.begin()
    path = environ.get("PATH_INFO", "")
    if path == "/cycles":
        oracle.build_cycles(4000)
        route, body = "GET /cycles", b"cycles\n"
    else:
        route, body = "GET /plain", b"plain %d\n" % oracle.plain()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return _Body(tok, route, body, environ.get("HTTP_X_CLIENT_ID"))
