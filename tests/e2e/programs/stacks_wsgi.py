"""A WSGI app for test_stacks.py under gunicorn: /cycles builds cyclic
garbage (some kept long enough to reach generation 2), /plain only
allocates objects the collector does not track."""
KEEP = []


def build_cycles(n):
    for i in range(n):
        a = [i]
        b = [a]
        a.append(b)
        if i % 2:
            KEEP.append(a)
        if len(KEEP) > 40000:
            for old in KEEP[:20000]:
                old.pop()
            del KEEP[:20000]
    for _ in range(200):
        pass


def cycles_view():
    build_cycles(4000)
    return b"cycles\n"


def plain_view():
    total = 0
    for i in range(4000):
        total += len(bytes(8)) + len(str(i))
    return b"plain %d\n" % total


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    body = cycles_view() if path == "/cycles" else plain_view()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
