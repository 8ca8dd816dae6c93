"""launcher_argv: records what the program sees (argv, cwd, stdin, the
GCMON_* environment, SIGINT disposition) as JSON in $LAUNCHER_OUT, and
prints a fixed line on stdout. Run directly and under pygcprofiler (as a
script and with -m) by test_launcher.py, which compares the two."""
import json
import os
import signal
import sys

data = {
    "argv": sys.argv,
    "cwd": os.getcwd(),
    "stdin": sys.stdin.read(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("GCMON_")},
    "sigint_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    "agent_loaded": "gcmon._gcmon" in sys.modules,
}
with open(os.environ["LAUNCHER_OUT"], "w") as f:
    json.dump(data, f)
sys.stdout.write("launcher_argv stdout line\n")
