"""The daemon's floors (doc/HACKING.md, "The daemon's floors"): each
file of daemon/ includes headers of its own floor or of the floors it
stands on, never one above or beside it; and agent/, daemon/ and client/
each stand on common/ alone. Read from the source tree (GCMON_SRCDIR),
so an include that points the wrong way fails check-unit."""
import os
import re

SRCDIR = os.environ.get("GCMON_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))

# floor -> the floors its files may include (besides common/ and itself).
# model: the aggregates, pure; ingest writes into it and out reads it;
# daemon/ (the program: server, log, main) wires them. The log is the one
# program header the lower floors may use: every floor may report.
ALLOWED = {
    "model": set(),
    "ingest": {"model", "log"},
    "out": {"model", "log"},
    "daemon": {"model", "ingest", "out", "daemon", "log"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(part):
    top = os.path.join(SRCDIR, part)
    for d, _, files in os.walk(top):
        for f in files:
            if f.endswith((".c", ".h")):
                yield os.path.join(d, f)


def headers_of(part):
    """basename -> the folder (relative to SRCDIR) that holds it."""
    return {os.path.basename(p): os.path.relpath(os.path.dirname(p), SRCDIR)
            for p in sources(part) if p.endswith(".h")}


def floor_of(folder):
    if folder == "daemon":
        return "daemon"
    return folder.split(os.sep)[1]


def includes(path):
    with open(path) as f:
        return INCLUDE.findall(f.read())


def test_daemon_includes_point_down():
    where = headers_of("daemon")
    common = headers_of("common")
    bad = []
    for path in sources("daemon"):
        rel = os.path.relpath(path, SRCDIR)
        mine = floor_of(os.path.dirname(rel))
        for inc in includes(path):
            if inc == "config.h" or inc in common:
                continue
            assert inc in where, "%s includes %s, which is not in daemon/" % (rel, inc)
            theirs = floor_of(where[inc])
            if inc == "log.h":
                theirs = "log"
            if theirs != mine and theirs not in ALLOWED[mine]:
                bad.append("%s (%s) includes %s (%s)" % (rel, mine, inc, theirs))
    assert not bad, "\n".join(bad)


def test_the_model_formats_nothing():
    """JSON is out/'s: no model header or file names jansson."""
    bad = [os.path.relpath(p, SRCDIR) for p in sources(os.path.join("daemon", "model"))
           if re.search(r"\bjson_t\b|jansson", open(p).read())]
    assert not bad, bad


def test_every_daemon_file_is_in_a_floor():
    for path in sources("daemon"):
        rel = os.path.relpath(path, SRCDIR)
        assert floor_of(os.path.dirname(rel)) in ALLOWED, rel


def test_parts_stand_on_common_alone():
    common = headers_of("common")
    bad = []
    for part in ("agent", "client", "common"):
        own = headers_of(part)
        for path in sources(part):
            for inc in includes(path):
                if inc not in ("config.h",) and inc not in own and inc not in common:
                    bad.append("%s includes %s" % (os.path.relpath(path, SRCDIR), inc))
    assert not bad, "\n".join(bad)
