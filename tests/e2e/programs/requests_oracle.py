"""The in-app oracle of test_requests.py: the application measures, with
its own gc.callbacks entries, the GC time inside each of its requests, and
writes one JSON line per request to $REQ_ORACLE_DIR/oracle-<pid>.jsonl at
exit. Kept in memory until then, so that writing costs no request a
collection.

Two entries bracket the agent's (gc.callbacks is called in order at
"start" and at "stop"): A before it, B after it. A pause as any callback
sees it lies between A's stop - B's start (inner) and B's stop - A's start
(outer); the two differ by the time between the callbacks, microseconds,
unless the scheduler preempted the process right there (a loaded machine):
the bracket says how precise this oracle was for each request."""
import atexit
import gc
import json
import os
import threading
import time

_t = [0, 0, 0, 0]       # A start, A stop, B start, B stop
_total = [0, 0, 0]      # outer ns, inner ns, collections
_rows = []


def _cb_a(phase, info):
    _t[0 if phase == "start" else 1] = time.monotonic_ns()


def _cb_b(phase, info):
    if phase == "start":
        _t[2] = time.monotonic_ns()
        return
    _t[3] = time.monotonic_ns()
    _total[0] += _t[3] - _t[0]
    _total[1] += max(0, _t[1] - _t[2])
    _total[2] += 1


gc.callbacks.insert(0, _cb_a)
gc.callbacks.append(_cb_b)


def begin():
    return (time.monotonic_ns(), _total[0], _total[1], _total[2])


def end(tok, route, client_id=None):
    start, o0, i0, n0 = tok
    end_ns = time.monotonic_ns()
    outer, inner = _total[0] - o0, _total[1] - i0
    _rows.append({"pid": os.getpid(), "tid": threading.get_native_id(),
                  "route": route, "start_ns": start,
                  "end_ns": end_ns, "gc_ns": (outer + inner) // 2,
                  "outer_ns": outer, "inner_ns": inner,
                  "ngc": _total[2] - n0, "client_id": client_id})


def _flush():
    d = os.environ.get("REQ_ORACLE_DIR")
    if not d or not _rows:
        return
    with open(os.path.join(d, "oracle-%d.jsonl" % os.getpid()), "a") as f:
        for r in _rows:
            f.write(json.dumps(r) + "\n")


atexit.register(_flush)

KEEP = []


def build_cycles(n):
    """Cyclic garbage, some kept long enough to reach generation 2."""
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


def plain():
    total = 0
    for i in range(2000):
        total += len(bytes(8)) + len(str(i))
    return total
