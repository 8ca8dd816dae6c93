"""gcmon_wheel: gcmon's PEP 517 build backend (pyproject.toml names it).

Needs nothing downloaded (requires = []): it runs the autotools build that
./quickstart runs (configure.ac stays the one build) in a temporary
directory, installs it into a staging tree, and packs:

  build_wheel  gcmon-<version>-cp310-abi3-<platform>.whl
      gcmon/ (the package, with the _gcmon.abi3.so agent), the
      gcmon-autoload.pth opt-in, and in gcmon-<version>.data/:
      scripts/  pygcprofiler, gc-monitor, gcmonctl, gcmond (the env's bin/)
      data/lib/gcmon/       the launcher's bootstrap directory (PKGLIBDIR:
                            sitecustomize.py and a copy of the package, as
                            a wheel cannot carry the install's link)
      data/lib/gcmon/libs/  the shared libraries the binaries need beyond
                            glibc (libuv, jansson, ncurses found with ldd;
                            libmicrohttpd, which gcmond dlopens, from
                            config.h, and gnutls and what it links), and
                            reached through an RPATH of
                            $ORIGIN/../lib/gcmon/libs, as auditwheel does
      data/share/man/       the man pages
  build_sdist  gcmon-<version>.tar.gz: make dist's tarball plus PKG-INFO.

The binaries are configured with --prefix=/usr/local --sbindir=<bindir>,
so the launcher's relocation (paths_relocate: BINDIR -> SBINDIR, PKGLIBDIR)
finds the gcmond and agent of its own install wherever pip puts it.

Both hooks first check the interpreter and the build dependencies and
stop with one message naming everything missing. Environment:
GCMON_CONFIGURE_ARGS (or config setting configure-args) adds configure
arguments (--enable-werror in the tests).
"""
import base64
import csv
import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile

NAME = "gcmon"
PREFIX = "/usr/local"
# What configure.ac's PKG_CHECK_MODULES ask for, and the Debian package
# that has each (configure would stop at the first; this names them all).
PKG_MODULES = (
    ("libuv", "1.44", "libuv1-dev"),
    ("jansson", "2.13", "libjansson-dev"),
    ("libmicrohttpd", "0.9.71", "libmicrohttpd-dev"),
    ("ncursesw", "6", "libncurses-dev"),
    ("check", "0.15", "check"),
)
# Libraries every glibc system has (the manylinux policy's list, those of
# it that glibc itself ships): linked, never bundled.
SYSTEM_LIBS = frozenset((
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
    "libresolv.so.2", "libutil.so.1", "libcrypt.so.1", "libgcc_s.so.1",
    "ld-linux-x86-64.so.2", "linux-vdso.so.1",
))
BINARIES = ("pygcprofiler", "gc-monitor", "gcmonctl", "gcmond")
RPATH = "$ORIGIN/../lib/gcmon/libs"
PYCACHE_BLOCKER = (b"gcmon: a file, so that no Python writes bytecode of the "
                   b"bootstrap here that pip uninstall would not remove\n")
SUMMARY = ("Every garbage collection of every CPython process of a service, "
           "exact and live: agent, launcher (pygcprofiler) and daemon (gcmond)")


class BuildError(Exception):
    """What stopped the build, in words for the user."""


# ---- what the build needs ------------------------------------------------

def version(src):
    """AC_INIT's version: the one every other place repeats."""
    with open(os.path.join(src, "configure.ac")) as f:
        m = re.search(r"AC_INIT\(\[gcmon\],\s*\[([^]]+)\]", f.read())
    if m is None:
        raise BuildError("configure.ac has no AC_INIT([gcmon], [VERSION])")
    return m.group(1)


def interpreter_problem(impl, version_info, config_vars):
    """Why this interpreter cannot build the abi3 wheel, or None."""
    if impl != "cpython":
        return ("this is %s, not CPython: the agent is a CPython extension"
                % impl)
    if tuple(version_info[:2]) < (3, 10):
        return ("this is Python %d.%d: gcmon needs CPython 3.10 or later"
                % tuple(version_info[:2]))
    if config_vars.get("Py_GIL_DISABLED"):
        return ("this CPython is free-threaded (Py_GIL_DISABLED): the agent "
                "is one abi3 module of the Limited API, which the "
                "free-threaded build does not load (PEP 703), so the wheel "
                "would not apply to it; build with a CPython that has the GIL")
    return None


def _have_tool(tool):
    return shutil.which(tool) is not None


