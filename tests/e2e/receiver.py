"""receiver: a small gcmon frame receiver for the agent's tests.

A threaded Unix-socket server that decodes agent frames in Python, using
the layout of common/protocol.h, and keeps what each process sent. It is
what test_agent.py talks to; the totals it computes (baseline + the last
counters) follow DESIGN.md "Exact totals", so switching a test to the
real gcmond (gcmontest.Daemon) changes where the numbers come from, not
what they must equal. It never writes to an agent.
"""
import os
import socket
import struct
import threading

HDR = struct.Struct("<IHBB")
PROTO_VERSION = 1
FRAME_HELLO, FRAME_EVENTS, FRAME_SAMPLE, FRAME_OBJECTS, FRAME_GARBAGE, \
    FRAME_BYE, FRAME_CONTROL = range(1, 8)
ORIGIN_ROOT, ORIGIN_FORK, ORIGIN_EXEC = 0, 1, 2
HELLO_BASELINE_INHERITED = 0x0004
PROTO_MAX_FRAME = 4 << 20

_HELLO_FIXED = struct.Struct("<IIQQQIBBHIB")
_BASE = struct.Struct("<QQQI")
_GEN = struct.Struct("<QQQQQ")
_EVENT = struct.Struct("<QQQQIHH")
_SAMPLE = struct.Struct("<QQQQ")


class _Buf:
    def __init__(self, b):
        self.b, self.off = b, 0

    def take(self, st):
        if self.off + st.size > len(self.b):
            raise ValueError("short payload")
        v = st.unpack_from(self.b, self.off)
        self.off += st.size
        return v

    def u(self, fmt):
        return self.take(struct.Struct("<" + fmt))[0]

    def str(self):
        n = self.u("I")
        if self.off + n > len(self.b):
            raise ValueError("short string")
        s = self.b[self.off:self.off + n].decode("utf-8")
        self.off += n
        return s

    def end(self):
        if self.off != len(self.b):
            raise ValueError("%d bytes after the last field" % (len(self.b) - self.off))


def _counters(b):
    dropped = b.u("Q")
    ngen = b.u("B")
    if not 1 <= ngen <= 8:
        raise ValueError("ngen %d" % ngen)
    gens = [dict(zip(("count", "pause_ns", "max_pause_ns", "collected",
                      "uncollectable"), b.take(_GEN))) for _ in range(ngen)]
    return {"dropped": dropped, "gen": gens}


def decode(typ, payload):
    """The payload of one frame as a dict (raises ValueError if bad)."""
    b = _Buf(payload)
    if typ == FRAME_HELLO:
        f = dict(zip(("pid", "ppid", "start_mono_ns", "clock_real_ns",
                      "clock_mono_ns", "py_hexversion", "origin", "gc_model",
                      "flags", "reconnects", "ngen"), b.take(_HELLO_FIXED)))
        f["base"] = [dict(zip(("collections", "collected", "uncollectable",
                               "threshold"), b.take(_BASE))) for _ in range(f["ngen"])]
        f["run_id"] = b.str()
        f["py_version"] = b.str()
        f["executable"] = b.str()
        f["argv"] = [b.str() for _ in range(b.u("I"))]
    elif typ == FRAME_EVENTS:
        f = {"counters": _counters(b)}
        f["events"] = [dict(zip(("start_ns", "pause_ns", "collector_ns",
                                 "collected", "uncollectable", "generation",
                                 "flags"), b.take(_EVENT))) for _ in range(b.u("I"))]
    elif typ == FRAME_SAMPLE:
        f = dict(zip(("mono_ns", "rss_bytes", "cpu_user_ns", "cpu_sys_ns"), b.take(_SAMPLE)))
    elif typ in (FRAME_OBJECTS, FRAME_GARBAGE):
        f = {"total": b.u("Q"), "types": []}
        for _ in range(b.u("I")):
            n = b.u("Q")
            f["types"].append((b.str(), n))
    elif typ == FRAME_BYE:
        f = {"mono_ns": b.u("Q"), "counters": _counters(b)}
    else:
        raise ValueError("unexpected frame type %d" % typ)
    b.end()
    return f


