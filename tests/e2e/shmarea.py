"""shmarea: writes and reads the shared area of common/shm.h in Python, so
that the daemon tests can play a monitored process (exact counters under
our control), a broken one or a hostile one, and read a real agent's area
the way gcmond does. A fake process is a real one (`sleep`), so that
gcmond's /proc checks and its pidfd see a process. Offsets are copied from
shm.h (its static assertions pin them); keep them in step with it.
"""
import fcntl
import mmap
import os
import signal
import struct
import subprocess
import time

import frames

MAGIC = b"GCMONSH1"
VERSION = 3
HEADER_SIZE = 1024
EXIT_CAP = 256 << 10
STACK_DEPTH, STACK_RING, NAMES_CAP = 32, 128, 512 << 10
STACK_HEAD = struct.Struct("<QHHI")         # struct shm_stack before frames
STACK_SIZE = STACK_HEAD.size + 8 * STACK_DEPTH
NAME_REC = struct.Struct("<IIHH")           # struct shm_name_rec
HAS_STACK = 0x0002                          # PROTO_EVENT_HAS_STACK
SHM_RING_DEFAULT = 4096
STATE_LIVE, STATE_EXITED = 1, 2
EVENT_HAS_COLLECTOR_NS = 0x0001             # PROTO_EVENT_HAS_COLLECTOR_NS
SLOT = struct.Struct("<QQQQIHH")            # struct proto_event, 40 bytes
GEN = struct.Struct("<QQQQQ")               # struct shm_gen
LAYOUT = struct.Struct("<8sIIQIIIIIIIIQ")   # magic .. start_ticks (64 bytes)
OFF_STATE, OFF_NGEN, OFF_DROPPED = 64, 68, 72
OFF_EXIT_MONO, OFF_EXIT_CPU, OFF_EXIT_MAXRSS, OFF_EXIT_LEN = 80, 88, 96, 104
OFF_GEN, OFF_HEAD, OFF_TAIL = 112, 448, 512
OFF_STACK_LAYOUT, OFF_NAMES_LEN, OFF_STACK_HEAD, OFF_STACK_TAIL = 528, 552, 576, 640
OFF_STACK_MIN_PAUSE = 560
# Version 3: requests (struct shm_request, struct shm_route).
REQ_RING, ROUTES, ROUTE_NAME_MAX = 4096, 257, 124
REQ = struct.Struct("<QQQIIHHHH")           # struct shm_request, 40 bytes
ROUTE_SIZE = 4 + ROUTE_NAME_MAX
OFF_REQ_LAYOUT, OFF_REQ_DROPPED, OFF_NROUTES = 704, 720, 728
OFF_REQ_HEAD, OFF_REQ_TAIL = 768, 832
REQ_ERROR, REQ_DISCONNECT, REQ_STREAMED, REQ_OPEN_AT_EXIT = 1, 2, 4, 8
# Header fields by name: (offset, struct format), for hostile variants.
FIELDS = {"magic": (0, "8s"), "version": (8, "I"), "header_size": (12, "I"),
          "total_size": (16, "Q"), "hello_off": (24, "I"), "hello_len": (28, "I"),
          "exit_off": (32, "I"), "exit_cap": (36, "I"), "ring_off": (40, "I"),
          "ring_cap": (44, "I"), "pid": (48, "I"), "uid": (52, "I"),
          "start_ticks": (56, "Q"), "head": (OFF_HEAD, "Q"), "tail": (OFF_TAIL, "Q"),
          "stack_off": (528, "I"), "stack_cap": (532, "I"), "names_off": (536, "I"),
          "names_cap": (540, "I"), "req_off": (704, "I"), "req_cap": (708, "I"),
          "route_off": (712, "I"), "route_cap": (716, "I"),
          "req_head": (OFF_REQ_HEAD, "Q")}
_live = []          # every FakeArea whose sleep may still run: kill_all()


def _align(n, a):
    return (n + a - 1) & ~(a - 1)


def area_size(hello_len, ring_cap):
    """(ring_off, stack_off, names_off, size) as shm.c lays them out."""
    ring_off = _align(HEADER_SIZE + hello_len, 4096) + EXIT_CAP
    stack_off = _align(ring_off + ring_cap * SLOT.size, 64)
    names_off = _align(route_off_of(stack_off) + ROUTES * ROUTE_SIZE, 4096)
    return ring_off, stack_off, names_off, names_off + NAMES_CAP


