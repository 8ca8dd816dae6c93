"""launcher_loop OUT: allocates until SIGINT/SIGTERM/SIGHUP arrives, then
writes which signal it got to OUT and exits 0 (test_launcher.py checks the
launcher forwarded it and still printed the report)."""
import signal
import sys
import time

got = []


def on_sig(sig, frame):
    got.append(sig)


for s in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, on_sig)
junk = []
end = time.monotonic() + 60
try:
    # Inside the try: the test signals as soon as it reads this line, which
    # can be before print() has returned.
    print("ready", flush=True)
    while not got and time.monotonic() < end:
        junk.append([{"x": i} for i in range(100)])
        if len(junk) > 50:
            junk.clear()
        time.sleep(0.001)
except KeyboardInterrupt:
    got.append(signal.SIGINT)
with open(sys.argv[1], "w") as f:
    f.write(signal.Signals(got[0]).name if got else "none")
