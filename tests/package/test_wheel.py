"""test_wheel: the pip wheel and sdist (make check-wheel, .ci/run; not
make check: it builds the whole tree twice more and makes a venv per
interpreter).

Once per session, from a clean export of the work tree (what git tracks
and does not ignore, uncommitted edits included, as tests/package/run.sh
does): the backend's build_sdist, then `pip wheel --no-index` of that
sdist with warnings as errors. Then: the wheel's name, tag and RECORD,
the one version everywhere, and for /usr/bin/python3 and every pyenv
CPython 3.10-3.13 (skipped with a message when absent) a venv with the
wheel installed over an older release, checked by wheel_checks.py
(exact totals under pygcprofiler run, --python with another interpreter,
gcmon.start() and the .pth opt-in; gcmond and gcmonctl; ldd; uninstall
leaves nothing). The fresh bookworm root is wheel_root.sh.
"""
import base64
import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("GCMON_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_PY = os.environ.get("GCMON_PYTHON") or "/usr/bin/python3"
PYENV = os.path.join(os.environ.get("PYENV_ROOT", "/root/.pyenv"), "versions")
SYSTEM_LIBS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
               "librt.so.1", "ld-linux-x86-64.so.2"}

sys.path.insert(0, os.path.join(TOP, "packaging"))
import gcmon_wheel  # noqa: E402  (the backend under test)


def configure_version():
    with open(os.path.join(TOP, "configure.ac")) as f:
        return re.search(r"AC_INIT\(\[gcmon\], \[([^]]+)\]", f.read()).group(1)


VERSION = configure_version()


def export_tree(dst):
    """The work tree as git sees it, without builds or ignored files."""
    files = subprocess.run(["git", "-C", TOP, "ls-files", "-co", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for f in filter(None, files):
        src = os.path.join(TOP, f)
        if not os.path.lexists(src):
            continue		# deleted, not yet committed
        os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, f), follow_symlinks=False)