def req_off_of(stack_off):
    return _align(stack_off + STACK_RING * STACK_SIZE, 64)


def route_off_of(stack_off):
    return _align(req_off_of(stack_off) + REQ_RING * REQ.size, 64)


def start_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return int(s[s.rindex(")") + 2:].split()[19])


def agent_dir(sock):
    return sock + ".d"


class FakeArea:
    """One monitored process: a real `sleep`, and an area that says what we
    tell it. Keeps cumulative counters as the real agent does."""

    def __init__(self, sock, pid=None, ngen=3, ring=64, name=None, lock=False,
                 **hello_kw):
        self.dir = agent_dir(sock)
        self.proc = None
        if pid is None:
            self.proc = subprocess.Popen(["sleep", "3600"], start_new_session=True)
            pid = self.proc.pid
            _live.append(self)
        self.pid = pid
        hello_kw.setdefault("start_mono", time.monotonic_ns())
        # lock: this (test) process takes the area's lock, as the agent
        # does, and says so in the HELLO (frames.hello's place, locked).
        self.lock = lock
        if lock:
            hello_kw["locked"] = True
        self.hello = frames.hello(pid, **hello_kw)
        self.ring = ring
        self.gens = [[0, 0, 0, 0, 0] for _ in range(ngen)]
        self.dropped = 0
        self.head = 0
        self.ring_off, self.stack_off, self.names_off, self.size = \
            area_size(len(self.hello), ring)
        self.stack_head = 0
        self.names_len = 0
        self.req_off = req_off_of(self.stack_off)
        self.route_off = route_off_of(self.stack_off)
        self.req_head = 0
        self.nroutes = 1
        self.exit_off = self.ring_off - EXIT_CAP
        self.name = name or "%d-%x.gcmon" % (pid, time.monotonic_ns())
        self.path = os.path.join(self.dir, self.name)
        self.buf = bytearray(self.size)
        LAYOUT.pack_into(self.buf, 0, MAGIC, VERSION, HEADER_SIZE, self.size,
                         HEADER_SIZE, len(self.hello), self.exit_off, EXIT_CAP,
                         self.ring_off, ring, pid, os.geteuid(),
                         start_ticks(pid))
        struct.pack_into("<IIII", self.buf, OFF_STACK_LAYOUT, self.stack_off,
                         STACK_RING, self.names_off, NAMES_CAP)
        struct.pack_into("<IIII", self.buf, OFF_REQ_LAYOUT, self.req_off,
                         REQ_RING, self.route_off, ROUTES)
        struct.pack_into("<I", self.buf, OFF_STATE, STATE_LIVE)
        self.buf[HEADER_SIZE:HEADER_SIZE + len(self.hello)] = self.hello
        self.fd = None
        self.mm = None

    # -- publishing --------------------------------------------------------
    def set(self, field, value):
        """Before publish(): sets a header field (FIELDS) to any value,
        for a broken or hostile area."""
        off, fmt = FIELDS[field]
        struct.pack_into("<" + fmt, self.buf, off, value)
        return self

    def publish(self, chown=None):
        """Writes the file under a temporary name, then renames it. Sparse,
        as the agent's (ftruncate, then header and HELLO): the exit area
        and the ring cost no page until written. chown: (uid, gid) given
        to the file before it appears under its final name."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        tmp = os.path.join(self.dir, "." + self.name + ".tmp")
        self.fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self.fd, self.size)
        if self.lock:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        os.pwrite(self.fd, bytes(self.buf[:HEADER_SIZE + len(self.hello)]), 0)
        if chown is not None:
            os.fchown(self.fd, *chown)
        os.rename(tmp, self.path)
        return self

    def poke(self, off, data):
        """Writes bytes at off in the live file (as a process would)."""
        os.pwrite(self.fd, data, off)

    def mpoke(self, off, data):
        """Writes bytes at off through a shared mapping of the file (no
        write(), so no inotify event: what a process's stores look like)."""
        if self.mm is None:
            self.mm = mmap.mmap(self.fd, self.size)
        self.mm[off:off + len(data)] = data

    def read_u64(self, off):
        """An 8-byte field read through the mapping in one load (a
        pread, like struct.pack_into, may copy it byte by byte and see a
        torn ring index)."""
        if self.mm is None:
            self.mm = mmap.mmap(self.fd, self.size)
        return struct.unpack("<Q", self.mm[off:off + 8])[0]

    def set_head(self, head):
        """Publishes the ring's head in one 8-byte store."""
        self.head = head
        self.mpoke(OFF_HEAD, struct.pack("<Q", head))

    def _write_counters(self):
        out = b"".join(GEN.pack(*g) for g in self.gens)
        self.mpoke(OFF_GEN, out)
        self.mpoke(OFF_NGEN, struct.pack("<I", len(self.gens)))
        self.mpoke(OFF_DROPPED, struct.pack("<Q", self.dropped))

    # -- what a process does -------------------------------------------------
    def add_name(self, code_id, file, func, first_line=1, raw=None):
        """Publishes one name record (raw: these bytes instead)."""
        f, q = file.encode(), func.encode()
        rec = raw if raw is not None else NAME_REC.pack(
            code_id, first_line, len(f), len(q)) + f + q
        rec += b"\0" * (-len(rec) % 4)
        self.poke(self.names_off + self.names_len, rec)
        self.names_len += len(rec)
        self.mpoke(OFF_NAMES_LEN, struct.pack("<I", self.names_len))

    def put_stack(self, start_ns, frames_, depth=None, flags=0):
        """Publishes a stack (frames_: [(code_id, line)], leaf first)."""
        body = STACK_HEAD.pack(start_ns, len(frames_) if depth is None else depth,
                               flags, 0)
        body += b"".join(struct.pack("<II", c, l) for c, l in frames_)
        body += b"\0" * (STACK_SIZE - len(body))
        self.poke(self.stack_off + (self.stack_head % STACK_RING) * STACK_SIZE, body)
        self.stack_head += 1
        self.mpoke(OFF_STACK_HEAD, struct.pack("<Q", self.stack_head))

    def add_route(self, name, raw=None):
        """Publishes the next route slot; returns its id."""
        b = name.encode() if raw is None else raw
        body = struct.pack("<I", len(b)) + b[:ROUTE_NAME_MAX]
        rid = self.nroutes
        self.poke(self.route_off + rid * ROUTE_SIZE, body)
        self.nroutes += 1
        self.mpoke(OFF_NROUTES, struct.pack("<I", self.nroutes))
        return rid

    def request(self, start_ns, end_ns, route_id=0, status=200, flags=0,
                gc_ns=0, ngc=0, tid=1):
        """Publishes one request record."""
        self.poke(self.req_off + (self.req_head % REQ_RING) * REQ.size,
                  REQ.pack(start_ns, end_ns, gc_ns, tid, ngc, route_id,
                           status, flags, 0))
        self.req_head += 1
        self.mpoke(OFF_REQ_HEAD, struct.pack("<Q", self.req_head))

    def event_at(self, gen, start_ns, pause_ns):
        """One collection at a given start time (for the request join)."""
        g = self.gens[gen]
        g[0] += 1
        g[1] += pause_ns
        g[2] = max(g[2], pause_ns)
        self._write_counters()
        slot = self.ring_off + (self.head % self.ring) * SLOT.size
        self.poke(slot, SLOT.pack(start_ns, pause_ns, 0, 0, 0, gen, 0))
        self.set_head(self.head + 1)

    def collect(self, gen, pause_ns, collected=0, uncollectable=0, send=True,
                stack=None, depth=None, collector_ns=None):
        """One collection; send=False: counted, its record dropped.
        stack: [(code_id, line)], leaf first, published before the event;
        collector_ns: the interpreter's own duration (3.15+), flagged."""
        g = self.gens[gen]
        g[0] += 1
        g[1] += pause_ns
        g[2] = max(g[2], pause_ns)
        g[3] += collected
        g[4] += uncollectable
        self._write_counters()
        tail = self.read_u64(OFF_TAIL)
        if not send or self.head - tail >= self.ring:
            self.dropped += 1
            self._write_counters()
            return False
        slot = self.ring_off + (self.head % self.ring) * SLOT.size
        start = time.monotonic_ns()
        if stack is not None:
            self.put_stack(start, stack, depth)
        flags = (HAS_STACK if stack is not None else 0) | \
            (0 if collector_ns is None else EVENT_HAS_COLLECTOR_NS)
        self.poke(slot, SLOT.pack(start, pause_ns, collector_ns or 0, collected,
                                  uncollectable, gen, flags))
        self.set_head(self.head + 1)
        return True

    def burst(self, gen, n, pause_ns=1000, wait_s=30):
        """n collections of generation gen, every record published (it
        waits for gcmond to make room in the ring): bulk writes, for the
        tests and benchmarks that need many events fast."""
        rec = SLOT.pack(time.monotonic_ns(), pause_ns, 0, 0, 0, gen, 0)
        g = self.gens[gen]
        deadline = time.monotonic() + wait_s
        while n > 0:
            free = self.ring - (self.head - self.read_u64(OFF_TAIL))
            if free <= 0:
                if time.monotonic() > deadline:
                    raise AssertionError("ring of pid %d not drained" % self.pid)
                time.sleep(0.001)
                continue
            k = min(free, n)
            pos = self.head % self.ring
            first = min(k, self.ring - pos)
            self.poke(self.ring_off + pos * SLOT.size, rec * first)
            if k > first:
                self.poke(self.ring_off, rec * (k - first))
            g[0] += k
            g[1] += k * pause_ns
            g[2] = max(g[2], pause_ns)
            self._write_counters()
            self.set_head(self.head + k)
            n -= k

    def exit_data(self, frames_bytes=b""):
        """What the agent's exit handler writes."""
        if frames_bytes:
            self.poke(self.exit_off, frames_bytes)
            self.poke(OFF_EXIT_LEN, struct.pack("<I", len(frames_bytes)))
        self.poke(OFF_EXIT_MONO, struct.pack("<Q", time.monotonic_ns()))
        self.poke(OFF_STATE, struct.pack("<I", STATE_EXITED))

    def end(self, clean=True, frames_bytes=b""):
        """The process ends (after its exit handler when clean)."""
        if clean:
            self.exit_data(frames_bytes)
        self.kill()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self in _live:
            _live.remove(self)

    def totals(self, base=(5, 0, 0)):
        """Collections per generation gcmond must report (baseline added)."""
        return [g[0] + (base[i] if i < len(base) else 0)
                for i, g in enumerate(self.gens)]


def kill_all():
    """Ends every fake process still running (a test's teardown)."""
    for a in list(_live):
        a.kill()


def read_area(path):
    """The counters of an area file, as gcmond reads them: a dict."""
    with open(path, "rb") as f:
        b = f.read(HEADER_SIZE)
    (magic, version, _hs, size, _ho, _hl, _eo, _ec, _ro, ring_cap, pid, uid,
     ticks) = LAYOUT.unpack_from(b, 0)
    state, ngen = struct.unpack_from("<II", b, OFF_STATE)
    dropped = struct.unpack_from("<Q", b, OFF_DROPPED)[0]
    gens = [GEN.unpack_from(b, OFF_GEN + i * GEN.size) for i in range(min(ngen, 8))]
    head, = struct.unpack_from("<Q", b, OFF_HEAD)
    tail, = struct.unpack_from("<Q", b, OFF_TAIL)
    return {"magic": magic, "version": version, "size": size, "pid": pid,
            "uid": uid, "start_ticks": ticks, "state": state, "ring": ring_cap,
            "dropped": dropped, "gens": gens, "head": head, "tail": tail}


def read_hello(path):
    """The HELLO an area file carries (protocol.h), the part before the
    PROTO_HELLO_PLACE fields: a dict of its strings (bytes) and numbers."""
    with open(path, "rb") as f:
        b = f.read()
    _m, _v, _hs, _size, off, _hl = LAYOUT.unpack_from(b, 0)[:6]
    hdr_len, ftype = struct.unpack_from("<IH", b, off)
    assert ftype == 1, "not a HELLO: type %d" % ftype
    pos = off + 8
    (pid, ppid, _start, _real, _mono, hexversion, origin, gc_model, flags,
     _rsv, ngen) = struct.unpack_from("<IIQQQIBBHIB", b, pos)
    pos += struct.calcsize("<IIQQQIBBHIB") + ngen * struct.calcsize("<QQQI")

    def text():
        nonlocal pos
        n, = struct.unpack_from("<I", b, pos)
        pos += 4 + n
        return b[pos - n:pos]

    run_id, py_version, executable = text(), text(), text()
    argc, = struct.unpack_from("<I", b, pos)
    pos += 4
    argv = [text() for _ in range(argc)]
    return {"pid": pid, "ppid": ppid, "hexversion": hexversion,
            "origin": origin, "gc_model": gc_model, "flags": flags,
            "ngen": ngen, "run_id": run_id, "py_version": py_version,
            "executable": executable, "argv": argv, "len": hdr_len}
