"""gcmon bootstrap: loads the gcmon agent into this interpreter.

Put first on PYTHONPATH by the launcher (pygcprofiler) or by hand:
PYTHONPATH=<builddir>/agent or $(pkglibdir), a directory that holds this
file and the gcmon package (installed: a link to $(pythondir)/gcmon, so
there is one copy of the code). When GCMON_SOCKET is set it imports gcmon
from here and has gcmon._autoload(), which the .pth hook shares, load the
agent through the extension (nothing happens if the .pth hook already
did): the package's __init__ and the extension, nothing else. It
then removes this directory from sys.path and runs the sitecustomize the
interpreter would have run without it. It must never stop the program:
any trouble is one stderr line starting "gcmon:".
"""
import os
import sys

_GCMON_DIR = os.path.dirname(os.path.abspath(__file__))
_GCMON_SELF = sys.modules.get(__name__)


def _gcmon_chain():
    """Run the sitecustomize this interpreter would have run without us."""
    name = os.path.basename(_GCMON_DIR)
    here = []

    def ours(p):
        # Our directory as named, or another name of it by a link of the
        # same last name: realpath is a stat a component, so only for
        # such an entry (site has made every entry absolute and normal).
        if p == _GCMON_DIR:
            return True
        if os.path.basename(os.path.normpath(p or os.curdir)) != name:
            return False
        if not here:
            here.append(os.path.realpath(_GCMON_DIR))
        return os.path.realpath(p or os.curdir) == here[0]

    sys.path[:] = [p for p in sys.path if not ours(p)]
    sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401  (the next one on sys.path)
    except ImportError as e:
        # Python 2's ImportError has no name: it gets the message anyway.
        if getattr(e, "name", "sitecustomize") != "sitecustomize":
            raise
        if _GCMON_SELF is not None:
            sys.modules["sitecustomize"] = _GCMON_SELF


if os.environ.get("GCMON_SOCKET"):
    try:
        # No bytecode written beside us: the package here is an install's
        # (a wheel's lib/gcmon/ copy too), compiled by its installer for
        # its own interpreter; another one's .pyc would outlive uninstall.
        _gcmon_dwb = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        try:
            import gcmon as _gcmon_pkg
        finally:
            sys.dont_write_bytecode = _gcmon_dwb
        _gcmon_pkg._autoload("sitecustomize")
    except Exception as e:
        try:
            sys.stderr.write("gcmon: agent not loaded: %s\n" % e)
        except Exception:
            pass
_gcmon_chain()