class Proc:
    """What one process (pid, start_mono_ns) sent over all its connections."""

    def __init__(self, hello):
        self.hello = hello
        self.pid = hello["pid"]
        self.hellos = []
        self.counters = None
        self.events = []
        self.samples = []
        self.objects = None
        self.garbage = None
        self.bye = None
        self.connections = 0
        self.open = 0

    def totals(self):
        """Per generation: baseline + last counters (collections, collected,
        uncollectable), the numbers gc.get_stats() must show."""
        c = self.counters["gen"] if self.counters else []
        base = self.hello["base"]
        out = []
        for i in range(max(len(base), len(c))):
            b = base[i] if i < len(base) else {"collections": 0, "collected": 0, "uncollectable": 0}
            g = c[i] if i < len(c) else {"count": 0, "collected": 0, "uncollectable": 0}
            out.append({"collections": b["collections"] + g["count"],
                        "collected": b["collected"] + g["collected"],
                        "uncollectable": b["uncollectable"] + g["uncollectable"]})
        return out

    def seen(self):
        """Collections the agent itself counted (all generations)."""
        return sum(g["count"] for g in self.counters["gen"]) if self.counters else 0


class Receiver:
    """Listens on path (a fresh one in a private dir if None)."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Condition()
        self.procs = {}
        self.errors = []
        self.conns = []
        self.lsock = None
        self.thread = None

    def start(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        s.listen(64)
        self.lsock = s
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        proc = None
        buf = b""
        try:
            while True:
                try:
                    chunk = c.recv(1 << 16)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= HDR.size:
                    ln, typ, ver, _ = HDR.unpack_from(buf)
                    if ver != PROTO_VERSION or not HDR.size <= ln <= PROTO_MAX_FRAME:
                        raise ValueError("bad header len %d version %d" % (ln, ver))
                    if len(buf) < ln:
                        break
                    f = decode(typ, buf[HDR.size:ln])
                    buf = buf[ln:]
                    proc = self._frame(proc, typ, f)
        except ValueError as e:
            with self.lock:
                self.errors.append(str(e))
        finally:
            with self.lock:
                if proc is not None:
                    proc.open -= 1
                self.lock.notify_all()
            c.close()

    def _frame(self, proc, typ, f):
        with self.lock:
            if typ == FRAME_HELLO:
                key = (f["pid"], f["start_mono_ns"])
                p = self.procs.get(key)
                if p is None:
                    p = self.procs[key] = Proc(f)
                if proc is not None:
                    proc.open -= 1
                p.hellos.append(f)
                p.connections += 1
                p.open += 1
                proc = p
            elif proc is None:
                raise ValueError("frame type %d before HELLO" % typ)
            elif typ == FRAME_EVENTS:
                proc.counters = f["counters"]
                proc.events.extend(f["events"])
            elif typ == FRAME_SAMPLE:
                proc.samples.append(f)
            elif typ == FRAME_OBJECTS:
                proc.objects = f
            elif typ == FRAME_GARBAGE:
                proc.garbage = f
            elif typ == FRAME_BYE:
                proc.counters = f["counters"]
                proc.bye = f
            self.lock.notify_all()
        return proc

    def by_pid(self, pid):
        with self.lock:
            ps = [p for (k, _), p in self.procs.items() if k == pid]
        return ps[-1] if ps else None

    def wait(self, pred, timeout=20.0, what="frames"):
        """Wait until pred(self) is true (under the lock); bounded."""
        with self.lock:
            if not self.lock.wait_for(lambda: pred(self), timeout):
                raise AssertionError("receiver: timed out waiting for %s; have %r"
                                     % (what, {k: (p.seen(), p.bye is not None, p.open)
                                               for k, p in self.procs.items()}))

    def close(self):
        """Stop listening and drop every connection (a daemon killed)."""
        if self.lsock is not None:
            try:
                self.lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.lsock.close()
            self.lsock = None
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass
        if self.thread is not None:
            self.thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
