"""launcher_exit: makes some garbage, then `exit N` or `signal N` (kills
itself), so test_launcher.py can check the launcher's exit status."""
import os
import sys

junk = []
for i in range(20000):
    a = {"i": i}
    a["self"] = a
    junk.append(a)
    if len(junk) > 100:
        junk.clear()

how, n = sys.argv[1], int(sys.argv[2])
sys.stdout.flush()
if how == "signal":
    os.kill(os.getpid(), n)
sys.exit(n)
