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


def post_worker_init(worker):
    # The worker's signal handlers are in place from here on: a test that
    # stops gunicorn before this point would see the worker die by the
    # signal's default action, without worker_exit.
    ready = os.environ.get("LAUNCHER_READY_DIR")
    if ready:
        open(os.path.join(ready, "%d" % os.getpid()), "w").close()


def worker_exit(server, worker):
    _dump("worker")


def on_exit(server):
    _dump("master")
