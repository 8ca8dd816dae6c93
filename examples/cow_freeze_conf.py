"""cow_freeze_conf: examples/cow_conf.py plus gc.freeze() in the master.

With `gunicorn --preload` the app (and its object graph) is loaded in the
master before when_ready runs, and the workers are forked after it:
gc.freeze() there moves every object the master holds to the permanent
generation, which no worker's collection visits, so the pages stay
shared. (Without --preload, freeze in pre_fork instead, and consider
gc.disable() at the top of the config with gc.enable() in post_fork.)
"""
import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cow_conf import post_worker_init  # noqa: E402,F401


def when_ready(server):
    gc.freeze()
