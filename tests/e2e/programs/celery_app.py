"""celery_app: the Celery application tests/e2e/test_exec.py runs as
`celery -A celery_app worker --pool prefork --concurrency 2` under
`pygcprofiler exec`; never run on its own.

The broker is kombu's filesystem transport in $GCMONTEST_CELERY_DIR (no
server to start): the test process sends tasks by writing message files
there, the worker reads them. `cycles` makes cyclic garbage (so the pool
worker's automatic collections run) and leaves a file named after its
task id in the out directory; `stats` turns this worker process's
collector off and writes its gc.get_stats() once to <out>/<pid>.json (a
temporary name, then renamed), then sleeps a little so that the next
`stats` task reaches the sibling. After `stats` a pool worker collects
no more, so the figures it wrote are its final ones. Nothing here calls
gc.collect.
"""
import gc
import json
import os
import time

from celery import Celery

BASE = os.environ["GCMONTEST_CELERY_DIR"]
QUEUE = os.path.join(BASE, "queue")
OUTDIR = os.path.join(BASE, "out")
CYCLES = 3000          # per task: several generation 0 collections

app = Celery("celery_app")
app.conf.update(
    broker_url="filesystem://",
    broker_transport_options={"data_folder_in": QUEUE,
                              "data_folder_out": QUEUE,
                              "polling_interval": 0.05},
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)


class Node:
    def __init__(self):
        self.me = self


@app.task
def cycles(tag):
    for _ in range(CYCLES):
        Node()
    path = os.path.join(OUTDIR, "done-%s-%d" % (tag, os.getpid()))
    with open(path, "w"):
        pass


@app.task
def stats():
    pid = os.getpid()
    path = os.path.join(OUTDIR, "%d.json" % pid)
    if not os.path.exists(path):
        gc.disable()
        rec = {"pid": pid, "ppid": os.getppid(),
               "stats": [[s["collections"], s["collected"], s["uncollectable"]]
                         for s in gc.get_stats()]}
        with open(path + ".tmp", "w") as f:
            json.dump(rec, f)
        os.rename(path + ".tmp", path)
    time.sleep(0.2)
