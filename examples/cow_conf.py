"""cow_conf: gunicorn config for examples/cow-demo.sh, without gc.freeze().

Each worker runs one full collection once it is ready: the one a busy
worker runs sooner or later (a 3.11 worker runs its first automatic one
once it has made a quarter as many surviving objects as the master left
it), made certain here so the demo is short. It then leaves a file in
$COW_DEMO_DIR so that the demo knows when every worker has collected.
"""
import gc
import os


def post_worker_init(worker):
    gc.collect()
    d = os.environ.get("COW_DEMO_DIR")
    if d:
        with open(os.path.join(d, "%d.collected" % os.getpid()), "w"):
            pass
