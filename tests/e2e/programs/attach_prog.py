"""attach_prog: a program that attaches the agent from its own code.

    attach_prog.py OUT STEP...

Steps, in order: collect:N (N generation-0 collections and one full
one), start[:SOCKET[:SERVICE]] (gcmon.start(); its result or error is
recorded), stop (gcmon.stop(), its result recorded), stats:NAME
(gc.get_stats() recorded under NAME), state (which loader loaded the
agent, and whether gcmon is imported at all), fork:N (a child that
makes N collections, writes its pid and gc.get_stats() to OUT.child and
ends; the parent waits for it), stale (the agent's callback put back
into gc.callbacks by hand, as a program holding it might). Automatic collection is off,
so the counts are exactly the steps'. OUT gets one JSON object at the end.
"""
import gc
import json
import os
import sys

gc.disable()
out = {"pid": os.getpid(), "results": []}


def record(step):
    kind, _, arg = step.partition(":")
    if kind == "collect":
        for _ in range(int(arg)):
            gc.collect(0)
        gc.collect()
    elif kind == "stats":
        out[arg] = [[s["collections"], s["collected"], s["uncollectable"]]
                    for s in gc.get_stats()]
    elif kind == "state":
        # The environment's loading imports no gcmon._boot: the
        # extension says who loaded it.
        ext = sys.modules.get("gcmon._gcmon")
        info = ext.agent() if ext is not None else None
        out["imported"] = "gcmon" in sys.modules
        out["via"] = info["via"] if info is not None else None
        out["sitecustomize"] = getattr(sys.modules.get("sitecustomize"),
                                       "__file__", None)
    elif kind == "stale":
        from gcmon import _gcmon
        gc.callbacks.append(_gcmon.callback)
    elif kind == "fork":
        pid = os.fork()
        if pid == 0:
            for _ in range(int(arg)):
                gc.collect(0)
            with open(sys.argv[1] + ".child", "w") as f:
                json.dump({"pid": os.getpid(), "stats": [
                    [s["collections"], s["collected"], s["uncollectable"]]
                    for s in gc.get_stats()]}, f)
            os._exit(0)
        os.waitpid(pid, 0)
    elif kind in ("start", "stop"):
        import gcmon
        sock, _, svc = arg.partition(":")
        try:
            if kind == "stop":
                r = gcmon.stop()
            else:
                r = gcmon.start(**dict(([("socket", sock)] if sock else []) +
                                       ([("service", svc)] if svc else [])))
            out["results"].append([step, "ok", r])
        except Exception as e:
            out["results"].append([step, type(e).__name__, str(e)])


for step in sys.argv[2:]:
    record(step)
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
