"""launcher_mp METHOD OUTDIR: starts 2 multiprocessing children with the
fork or spawn start method; every process makes garbage, then disables the
collector and writes its gc.get_stats() to OUTDIR/<pid>.json."""
import gc
import json
import multiprocessing
import os
import sys


def work(outdir, n):
    keep = []
    for r in range(n):
        batch = [{"r": r, "i": i} for i in range(2000)]
        for d in batch:
            d["self"] = d
        keep.append(batch[0])
    gc.disable()
    with open(os.path.join(outdir, "%d.json" % os.getpid()), "w") as f:
        json.dump({"pid": os.getpid(), "stats": gc.get_stats()}, f)


if __name__ == "__main__":
    method, outdir = sys.argv[1], sys.argv[2]
    ctx = multiprocessing.get_context(method)
    work_parent = [{"p": i} for i in range(10000)]
    procs = [ctx.Process(target=work, args=(outdir, 20 + 5 * k)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    work(outdir, 10)
    sys.exit(0 if all(p.exitcode == 0 for p in procs) else 1)
