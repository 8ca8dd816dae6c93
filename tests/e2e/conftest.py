"""Fixtures every end-to-end test file shares (pytest finds this file
beside them): a private temporary directory, a quiet gcmond, and after
every test the end of the fake processes (shmarea.py) it left running.
A test file that needs another kind defines its own fixture of the same
name."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import gcmontest as gt  # noqa: E402
import shmarea  # noqa: E402


@pytest.fixture
def tmp(request):
    """A fresh 0700 directory named after the test file, removed after."""
    name = request.module.__name__.rsplit(".", 1)[-1].replace("test_", "", 1)
    d = gt.private_dir("gcmon-%s-" % name)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_fake_process_left():
    """Torn down last (autouse fixtures are set up first): after tmp."""
    yield
    shmarea.kill_all()


@pytest.fixture
def gcmond():
    """A gcmond on a private socket, with --quiet."""
    with gt.Daemon("--quiet") as d:
        yield d
