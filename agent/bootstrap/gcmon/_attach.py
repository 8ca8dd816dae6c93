"""gcmon/_attach.py: what `pygcprofiler attach` and `detach` run inside a
running CPython (client/attach.c puts a copy in a fresh directory of the
target's own filesystem view and has the target run it at a safe point).

It runs in the target's main thread with the GIL held, between two
bytecodes: from a pending call (Py_AddPendingCall, queued by gdb on
3.10-3.13) or from sys.remote_exec (3.14+). The directory holds
`request` (lines: action, socket, service, package directory); the
loader first renames it to `taken`: when that fails the client gave up
waiting (it renamed it to `cancelled`) and nothing at all is done. Then
gcmon.start(socket=, service=) or gcmon.stop(), as the program's own
code would call them (a start after a stop is the agent's next area),
and `result` (key=value lines) says what happened. It must never raise
into the program (a pending call that fails becomes a SystemError
there), never print, and bind no name in __main__ (the caller's exec
gives it its own globals).
"""


def _lines(path):
    with open(path, "rb") as f:
        return [l.decode("utf-8", "surrogateescape")
                for l in f.read().split(b"\n")]


def _import_gcmon(pkgdir):
    """The gcmon package from pkgdir, without touching sys.path."""
    import os
    import sys
    import importlib.util
    pkg = os.path.join(pkgdir, "gcmon")
    spec = importlib.util.spec_from_file_location(
        "gcmon", os.path.join(pkg, "__init__.py"),
        submodule_search_locations=[pkg])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gcmon"] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        for name in ("gcmon", "gcmon._boot", "gcmon._gcmon"):
            sys.modules.pop(name, None)
        raise
    return mod


def _act(action, socket, service, pkgdir):
    """What was done, as a dict of the result's keys."""
    import sys
    mod = sys.modules.get("gcmon")
    boot = sys.modules.get("gcmon._boot")
    if boot is None and "gcmon._gcmon" in sys.modules:
        # Loaded from the environment, which imports no _boot: importing
        # it adopts that agent.
        from gcmon import _boot as boot
    agent = getattr(boot, "_agent", None) if boot is not None else None
    if action == "detach":
        if agent is None:
            return {"ok": "1", "state": "not-attached"}
        if agent.stopped:
            return {"ok": "1", "state": "already-detached",
                    "path": agent.path}
        mod.stop()
        return {"ok": "1", "state": "detached", "path": agent.path,
                "socket": agent.socket}
    if agent is not None and not agent.stopped:
        return {"ok": "1", "state": "already", "path": agent.path,
                "socket": agent.socket, "via": agent.via}
    if mod is None or boot is None:
        mod = _import_gcmon(pkgdir)
        from gcmon import _boot as boot
    # After a detach (gcmon.stop()) this is the agent's next area.
    path = mod.start(socket=socket or None, service=service or None)
    # The collections it did not see: before it loaded, or since the
    # last detach (what earlier areas reported is taken out).
    st = boot._agent.mod.stats()
    before = sum(b["collections"] for b in st["baseline"]) - \
        sum(b["collections"] for b in st["prior"])
    return {"ok": "1", "state": "attached", "path": path,
            "socket": boot._agent.socket, "before": str(before),
            "again": "1" if st["prior"] else "0"}


def _main(d):
    import os
    import sys
    import time
    t0 = time.perf_counter()
    taken = os.path.join(d, "taken")
    try:
        os.rename(os.path.join(d, "request"), taken)
    except OSError:
        return          # cancelled: the client gave up waiting
    try:
        action, socket, service, pkgdir = _lines(taken)[:4]
        res = _act(action, socket, service, pkgdir)
    except Exception as e:
        res = {"ok": "0", "state": "error",
               "error": "%s: %s" % (type(e).__name__, e)}
    res["pid"] = str(os.getpid())
    res["version"] = "%d.%d.%d" % sys.version_info[:3]
    res["held_ns"] = str(int((time.perf_counter() - t0) * 1e9))
    body = "".join("%s=%s\n" % (k, str(v).replace("\n", " "))
                   for k, v in sorted(res.items()))
    tmp = os.path.join(d, "result.tmp")
    with open(tmp, "wb") as f:
        f.write(body.encode("utf-8", "surrogateescape"))
    os.rename(tmp, os.path.join(d, "result"))


if __name__ == "_gcmon_attach":
    try:
        _main(__gcmon_attach_dir__)     # noqa: F821 (the caller's exec sets it)
    except KeyboardInterrupt:
        # A Ctrl-C that arrived while this ran belongs to the program.
        import _thread
        _thread.interrupt_main()
