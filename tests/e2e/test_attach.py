"""test_attach: the agent attached from code (gcmon.start()/stop()) and
from the installed gcmon-autoload.pth hook, with a real gcmond and real
interpreters.

gcmon.start() is tested with the build tree's package on PYTHONPATH (a
directory holding only a link to <builddir>/agent/gcmon: the bootstrap
directory itself takes itself off sys.path). The .pth hook is tested from
a real `make install DESTDIR=...` of this build: its $(pythondir) becomes
the user site directory of the interpreter (PYTHONUSERBASE), which site
processes at start-up exactly like dist-packages, before sitecustomize.
Totals are compared with the program's own gc.get_stats().
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest  # noqa: E402

PROG = os.path.join(gcmontest.PROGRAMS, "attach_prog.py")
PKG = os.path.join(gcmontest.AGENT_DIR, "gcmon")

pytestmark = pytest.mark.skipif(
    not gcmontest.HAVE_AGENT, reason=gcmontest.NO_AGENT)


# tmp and gcmond: conftest.py's.


def plain_env(**extra):
    env = dict(os.environ)
    for k in [k for k in env if k.startswith("GCMON_") or
              k in ("PYTHONPATH", "PYTHONUSERBASE", "PYTHONNOUSERSITE")]:
        del env[k]
    env.update(extra)
    return env


def pkg_path(tmp):
    """A PYTHONPATH entry with the build tree's gcmon package and nothing
    else, as $(pythondir) holds it once installed."""
    d = os.path.join(tmp, "pkg")
    os.mkdir(d)
    os.symlink(PKG, os.path.join(d, "gcmon"))
    return d


def run(tmp, env, *steps):
    out = os.path.join(tmp, "out.json")
    r = subprocess.run([gcmontest.PYTHON, PROG, out] + list(steps), env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        rec = json.load(f)
    rec["stderr"] = r.stderr
    return rec


def records(d, pid):
    """Every process record gcmond has for pid once it has ended (a second
    agent in one process would be a second record)."""
    gcmontest.wait_ended(d, [pid])
    return [p for p in d.request({"cmd": "processes"})["processes"]
            if p["pid"] == pid]


def check_exact(proc, want, before):
    """gcmond's totals equal want (gc.get_stats()), and the collections
    of before were counted as before the agent loaded (unseen)."""
    got = gcmontest.totals(proc)
    got += [[0, 0, 0]] * (len(want) - len(got))
    assert got == want
    unseen = [g["unseen"] for g in proc["generations"]]
    unseen += [0] * (len(before) - len(unseen))
    assert unseen == [b[0] for b in before]


def test_start_counts_earlier_collections_as_before_the_agent(tmp, gcmond):
    env = plain_env(PYTHONPATH=pkg_path(tmp))
    rec = run(tmp, env, "collect:5", "stats:before",
              "start:%s:billing-api" % gcmond.sock, "collect:7", "stats:end",
              "state")
    assert rec["results"][0][1] == "ok", rec["results"]
    assert rec["results"][0][2].startswith(gcmond.sock + ".d/")
    assert rec["via"] == "start" and rec["stderr"] == ""
    (proc,) = records(gcmond, rec["pid"])
    check_exact(proc, rec["end"], rec["before"])
    assert sum(g["seen"] for g in proc["generations"]) == 8
    assert proc["service"] == "billing-api" and proc["ended_by"] == "exit"
    # gcmonctl shows it too.
    ctl = gcmond.ctl("processes")
    assert [p["service"] for p in ctl["processes"]
            if p["pid"] == rec["pid"]] == ["billing-api"]


def test_stop_leaves_the_counts_exact_up_to_stop(tmp, gcmond):
    env = plain_env(PYTHONPATH=pkg_path(tmp))
    rec = run(tmp, env, "collect:2", "stats:before", "start:" + gcmond.sock,
              "collect:3", "stats:at_stop", "stop", "stop", "collect:4",
              "stats:end")
    assert [r[1:] for r in rec["results"][1:]] == [["ok", True], ["ok", False]]
    (proc,) = records(gcmond, rec["pid"])
    check_exact(proc, rec["at_stop"], rec["before"])
    assert rec["end"] != rec["at_stop"]
    assert proc["ended_by"] == "detach" and proc["service"] is None


def test_start_twice_is_one_agent_and_a_conflict_is_an_error(tmp, gcmond):
    env = plain_env(PYTHONPATH=pkg_path(tmp), GCMON_SERVICE="from-env")
    other = os.path.join(tmp, "other.sock")
    rec = run(tmp, env, "start:" + gcmond.sock, "collect:1", "start",
              "start:" + gcmond.sock + ":from-env", "start::other-name",
              "start:" + other, "stats:before_stop", "stop", "start",
              "stats:end")
    res = rec["results"]
    path = res[0][2]
    assert [r[1:] for r in res[:3]] == [["ok", path]] * 3
    assert res[3][1] == "GcmonError" and "'from-env', not 'other-name'" in res[3][2]
    assert res[4][1] == "GcmonError" and "already reports to %s" % gcmond.sock in res[4][2]
    assert res[5][1:] == ["ok", True]
    # After stop(), start() is the agent's next area: a second record.
    assert res[6][1] == "ok" and res[6][2] != path, res[6]
    first, second = sorted(records(gcmond, rec["pid"]), key=lambda p: p["end"])
    assert first["service"] == second["service"] == "from-env"
    assert first["ended_by"] == "detach" and second["ended_by"] == "exit"
    assert gcmontest.totals(first) == rec["before_stop"][:len(first["generations"])]
    assert gcmontest.totals(second) == rec["end"][:len(second["generations"])]


def test_after_stop_nothing_writes_the_area_and_a_child_is_not_monitored(tmp, gcmond):
    """stop() unmaps the area: the callback put back by hand records
    nothing (and touches no unmapped page), a child forked while stopped
    has no area of its own."""
    env = plain_env(PYTHONPATH=pkg_path(tmp))
    rec = run(tmp, env, "start:" + gcmond.sock, "collect:3", "stats:at_stop",
              "stop", "stale", "collect:4", "fork:2", "collect:1", "stats:end")
    assert [r[1:] for r in rec["results"]] == [["ok", rec["results"][0][2]], ["ok", True]]
    with open(os.path.join(tmp, "out.json.child")) as f:
        child = json.load(f)
    (proc,) = records(gcmond, rec["pid"])
    assert proc["ended_by"] == "detach"
    assert gcmontest.totals(proc) == rec["at_stop"][:len(proc["generations"])]
    assert child["pid"] not in gcmontest.processes(gcmond)
    assert os.listdir(gcmond.sock + ".d") == []


def test_stop_then_start_again_exact_and_each_collection_counted_once(tmp, gcmond):
    """The second area's baseline is the process's gc.get_stats(): the
    collections while stopped count as before the agent loaded, what the
    first area counted is not counted twice in the run, and a child
    forked after the start again is exact too."""
    env = plain_env(PYTHONPATH=pkg_path(tmp))
    rec = run(tmp, env, "collect:2", "stats:before", "start:" + gcmond.sock,
              "collect:3", "stats:at_stop", "stop", "collect:4",
              "stats:restart", "start:" + gcmond.sock, "collect:5",
              "fork:6", "collect:1", "stats:end")
    assert [r[1] for r in rec["results"]] == ["ok"] * 3, rec["results"]
    with open(os.path.join(tmp, "out.json.child")) as f:
        child = json.load(f)
    first, second = sorted(records(gcmond, rec["pid"]), key=lambda p: p["end"])
    check_exact(first, rec["at_stop"], rec["before"])
    assert first["ended_by"] == "detach"
    check_exact(second, rec["end"], rec["restart"])
    assert first["origin"] == second["origin"] == "root", (first, second)
    (kid,) = records(gcmond, child["pid"])
    assert kid["origin"] == "fork"
    got = gcmontest.totals(kid)
    assert got + [[0, 0, 0]] * (len(child["stats"]) - len(got)) == child["stats"]
    # The run: the parent's every collection once, before the first start
    # and while stopped as unseen; the child's own (6 gen-0) on top.
    s = gcmond.request({"cmd": "summary"})["summary"]
    assert s["collections"] == sum(g[0] for g in rec["end"]) + 6, s
    gens = s["generations"]
    unseen = sum(g["unseen"] for g in gens)
    stopped = sum(g[0] for g in rec["restart"]) - sum(g[0] for g in rec["at_stop"])
    assert unseen == sum(g[0] for g in rec["before"]) + stopped, (gens, rec)


@pytest.mark.parametrize("args, kind, words", [
    ("socket='/nonexistent-gcmon/g.sock'", "GcmonError",
     "no directory /nonexistent-gcmon for the gcmond socket"),
    ("service=''", "ValueError", "must be 1 to 256 bytes"),
    ("service='x' * 257", "ValueError", "must be 1 to 256 bytes"),
    ("service='a\\0b'", "ValueError", "without NUL"),
    ("service=7", "TypeError", "service must be a str, not int"),
    ("socket=''", "ValueError", "is not a path"),
])
def test_start_errors_are_exceptions_that_say_what_is_wrong(tmp, args, kind, words):
    code = ("import gcmon, gc, sys\n"
            "try:\n    gcmon.start(%s)\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n"
            "print(gcmon.stop(), gc.callbacks)\n" % args)
    r = subprocess.run([gcmontest.PYTHON, "-c", code], capture_output=True,
                       text=True, timeout=60,
                       env=plain_env(PYTHONPATH=pkg_path(tmp)))
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert first.startswith(kind + " ") and words in first
    assert second == "False []"          # nothing half started


def test_start_after_a_failed_start_can_succeed(tmp):
    """A start() that failed in the extension (the agent directory is a
    file) leaves nothing half made: the next one, once fixed, works."""
    sock = os.path.join(tmp, "gcmon.sock")
    code = ("import gc, gcmon, os, sys\n"
            "sock = sys.argv[1]\n"
            "open(sock + '.d', 'w').close()\n"
            "try:\n    gcmon.start(socket=sock)\n"
            "except gcmon.GcmonError as e:\n    print('first:', e)\n"
            "print(gc.callbacks)\n"
            "os.unlink(sock + '.d')\n"
            "print('second:', gcmon.start(socket=sock, service='again'))\n"
            "print(len(gc.callbacks))\n")
    r = subprocess.run([gcmontest.PYTHON, "-c", code, sock], capture_output=True,
                       text=True, timeout=60, env=plain_env(PYTHONPATH=pkg_path(tmp)))
    assert r.returncode == 0, r.stderr
    first, cbs, second, ncb = r.stdout.splitlines()
    assert first.startswith("first: gcmon.start: cannot create this process's area in "
                            + sock + ".d") and "Not a directory" in first
    assert cbs == "[]"
    assert second.startswith("second: " + sock + ".d/") and ncb == "1"


def old_pythons():
    """pyenv's interpreters older than 3.10 (the agent refuses them)."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    vdir = os.path.join(root, "versions")
    found = []
    for v in sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []:
        parts = v.split(".")
        py = os.path.join(vdir, v, "bin", "python")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit() and \
                (int(parts[0]), int(parts[1])) < (3, 10) and os.access(py, os.X_OK):
            found.append(pytest.param(py, id=v))
    return found or [pytest.param(None, marks=pytest.mark.skip(
        reason="no CPython older than 3.10 installed"))]


