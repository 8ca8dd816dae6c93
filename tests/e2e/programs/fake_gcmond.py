"""fake_gcmond MODE --socket S ... --ready-fd N --client-fd N ...: a
stand-in for the launcher's private gcmond (GCMON_GCMOND), for what a
real one never sends. It answers ping, watch and wait on its socket and
its --client-fd sockets, refuses everything else, and on the watch
connection does what MODE says:
  hostile  streams a process_start, one good WATCH_EVENTS frame, then one
           whose count is above its records (the launcher must name it);
  refuse   refuses the watch (the launcher must say so, and stop the
           program it started meanwhile)."""
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
        elif cmd == "watch" and mode == "refuse":
            c.sendall(obj({"ok": False, "code": "bad_request",
                           "error": "no watching here"}))
        elif cmd == "watch":
            c.sendall(obj({"ok": True, "watching": True}))
            c.sendall(obj({"type": "process_start", "process": proc(4242)}))
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
    for i, a in enumerate(args):
        if a == "--client-fd":
            c = socket.socket(fileno=int(args[i + 1]))
            threading.Thread(target=serve, args=(c, mode), daemon=True).start()
    os.write(ready, b".")
    os.close(ready)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()


main()