@pytest.fixture(scope="session")
def built():
    work = tempfile.mkdtemp(prefix="gcmon-wheeltest.", dir="/var/tmp")
    try:
        src = os.path.join(work, "src")
        export_tree(src)
        out = os.path.join(work, "dist")
        os.mkdir(out)
        env = dict(os.environ, GCMON_CONFIGURE_ARGS="--enable-werror",
                   PIP_DISABLE_PIP_VERSION_CHECK="1")
        r = subprocess.run([BUILD_PY, "-c", "import sys; sys.path.insert(0, 'packaging'); "
                            "import gcmon_wheel; print(gcmon_wheel.build_sdist(sys.argv[1]))",
                            out], cwd=src, env=env, capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, "build_sdist failed:\n" + r.stdout + r.stderr
        sdist = os.path.join(out, r.stdout.strip().splitlines()[-1])
        r = subprocess.run([BUILD_PY, "-m", "pip", "wheel", "--no-index", "--no-deps",
                            "-w", out, sdist], cwd=work, env=env,
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, "pip wheel of the sdist failed:\n" + r.stdout + r.stderr
        (wheel,) = [os.path.join(out, f) for f in os.listdir(out) if f.endswith(".whl")]
        yield {"work": work, "src": src, "sdist": sdist, "wheel": wheel}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_sdist_holds_configure_the_backend_and_pkg_info(built):
    base = "gcmon-%s" % VERSION
    assert os.path.basename(built["sdist"]) == base + ".tar.gz"
    with tarfile.open(built["sdist"]) as t:
        names = set(t.getnames())
        info = t.extractfile(base + "/PKG-INFO").read().decode()
    for f in ("PKG-INFO", "pyproject.toml", "packaging/gcmon_wheel.py", "configure",
              "configure.ac", "Makefile.in", "agent/bootstrap/gcmon/_version.py.in"):
        assert base + "/" + f in names, f
    assert "\nVersion: %s\n" % VERSION in info


def wheel_members(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: (i, z.read(i)) for i in z.infolist()}


def test_wheel_is_named_and_tagged_as_its_files_allow(built, tmp_path):
    name = os.path.basename(built["wheel"])
    m = re.fullmatch(r"gcmon-(?P<v>[^-]+)-cp310-abi3-(?P<plat>\w+)\.whl", name)
    assert m and m.group("v") == VERSION, name
    members = wheel_members(built["wheel"])
    wheel = members["gcmon-%s.dist-info/WHEEL" % VERSION][1].decode()
    assert "Tag: cp310-abi3-%s\n" % m.group("plat") in wheel
    assert "Root-Is-Purelib: false\n" in wheel
    # Our own reading of every ELF file: what it needs from outside the
    # wheel is glibc's, and the tag's glibc is the newest symbol it asks for.
    bundled = {os.path.basename(n) for n in members if "/data/lib/gcmon/libs/" in n}
    assert {"libuv.so.1", "libjansson.so.4", "libmicrohttpd.so.12"} <= bundled
    newest = 17
    for n, (info, data) in members.items():
        if not data.startswith(b"\x7fELF"):
            continue
        p = tmp_path / os.path.basename(n)
        p.write_bytes(data)
        dyn = subprocess.run(["objdump", "-p", str(p)], capture_output=True,
                             text=True, check=True).stdout
        for lib in re.findall(r"^\s*NEEDED\s+(\S+)", dyn, re.M):
            assert lib in SYSTEM_LIBS or lib in bundled, "%s needs %s" % (n, lib)
        if "/scripts/" in n:
            assert "RUNPATH              $ORIGIN/../lib/gcmon/libs" in dyn, n
            assert info.external_attr >> 16 & 0o111, "%s is not executable" % n
        elif "/data/lib/gcmon/libs/" in n:
            assert "RUNPATH              $ORIGIN\n" in dyn, n
        syms = subprocess.run(["objdump", "-T", str(p)], capture_output=True,
                              text=True, check=True).stdout
        for minor in re.findall(r"\bGLIBC_2\.(\d+)", syms):
            newest = max(newest, int(minor))
    assert m.group("plat") == "manylinux_2_%d_x86_64" % newest


def test_record_lists_every_file_with_its_hash(built):
    members = wheel_members(built["wheel"])
    record = "gcmon-%s.dist-info/RECORD" % VERSION
    rows = list(csv.reader(io.StringIO(members[record][1].decode())))
    assert {r[0] for r in rows} == set(members)
    for path, digest, size in rows:
        if path == record:
            assert digest == "" and size == ""
            continue
        data = members[path][1]
        want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        assert digest == "sha256=" + want.decode() and int(size) == len(data), path
    meta = members["gcmon-%s.dist-info/METADATA" % VERSION][1].decode()
    assert "\nRequires-Python: >=3.10\n" in meta
    for f in ("gcmon/_gcmon.abi3.so", "gcmon/_version.py", "gcmon-autoload.pth",
              "gcmon-%s.data/data/share/man/man8/gcmond.8" % VERSION,
              "gcmon-%s.data/data/lib/gcmon/sitecustomize.py" % VERSION):
        assert f in members, f
    for c in ("pygcprofiler", "gc-monitor", "gcmonctl", "gcmond"):
        assert "gcmon-%s.data/scripts/%s" % (VERSION, c) in members, c


def test_one_version_in_configure_changelog_wheel_and_package(built):
    with open(os.path.join(TOP, "debian", "changelog")) as f:
        changelog = re.match(r"gcmon \(([^)]+)\)", f.readline()).group(1)
    assert changelog == VERSION, "debian/changelog %s, configure.ac %s" % (changelog, VERSION)
    members = wheel_members(built["wheel"])
    meta = members["gcmon-%s.dist-info/METADATA" % VERSION][1].decode()
    assert "\nVersion: %s\n" % VERSION in meta
    assert members["gcmon/_version.py"][1].decode().endswith('__version__ = "%s"\n' % VERSION)
    # gcmon.__version__ and each command's --version: wheel_checks.py, installed.


def older_release(new, dst, old_version="0.0.1"):
    """The wheel as an older release would be: another version in every
    name and in METADATA, and a file this release no longer has."""
    out = os.path.join(dst, os.path.basename(new).replace(VERSION, old_version, 1))
    records = []
    with zipfile.ZipFile(new) as zi, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zo:
        extra = [("gcmon-%s.data/data/lib/gcmon/gcmon/_old_release.py" % old_version,
                  b"# only in the old release\n", 0o100644 << 16)]
        items = [(i.filename, zi.read(i), i.external_attr) for i in zi.infolist()]
        for name, data, attr in items + extra:
            if name.endswith("/RECORD"):
                continue
            name = name.replace("gcmon-%s." % VERSION, "gcmon-%s." % old_version)
            if name.endswith(("METADATA", "_version.py")):
                data = data.replace(VERSION.encode(), old_version.encode())
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = attr
            zo.writestr(info, data)
            d = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append("%s,sha256=%s,%d" % (name, d.decode(), len(data)))
        rec = "gcmon-%s.dist-info/RECORD" % old_version
        zo.writestr(rec, "\n".join(records + [rec + ",,"]) + "\n")
    return out


def interpreters():
    cands = ["/usr/bin/python3"]
    for want in ("3.10", "3.11", "3.12", "3.13"):
        vs = sorted(v for v in (os.listdir(PYENV) if os.path.isdir(PYENV) else [])
                    if re.fullmatch(re.escape(want) + r"\.\d+", v))
        cands.append(os.path.join(PYENV, vs[-1], "bin", "python3") if vs else "pyenv " + want)
    return cands


@pytest.mark.parametrize("python", interpreters())
def test_installed_wheel_monitors_exactly_in_a_venv(built, python, tmp_path):
    if not os.access(python, os.X_OK):
        pytest.skip("no CPython %s under %s" % (python.split()[-1], PYENV))
    # Another interpreter for --python: a pyenv one for Debian's, Debian's
    # for the others.
    others = [p for p in interpreters() if os.access(p, os.X_OK) and p != python]
    other = others[-1] if python == "/usr/bin/python3" else "/usr/bin/python3"
    old = older_release(built["wheel"], str(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([BUILD_PY, os.path.join(HERE, "wheel_checks.py"), "--python", python,
                        "--wheel", built["wheel"], "--old-wheel", old, "--version", VERSION,
                        "--work", str(work)] + (["--other", other] if others else []),
                       capture_output=True, text=True, timeout=600)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr


def test_build_stops_first_naming_every_missing_dependency(built):
    env = dict(os.environ, PKG_CONFIG_LIBDIR="/nonexistent", PKG_CONFIG_PATH="",
               CC="/nonexistent/cc")
    out = tempfile.mkdtemp(prefix="gcmon-sdist-")
    try:
        r = subprocess.run([BUILD_PY, "-c", "import sys; sys.path.insert(0, 'packaging'); "
                            "import gcmon_wheel; gcmon_wheel.build_sdist(sys.argv[1])", out],
                           cwd=built["src"], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode != 0
        assert "missing build dependencies" in r.stderr
        for what in ("/nonexistent/cc", "libuv >= 1.44 (Debian: libuv1-dev)",
                     "jansson >= 2.13", "libmicrohttpd >= 0.9.71", "ncursesw >= 6",
                     "check >= 0.15"):
            assert what in r.stderr, (what, r.stderr)
        assert os.listdir(out) == []
    finally:
        shutil.rmtree(out)


def test_free_threaded_interpreter_is_refused_with_the_reason():
    why = gcmon_wheel.interpreter_problem("cpython", (3, 13, 0), {"Py_GIL_DISABLED": 1})
    assert "free-threaded" in why and "abi3" in why
    assert gcmon_wheel.interpreter_problem("cpython", (3, 13, 0), {"Py_GIL_DISABLED": 0}) is None
    assert "3.10" in gcmon_wheel.interpreter_problem("cpython", (3, 9, 18), {})
    assert "not CPython" in gcmon_wheel.interpreter_problem("pypy", (3, 10, 0), {})


def free_threaded():
    for d in (["/usr/bin"] + [os.path.join(PYENV, v, "bin") for v in
                              (os.listdir(PYENV) if os.path.isdir(PYENV) else [])]):
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if re.fullmatch(r"python3\.\d+t", f):
                return os.path.join(d, f)
    return None


@pytest.mark.skipif(free_threaded() is None, reason="no free-threaded CPython here")
def test_free_threaded_build_stops_before_building(built):
    r = subprocess.run([free_threaded(), "-c", "import sys; sys.path.insert(0, 'packaging'); "
                        "import gcmon_wheel; gcmon_wheel.build_wheel('/nonexistent')"],
                       cwd=built["src"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "free-threaded" in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("debootstrap") is None,
                    reason="the fresh bookworm root needs root and debootstrap")
def test_installed_wheel_works_in_a_fresh_root_without_the_libraries(built):
    r = subprocess.run(["sh", os.path.join(HERE, "wheel_root.sh"), built["wheel"], VERSION],
                       capture_output=True, text=True, timeout=1800)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "== wheel root test passed" in r.stdout
