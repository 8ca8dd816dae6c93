"""The in-app oracle of test_requests.py: the application measures, with
its own gc.callbacks entry, the GC time inside each of its requests, and
writes one JSON line per request to $REQ_ORACLE_DIR/oracle-<pid>.jsonl at
exit. Kept in memory until then, so that writing costs no request a
collection."""
import atexit
import gc
import json
import os
import time

_t0 = [0]
_total = [0, 0]         # GC ns, collections
_rows = []


def _cb(phase, info):
    if phase == "start":
        _t0[0] = time.monotonic_ns()
    else:
        _total[0] += time.monotonic_ns() - _t0[0]
        _total[1] += 1


gc.callbacks.append(_cb)


def begin():
    return (time.monotonic_ns(), _total[0], _total[1])


def end(tok, route):
    start, g0, n0 = tok
    _rows.append({"pid": os.getpid(), "route": route, "start_ns": start,
                  "end_ns": time.monotonic_ns(), "gc_ns": _total[0] - g0,
                  "ngc": _total[1] - n0})


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
