"""uwsgi_app: the WSGI application tests/e2e/test_uwsgi.py serves with
uWSGI (--wsgi-file); never run on its own.

Every request to / makes cyclic garbage (so the worker's automatic
collections run) and answers the worker's pid. GET /stats turns this
worker's collector off and writes its gc.get_stats() once to
$GCMONTEST_UWSGI_OUTDIR/<pid>.json (written to a temporary name, then renamed:
the test never reads half a file); it then sleeps a little, so while
this worker is busy the test's next /stats requests reach its siblings.
After /stats a worker collects no more, so the figures it wrote are its
final ones. GET /env answers what the test needs to know about how the
worker's interpreter started (site loaded, agent loaded, GCMON_SOCKET
seen). It never calls gc.collect.
"""
import gc
import json
import os
import sys
import time

OUTDIR = os.environ["GCMONTEST_UWSGI_OUTDIR"]
CYCLES = 1500          # per request: about two generation 0 collections


class Node:
    def __init__(self):
        self.me = self


def _garbage():
    for _ in range(CYCLES):
        Node()


def _write_stats():
    pid = os.getpid()
    path = os.path.join(OUTDIR, "%d.json" % pid)
    if os.path.exists(path):
        return
    gc.disable()
    rec = {"pid": pid, "ppid": os.getppid(),
           "stats": [[s["collections"], s["collected"], s["uncollectable"]]
                     for s in gc.get_stats()]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.rename(tmp, path)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/stats":
        _write_stats()
        time.sleep(0.05)
    elif path == "/":
        _garbage()
    elif path == "/env":
        body = json.dumps({"pid": os.getpid(), "site": "site" in sys.modules,
                           "agent": "gcmon._gcmon" in sys.modules,
                           "socket": bool(os.environ.get("GCMON_SOCKET"))})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body.encode()]
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
