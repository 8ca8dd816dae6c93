"""fake_gcmond MODE --socket S ... --ready-fd N ...: a stand-in for the
launcher's private gcmond (GCMON_GCMOND), for what a real one never
sends. It answers ping, watch and wait, refuses everything else, and on
the watch connection streams what MODE says:
  hostile  a process_start, one good WATCH_EVENTS frame, then one whose
           count is above its records (the launcher must name it);
  old      refuses "events" as a gcmond before 0.3.0 does, then streams
           JSON events (the launcher must ask again without it)."""
import json
import os
import socket
import struct
import sys
import threading

HDR = struct.Struct("<IHBB")
REC = struct.Struct("<IHBBQQQQII")
CONTROL, WATCH_EVENTS = 7, 8


def frame(t, payload):
    return HDR.pack(HDR.size + len(payload), t, 1, 0) + payload


def obj(o):
    return frame(CONTROL, json.dumps(o).encode())


def read_frame(c):
    buf = b""
    while len(buf) < HDR.size:
        b = c.recv(HDR.size - len(buf))
        if not b:
            return None
        buf += b
    n = HDR.unpack(buf)[0] - HDR.size
    body = b""
    while len(body) < n:
        b = c.recv(n - len(body))
        if not b:
            return None
        body += b
    return json.loads(body)


def proc(pid):
    return {"pid": pid, "run": "r", "role": "master", "origin": "root"}


def serve(c, mode):
    while True:
        req = read_frame(c)
        if req is None:
            return
        cmd = req.get("cmd")
        if cmd == "ping":
            c.sendall(obj({"ok": True, "version": "fake", "pid": os.getpid(),
                           "uptime_s": 0, "processes": 0, "runs": 0}))
        elif cmd == "watch" and mode == "old" and "events" in req:
            c.sendall(obj({"ok": False, "code": "bad_request",
                           "error": "unknown argument \"events\""}))
        elif cmd == "watch":
            c.sendall(obj({"ok": True, "watching": True}))
            ev = dict(type="event", pid=4242, run="r", gen=0, label="generation 0",
                      time=1.0, duration_ms=0.213, collector_ms=None, collected=7,
                      uncollectable=0)
            c.sendall(obj({"type": "process_start", "process": proc(4242)}))
            if mode == "old":
                c.sendall(obj(ev))
                c.sendall(obj({"type": "process_end", "process": proc(4242)}))
                continue
            rec = REC.pack(4242, 0, 0, 0, 10**18, 213000, 0, 7, 0, 0)
            c.sendall(frame(WATCH_EVENTS, struct.pack("<II", 1, REC.size) + rec))
            c.sendall(frame(WATCH_EVENTS, struct.pack("<II", 5, REC.size) + rec * 2))
        elif cmd == "wait":
            c.sendall(obj({"ok": True, "live": 0, "processes": 1, "timed_out": False}))
        elif cmd == "stop":
            c.sendall(obj({"ok": True}))
            os._exit(0)
        else:
            c.sendall(obj({"ok": False, "code": "not_found", "error": "fake gcmond"}))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    sock = args[args.index("--socket") + 1]
    ready = int(args[args.index("--ready-fd") + 1])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.listen(8)
    os.write(ready, b".")
    os.close(ready)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()


main()
