"""frames: a small encoder of agent frames (common/protocol.h), so that the
daemon tests can play an agent, a broken agent or a hostile client before
and besides the real agent. Layouts are copied from protocol.h; keep them
in step with it.
"""
import socket
import struct
import time

HDR = struct.Struct("<IHBB")
VERSION = 1
HELLO, EVENTS, SAMPLE, OBJECTS, GARBAGE, BYE, CONTROL = range(1, 8)
ORIGIN_ROOT, ORIGIN_FORK, ORIGIN_EXEC = 0, 1, 2
HELLO_BASELINE_INHERITED = 0x0004


def frame(ftype, payload, version=VERSION, length=None):
    n = HDR.size + len(payload) if length is None else length
    return HDR.pack(n, ftype, version, 0) + payload


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<I", len(b)) + b


def hello(pid, ppid=1, run="test-run", start_mono=None, origin=ORIGIN_ROOT,
          flags=0, reconnects=0, base=((5, 10, 0, 700), (0, 0, 0, 10), (0, 0, 0, 10)),
          argv=("prog.py",), hexversion=0x030B02F0, clock=None):
    """base: (collections, collected, uncollectable, threshold) per gen."""
    now_mono = time.monotonic_ns()
    real, mono = clock if clock else (time.time_ns(), now_mono)
    start = now_mono if start_mono is None else start_mono
    p = struct.pack("<IIQQQIBBHIB", pid, ppid, start, real, mono, hexversion,
                    origin, 0, flags, reconnects, len(base))
    for c, col, unc, th in base:
        p += struct.pack("<QQQI", c, col, unc, th)
    p += _str(run) + _str("3.11.2 (test)") + _str("/usr/bin/python3")
    p += struct.pack("<I", len(argv)) + b"".join(_str(a) for a in argv)
    return frame(HELLO, p)


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


def sample(rss, cpu_user_ns, cpu_sys_ns=0):
    return frame(SAMPLE, struct.pack("<QQQQ", time.monotonic_ns(), rss,
                                     cpu_user_ns, cpu_sys_ns))


def bye(gens, dropped=0):
    return frame(BYE, struct.pack("<Q", time.monotonic_ns()) + counters(gens, dropped))


class FakeAgent:
    """Plays one agent: keeps cumulative counters as the real one does."""

    def __init__(self, sock_path, pid, ngen=3, **hello_kw):
        self.path = sock_path
        self.pid = pid
        self.hello_kw = hello_kw
        self.hello_kw.setdefault("start_mono", time.monotonic_ns())
        self.gens = [[0, 0, 0, 0, 0] for _ in range(ngen)]
        self.dropped = 0
        self.reconnects = 0
        self.s = None
        self.connect()

    def connect(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(self.path)
        self.s.sendall(hello(self.pid, reconnects=self.reconnects, **self.hello_kw))

    def reconnect(self):
        self.s.close()
        self.reconnects += 1
        self.connect()

    def collect(self, gen, pause_ns, collected=0, uncollectable=0, send=True):
        """One collection; send=False: counted but its record is 'dropped'."""
        g = self.gens[gen]
        g[0] += 1
        g[1] += pause_ns
        g[2] = max(g[2], pause_ns)
        g[3] += collected
        g[4] += uncollectable
        if not send:
            self.dropped += 1
        rec = [event(gen, pause_ns, collected, uncollectable)] if send else []
        self.s.sendall(events([tuple(x) for x in self.gens], rec, self.dropped))

    def sample(self, rss, cpu_ns):
        self.s.sendall(sample(rss, cpu_ns))

    def bye(self):
        self.s.sendall(bye([tuple(x) for x in self.gens], self.dropped))
        self.s.close()

    def close(self):
        self.s.close()
