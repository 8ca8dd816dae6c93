"""Gunicorn config for test_launcher.py: each worker (worker_exit, in the
worker) and the master (on_exit) disable the collector and write their own
gc.get_stats() to $LAUNCHER_STATS_DIR/<pid>.json, so the report's
per-process totals can be compared with them."""
import gc
import json
import os


def _dump(role):
    gc.disable()
    path = os.path.join(os.environ["LAUNCHER_STATS_DIR"], "%d.json" % os.getpid())
    with open(path, "w") as f:
        json.dump({"pid": os.getpid(), "role": role, "stats": gc.get_stats()}, f)


def worker_exit(server, worker):
    _dump("worker")


def on_exit(server):
    _dump("master")