def _have_module(module, minimum):
    return subprocess.run(["pkg-config", "--atleast-version=" + minimum,
                           module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def missing_build_deps(src, have_tool=_have_tool, have_module=_have_module,
                       python_include=None):
    """Everything the build needs and does not find, each a line."""
    missing = []
    cc = shlex.split(os.environ.get("CC", "cc"))[0]
    tools = [(cc, "a C compiler (Debian: build-essential)"),
             ("make", "make (Debian: build-essential)"),
             ("pkg-config", "pkg-config (Debian: pkg-config)")]
    if not os.path.exists(os.path.join(src, "configure")):
        tools += [("autoreconf", "autoreconf (Debian: autoconf)"),
                  ("automake", "automake (Debian: automake)")]
    for tool, what in tools:
        if not have_tool(tool):
            missing.append("%s: %s not found" % (what, tool))
    if have_tool("pkg-config"):
        for module, minimum, deb in PKG_MODULES:
            if not have_module(module, minimum):
                missing.append("pkg-config module %s >= %s (Debian: %s)"
                               % (module, minimum, deb))
    if python_include is None:
        python_include = sysconfig.get_paths()["include"]
    if not os.path.isfile(os.path.join(python_include, "Python.h")):
        missing.append("Python.h of %s (not in %s; Debian: python3-dev)"
                       % (sys.executable, python_include))
    return missing


def preflight(src, for_wheel):
    why = interpreter_problem(sys.implementation.name, sys.version_info,
                              sysconfig.get_config_vars())
    if why is not None:
        raise BuildError("cannot build gcmon with %s: %s" % (sys.executable, why))
    missing = missing_build_deps(src)
    if for_wheel:
        for tool in ("patchelf", "ldd", "objdump"):
            if not _have_tool(tool):
                missing.append("%s (Debian: %s) to bundle the shared "
                               "libraries" % (tool, {"patchelf": "patchelf",
                                                     "ldd": "libc-bin",
                                                     "objdump": "binutils"}[tool]))
    if missing:
        raise BuildError("cannot build gcmon: missing build dependencies:\n  - "
                         + "\n  - ".join(missing))


# ---- the autotools build -------------------------------------------------

def _run(cmd, cwd, log):
    log.write("$ %s\n" % " ".join(shlex.quote(c) for c in cmd))
    log.flush()
    r = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise BuildError("%s failed (exit %d) in %s" % (cmd[0], r.returncode, cwd))


def _copy_source(src, dst):
    """The source tree without git's and builds' directories."""
    def ignore(d, names):
        skip = {n for n in names if n in (".git", "__pycache__", "autom4te.cache")}
        if d == src:	# build/, build-asan/ (not build-aux/), wheels, tarballs
            skip |= {n for n in names if n == "build" or n.endswith((".whl", ".tar.gz"))
                     or n.startswith("build-") and n != "build-aux"}
        return skip
    if os.path.exists(os.path.join(src, "config.status")):
        raise BuildError("%s is configured in place (config.status): run "
                         "make distclean there first" % src)
    shutil.copytree(src, dst, symlinks=True, ignore=ignore)


def _configure(tmp, src, config_settings, log):
    tree = os.path.join(tmp, "src")
    _copy_source(src, tree)
    if not os.path.exists(os.path.join(tree, "configure")):
        _run(["autoreconf", "-fi"], tree, log)
    build = os.path.join(tmp, "build")
    os.mkdir(build)
    extra = shlex.split(os.environ.get("GCMON_CONFIGURE_ARGS", ""))
    if config_settings and config_settings.get("configure-args"):
        extra += shlex.split(config_settings["configure-args"])
    # sbindir is bindir: a wheel has one directory of commands.
    _run([os.path.join(tree, "configure"), "--prefix=" + PREFIX,
          "--sbindir=${exec_prefix}/bin", "--runstatedir=/run",
          "--sysconfdir=/etc", "--localstatedir=/var",
          "--with-python=" + sys.executable,
          "--with-pythondir=${prefix}/lib/gcmon-python"] + extra, build, log)
    return build


def _make(build, log, *targets):
    _run(["make", "-j%d" % (os.cpu_count() or 1)] + list(targets), build, log)


# ---- bundling the libraries (what auditwheel repair does) ----------------

def _ldd(path):
    """{soname: path} of every library path loads, transitively."""
    r = subprocess.run(["ldd", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError("ldd %s failed: %s" % (path, r.stderr.strip()))
    libs = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line)
        if m is None:
            continue
        if m.group(2) == "not":
            raise BuildError("%s needs %s, which ldd does not find" % (path, m.group(1)))
        libs[m.group(1)] = m.group(2)
    return libs


def _needed(path):
    r = subprocess.run(["objdump", "-p", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError("objdump -p %s failed: %s" % (path, r.stderr.strip()))
    return re.findall(r"^\s*NEEDED\s+(\S+)", r.stdout, re.M)


def dlopened(build):
    """{soname: path} of what gcmond dlopens rather than links, which ldd
    cannot see: libmicrohttpd, only to serve HTTP (configure.ac finds its
    SONAME, config.h says it; the library of the headers it was built
    with, in pkg-config's libdir)."""
    with open(os.path.join(build, "config.h")) as f:
        m = re.search(r'^#define GCMON_MHD_SONAME "([^"]+)"', f.read(), re.M)
    if m is None:
        raise BuildError("%s/config.h has no GCMON_MHD_SONAME" % build)
    r = subprocess.run(["pkg-config", "--variable=libdir", "libmicrohttpd"],
                       capture_output=True, text=True)
    path = os.path.join(r.stdout.strip(), m.group(1))
    if r.returncode != 0 or not os.path.isfile(path):
        raise BuildError("gcmond dlopens %s, not found in pkg-config's "
                         "libdir of libmicrohttpd (%r)" % (m.group(1), r.stdout.strip()))
    return {m.group(1): path}


def bundle(binaries, libdir, extra=None):
    """Copies into libdir what binaries load beyond glibc, and extra
    ({soname: path}, what they dlopen) with what it loads, and sets the
    RPATHs that find it there (a dlopen from gcmond searches gcmond's
    RUNPATH); returns the sonames bundled."""
    want = {}
    for b in binaries:
        for soname, path in _ldd(b).items():
            if soname not in SYSTEM_LIBS:
                want[soname] = path
    for soname, path in (extra or {}).items():
        want[soname] = path
        for dep, dep_path in _ldd(path).items():
            if dep not in SYSTEM_LIBS:
                want[dep] = dep_path
    os.makedirs(libdir, exist_ok=True)
    for soname, path in sorted(want.items()):
        dst = os.path.join(libdir, soname)
        shutil.copyfile(path, dst)
        os.chmod(dst, 0o755)
        subprocess.run(["patchelf", "--set-rpath", "$ORIGIN", dst], check=True)
    for b in binaries:
        subprocess.run(["patchelf", "--set-rpath", RPATH, b], check=True)
    return sorted(want)


def glibc_floor(paths):
    """The newest GLIBC_2.N symbol version any of paths needs: N."""
    floor = 17
    for p in paths:
        r = subprocess.run(["objdump", "-T", p], capture_output=True, text=True)
        if r.returncode != 0:
            raise BuildError("objdump -T %s failed: %s" % (p, r.stderr.strip()))
        for major, minor in re.findall(r"\bGLIBC_(\d+)\.(\d+)", r.stdout):
            if int(major) != 2:
                raise BuildError("%s needs GLIBC_%s.%s" % (p, major, minor))
            floor = max(floor, int(minor))
    return floor


def platform_tag(elfs, bundled):
    """manylinux_2_N when every library outside the wheel is glibc's and
    no file needs a glibc symbol newer than 2.N; else the plain tag."""
    arch = sysconfig.get_platform().split("-", 1)[1].replace("-", "_")
    for p in elfs:
        for soname in _needed(p):
            if soname not in SYSTEM_LIBS and soname not in bundled:
                return "linux_" + arch
    return "manylinux_2_%d_%s" % (glibc_floor(elfs), arch)


# ---- the wheel -----------------------------------------------------------

def metadata(src, ver):
    with open(os.path.join(src, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return ("Metadata-Version: 2.1\n"
            "Name: %s\nVersion: %s\nSummary: %s\n"
            "License: LGPL-2.1\n"
            "Requires-Python: >=3.10\n"
            "Classifier: Programming Language :: Python :: 3 :: Only\n"
            "Classifier: Programming Language :: C\n"
            "Classifier: Operating System :: POSIX :: Linux\n"
            "Classifier: Topic :: System :: Monitoring\n"
            "Description-Content-Type: text/markdown\n\n%s"
            % (NAME, ver, SUMMARY, readme))


class _Wheel:
    def __init__(self, path):
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.records = []

    def add(self, arcname, data, mode=0o644):
        info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
        self.records.append((arcname, "sha256=" + digest.rstrip(b"=").decode(),
                             str(len(data))))

    def add_file(self, arcname, path, mode=None):
        with open(path, "rb") as f:
            data = f.read()
        if mode is None:
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
        self.add(arcname, data, mode)

    def add_tree(self, arcdir, top):
        for d, dirs, files in os.walk(top, followlinks=True):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            for f in sorted(files):
                if f.endswith(".pyc"):
                    continue
                rel = os.path.relpath(os.path.join(d, f), top)
                self.add_file(arcdir + "/" + rel, os.path.join(d, f), 0o644)

    def close(self, record):
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        for row in self.records:
            w.writerow(row)
        w.writerow((record, "", ""))
        info = zipfile.ZipInfo(record, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, out.getvalue())
        self.zip.close()


def _build_wheel(src, wheel_directory, config_settings, log):
    ver = version(src)
    with tempfile.TemporaryDirectory(prefix="gcmon-wheel.") as tmp:
        build = _configure(tmp, src, config_settings, log)
        _make(build, log)
        stage = os.path.join(tmp, "stage")
        _make(build, log, "install", "DESTDIR=" + stage)
        root = stage + PREFIX
        bindir = os.path.join(root, "bin")
        pkgdir = os.path.join(root, "lib", "gcmon-python")
        agentdir = os.path.join(root, "lib", "gcmon")
        libs = os.path.join(tmp, "libs")
        # gc-monitor is a link to pygcprofiler: a copy in the wheel.
        exes = [os.path.realpath(os.path.join(bindir, b)) for b in BINARIES]
        real = sorted(set(exes))
        bundled = bundle(real, libs, dlopened(build))
        ext = os.path.join(pkgdir, "gcmon", "_gcmon.abi3.so")
        elfs = real + [ext] + [os.path.join(libs, s) for s in bundled]
        tag = "cp310-abi3-" + platform_tag(elfs, set(bundled))
        log.write("bundled: %s\ntag: %s\n" % (" ".join(bundled), tag))

        name = "%s-%s-%s.whl" % (NAME, ver, tag)
        data = "%s-%s.data" % (NAME, ver)
        info = "%s-%s.dist-info" % (NAME, ver)
        w = _Wheel(os.path.join(wheel_directory, name))
        w.add_tree("gcmon", os.path.join(pkgdir, "gcmon"))
        w.add_file("gcmon-autoload.pth", os.path.join(pkgdir, "gcmon-autoload.pth"))
        for b, path in zip(BINARIES, exes):
            w.add_file(data + "/scripts/" + b, path, 0o755)
        w.add_file(data + "/data/lib/gcmon/sitecustomize.py",
                   os.path.join(agentdir, "sitecustomize.py"))
        # A file where __pycache__ would be: no interpreter can write
        # sitecustomize's bytecode there (which pip uninstall would leave
        # behind); the package's, below, is pip's and sitecustomize's
        # import of it writes none.
        w.add(data + "/data/lib/gcmon/__pycache__", PYCACHE_BLOCKER)
        w.add_tree(data + "/data/lib/gcmon/gcmon", os.path.join(agentdir, "gcmon"))
        for s in bundled:
            w.add_file(data + "/data/lib/gcmon/libs/" + s, os.path.join(libs, s))
        w.add_tree(data + "/data/share/man", os.path.join(root, "share", "man"))
        w.add(info + "/METADATA", metadata(src, ver).encode("utf-8"))
        w.add(info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: gcmon_wheel %s\n"
                                "Root-Is-Purelib: false\nTag: %s\n"
                                % (ver, tag)).encode())
        w.add_file(info + "/LICENSE", os.path.join(src, "LICENSE"))
        w.close(info + "/RECORD")
    return name


def _build_sdist(src, sdist_directory, config_settings, log):
    ver = version(src)
    base = "%s-%s" % (NAME, ver)
    with tempfile.TemporaryDirectory(prefix="gcmon-sdist.") as tmp:
        build = _configure(tmp, src, config_settings, log)
        _make(build, log, "dist")
        with tarfile.open(os.path.join(build, base + ".tar.gz")) as t:
            # make dist's own tarball; the filter where Python has one.
            t.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        tree = os.path.join(tmp, base)
        with open(os.path.join(tree, "PKG-INFO"), "w", encoding="utf-8") as f:
            f.write(metadata(src, ver))
        name = base + ".tar.gz"
        with tarfile.open(os.path.join(sdist_directory, name), "w:gz",
                          format=tarfile.PAX_FORMAT) as t:
            t.add(tree, arcname=base, filter=_sdist_member)
    return name


def _sdist_member(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def _hook(fn, directory, config_settings, for_wheel):
    src = os.getcwd()
    try:
        preflight(src, for_wheel)
        with tempfile.NamedTemporaryFile("w+", prefix="gcmon-build.",
                                         suffix=".log", delete=False) as log:
            try:
                name = fn(src, directory, config_settings, log)
            except BuildError:
                log.flush()
                log.seek(0)
                tail = log.read().splitlines()[-60:]
                sys.stderr.write("\n".join(tail) + "\n")
                sys.stderr.write("gcmon: the whole log is %s\n" % log.name)
                raise
        os.unlink(log.name)
        return name
    except BuildError as e:
        sys.exit("gcmon: %s" % e)


# ---- PEP 517 --------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _hook(_build_wheel, os.path.abspath(wheel_directory),
                 config_settings, True)


def build_sdist(sdist_directory, config_settings=None):
    return _hook(_build_sdist, os.path.abspath(sdist_directory),
                 config_settings, False)
