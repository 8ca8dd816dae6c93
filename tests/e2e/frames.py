"""frames: a small encoder of gcmon frames (common/protocol.h) for the
daemon tests: the HELLO that a fake shared area carries (shmarea.py), and
what hostile socket peers send, retired frames included (EVENTS, SAMPLE:
gcmond must refuse them like unknown types). Layouts are copied from
protocol.h; keep them in step with it.
"""
import struct
import time

HDR = struct.Struct("<IHBB")
VERSION = 1
# EVENTS (2), SAMPLE (3) and BYE (6) are retired: reserved numbers that
# gcmond refuses; kept here so tests can send them.
HELLO, EVENTS, SAMPLE, OBJECTS, GARBAGE, BYE, CONTROL = range(1, 8)
ORIGIN_ROOT, ORIGIN_FORK, ORIGIN_EXEC = 0, 1, 2
HELLO_BASELINE_INHERITED = 0x0004
HELLO_PLACE, HELLO_LOCKED = 0x0010, 0x0020          # protocol.h PROTO_HELLO_*


def frame(ftype, payload, version=VERSION, length=None):
    n = HDR.size + len(payload) if length is None else length
    return HDR.pack(n, ftype, version, 0) + payload


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<I", len(b)) + b


def hello(pid, ppid=1, run="test-run", start_mono=None, origin=ORIGIN_ROOT,
          flags=0, base=((5, 10, 0, 700), (0, 0, 0, 10), (0, 0, 0, 10)),
          argv=("prog.py",), hexversion=0x030B02F0, clock=None, gc_model=0,
          place=None, locked=False):
    """base: (collections, collected, uncollectable, threshold) per gen;
    gc_model: enum proto_gc_model (0 classic, 1 incremental, 2 free-threaded);
    place: (pidns_ino, pidns_dev[, hostname, cgroup, pod, namespace]), the
    PROTO_HELLO_PLACE part; locked: PROTO_HELLO_LOCKED is set."""
    if place is not None:
        flags |= HELLO_PLACE
    if locked:
        flags |= HELLO_LOCKED
    now_mono = time.monotonic_ns()
    real, mono = clock if clock else (time.time_ns(), now_mono)
    start = now_mono if start_mono is None else start_mono
    p = struct.pack("<IIQQQIBBHIB", pid, ppid, start, real, mono, hexversion,
                    origin, gc_model, flags, 0, len(base))  # 0: reserved
    for c, col, unc, th in base:
        p += struct.pack("<QQQI", c, col, unc, th)
    p += _str(run) + _str("3.11.2 (test)") + _str("/usr/bin/python3")
    p += struct.pack("<I", len(argv)) + b"".join(_str(a) for a in argv)
    if place is not None:
        ino, dev, *names = place
        names = list(names) + [""] * (4 - len(names))
        p += struct.pack("<QQ", ino, dev) + b"".join(_str(x) for x in names)
    return frame(HELLO, p)


# The retired EVENTS frame, for hostile-peer tests only.
def counters(gens, dropped=0):
    """gens: (count, pause_ns, max_pause_ns, collected, uncollectable) per gen."""
    p = struct.pack("<QB", dropped, len(gens))
    for g in gens:
        p += struct.pack("<QQQQQ", *g)
    return p


def event(gen, pause_ns, collected=0, uncollectable=0, start_ns=None):
    start = time.monotonic_ns() if start_ns is None else start_ns
    return struct.pack("<QQQQIHH", start, pause_ns, 0, collected,
                       uncollectable, gen, 0)


def events(gens, recs, dropped=0):
    return frame(EVENTS, counters(gens, dropped) + struct.pack("<I", len(recs))
                 + b"".join(recs))
