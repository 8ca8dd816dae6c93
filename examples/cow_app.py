"""cow_app: a preloaded WSGI app whose master builds a large object graph
(COW_APP_MB megabytes of small containers, 200 by default), the way a
Django or ML service imports its models and tables before forking.

Run it with `gunicorn --preload`: the graph is built once in the master and
shared copy-on-write with every worker, until a worker's first full
collection writes to every object's header and the kernel copies each
page. examples/cow-demo.sh shows what gcmon measures of it, with and
without gc.freeze() in the master (examples/cow_freeze.py); the e2e test
tests/e2e/test_memory.py uses build() too.
"""
import gc
import os


def private_bytes(pid="self"):
    """Private_Clean + Private_Dirty of a process's smaps_rollup."""
    total = 0
    with open("/proc/%s/smaps_rollup" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Private_Clean", "Private_Dirty"):
                total += int(rest.split()[0]) * 1024
    return total


def build(mb):
    """A graph of tuples of empty lists (every object tracked by the
    collector, every page holding headers it writes), about mb MB; returns
    (graph, bytes it added to this process's private memory)."""
    before = private_bytes()
    units = mb * 1024 * 1024 // 700     # a tuple of 8 lists: ~700 bytes
    graph = [tuple([] for _ in range(8)) for _ in range(units)]
    gc.collect()                        # all of it in the oldest generation
    return graph, private_bytes() - before


GRAPH, GRAPH_BYTES = build(int(os.environ.get("COW_APP_MB", "200")))


def app(environ, start_response):
    body = b"%d objects\n" % (len(GRAPH) * 9)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