@pytest.mark.parametrize("py", old_pythons())
def test_an_unsupported_python_is_told_so_and_runs_unmonitored(tmp, py):
    version = "%s.%s" % tuple(os.path.basename(os.path.dirname(os.path.dirname(py)))
                              .split(".")[:2])
    code = ("import sys, gcmon\n"
            "try:\n    gcmon.start(socket=sys.argv[1])\n"
            "except Exception as e:\n"
            "    sys.stdout.write('%s %s\\n' % (type(e).__name__, e))\n")
    sock = os.path.join(tmp, "gcmon.sock")
    r = subprocess.run([py, "-c", code, sock], capture_output=True, text=True,
                       timeout=60, env=plain_env(PYTHONPATH=pkg_path(tmp)))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("GcmonError gcmon.start: Python %s is not supported "
                        "(3.10 or later)\n" % version)
    # From the environment: one line, and the program runs.
    env = gcmontest.agent_env(sock, base=plain_env())
    r = subprocess.run([py, "-c", "print(6 * 7)"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0 and r.stdout == "42\n"
    assert r.stderr == ("gcmon: Python %s is not supported (3.10 or later); "
                        "not monitored\n" % version)
    assert not os.path.exists(sock + ".d")


def test_bootstrap_then_start_is_the_same_agent_with_its_service(tmp, gcmond):
    env = gcmontest.agent_env(gcmond.sock, base=plain_env())
    env["GCMON_SERVICE"] = "svc-env"
    rec = run(tmp, env, "collect:3", "start", "start:" + gcmond.sock, "state",
              "stats:end")
    assert rec["via"] == "sitecustomize"
    assert rec["results"][0][2] == rec["results"][1][2]
    (proc,) = records(gcmond, rec["pid"])
    assert proc["service"] == "svc-env"
    assert gcmontest.totals(proc) == rec["end"][:len(proc["generations"])]


# ---- the installed tree: gcmon-autoload.pth and the bootstrap directory --

@pytest.fixture(scope="module")
def installed():
    """(destdir, pythondir, pkglibdir) of `make install DESTDIR=...`."""
    pydir = os.environ.get("GCMON_PYTHONDIR")
    libdir = os.environ.get("GCMON_PKGLIBDIR")
    if not pydir or not libdir:
        pytest.skip("GCMON_PYTHONDIR/GCMON_PKGLIBDIR not set (run through make check)")
    dest = tempfile.mkdtemp(prefix="gcmon-install-")
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    r = subprocess.run(["make", "-C", gcmontest.BUILDDIR, "install",
                        "DESTDIR=" + dest], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    yield dest, dest + pydir, dest + libdir
    shutil.rmtree(dest, ignore_errors=True)


def user_site_env(tmp, installed, **extra):
    """An environment whose user site directory is the installed
    $(pythondir): site reads its .pth files at start-up."""
    _, pydir, _ = installed
    base = os.path.join(tmp, "userbase")
    env = plain_env(PYTHONUSERBASE=base, **extra)
    r = subprocess.run([gcmontest.PYTHON, "-c",
                        "import site; print(site.ENABLE_USER_SITE); "
                        "print(site.getusersitepackages())"],
                       env=env, capture_output=True, text=True, timeout=60)
    enabled, site_dir = r.stdout.split("\n")[:2]
    if enabled != "True":
        pytest.skip("this interpreter has no user site directory")
    os.makedirs(os.path.dirname(site_dir), exist_ok=True)
    os.symlink(pydir, site_dir)
    return env


def test_install_puts_package_pth_and_bootstrap_link_in_place(installed):
    _, pydir, libdir = installed
    assert sorted(f for f in os.listdir(os.path.join(pydir, "gcmon"))
                  if not f.startswith("__pycache__")) == \
        ["__init__.py", "_attach.py", "_boot.py", "_gcmon.abi3.so", "_hooks.py",
         "_requests.py", "_version.py", "asgi.py", "wsgi.py"]
    with open(os.path.join(pydir, "gcmon-autoload.pth")) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1 and lines[0].startswith("import ")
    link = os.readlink(os.path.join(libdir, "gcmon"))
    assert not os.path.isabs(link)
    assert os.path.samefile(os.path.join(libdir, "gcmon"),
                            os.path.join(pydir, "gcmon"))


def test_pth_without_gcmon_socket_loads_nothing(tmp, installed):
    rec = run(tmp, user_site_env(tmp, installed), "collect:1", "state")
    assert rec["imported"] is False and rec["via"] is None
    assert rec["stderr"] == ""


def test_pth_alone_monitors_with_exact_totals(tmp, gcmond, installed):
    env = user_site_env(tmp, installed, GCMON_SOCKET=gcmond.sock,
                        GCMON_SERVICE="pth-svc")
    rec = run(tmp, env, "collect:4", "state", "start", "stats:end")
    assert rec["via"] == "pth" and rec["stderr"] == ""
    assert rec["results"][0][1] == "ok"     # start() finds it loaded
    (proc,) = records(gcmond, rec["pid"])
    assert proc["service"] == "pth-svc"
    assert gcmontest.totals(proc) == rec["end"][:len(proc["generations"])]


def test_installed_bootstrap_dir_alone_monitors(tmp, gcmond, installed):
    _, _, libdir = installed
    env = gcmontest.agent_env(gcmond.sock, base=plain_env())
    env["PYTHONPATH"] = libdir
    rec = run(tmp, env, "collect:4", "state", "stats:end")
    assert rec["via"] == "sitecustomize" and rec["stderr"] == ""
    (proc,) = records(gcmond, rec["pid"])
    assert gcmontest.totals(proc) == rec["end"][:len(proc["generations"])]


def test_pth_and_bootstrap_dir_together_are_one_agent(tmp, gcmond, installed):
    _, _, libdir = installed
    env = user_site_env(tmp, installed)
    env = gcmontest.agent_env(gcmond.sock, base=env)
    env["PYTHONPATH"] = libdir
    rec = run(tmp, env, "collect:4", "state", "stats:end")
    # The .pth runs in site's addsitepackages, before sitecustomize: it
    # loads the agent, and the bootstrap finds it loaded.
    assert rec["via"] == "pth" and rec["stderr"] == ""
    assert rec["sitecustomize"] != os.path.join(libdir, "sitecustomize.py")
    (proc,) = records(gcmond, rec["pid"])
    assert gcmontest.totals(proc) == rec["end"][:len(proc["generations"])]


def test_pth_with_a_socket_in_a_missing_directory_warns_once_and_runs(tmp, installed):
    env = user_site_env(tmp, installed,
                        GCMON_SOCKET="/nonexistent-gcmon/gcmon.sock")
    rec = run(tmp, env, "collect:1", "state")
    lines = rec["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("gcmon: agent not loaded: ")
    assert "/nonexistent-gcmon/gcmon.sock.d" in lines[0]
    assert rec["via"] is None
