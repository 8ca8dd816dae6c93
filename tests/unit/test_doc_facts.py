"""The numbers the man pages and doc/control.md state have one home: the
#define in a header (common/protocol.h for what the agent, gcmond and the
clients agree on). Each row below names the constant and the sentence of
a document that states it; the test reads both from the source tree
(GCMON_SRCDIR), so a changed constant or a changed page fails check-unit
until the two agree again."""
import os
import re

import pytest

SRCDIR = os.environ.get("GCMON_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))

NUM = r"(\d+(?:\.\d+)?)"
# A list of percentile names as prose writes it: "p50, p90, p99 and p99.9",
# "p50/p90/p99/p99.9" or "{p50, p90, p99, p99.9}".
PCT_LIST = r"((?:p\d[\d.]*(?:, |/| and ))+p\d[\d.]*)"


def said_number(text):
    return float(text)


def said_names(text):
    return re.findall(r"p\d+(?:\.\d+)?", text)


def said_ordinals(text):
    """ "50th, 90th, 99th and 99.9th" -> [50.0, 90.0, 99.0, 99.9]."""
    return [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)th", text)]


# (header, constant, scale, document, pattern, read): the document says
# the constant divided by scale (None: a list, compared as it is) in
# pattern's one group, which read turns into a value. Patterns are matched
# against the document with its white space folded and roff's \- read as -.
FACTS = [
    ("common/protocol.h", "PROTO_MAX_EDGES", 1, "man/gcmonctl.1",
     r"1 to " + NUM + r" ascending edges", said_number),
    ("common/protocol.h", "PROTO_MAX_EDGES", 1, "man/pygcprofiler.1",
     r"strictly ascending, at most " + NUM + r" \(default", said_number),
    ("common/protocol.h", "PROTO_MAX_EDGES", 1, "doc/control.md",
     r"1 to " + NUM + r" ascending numbers", said_number),
    ("common/protocol.h", "PROTO_MAX_EDGE_MS", 1, "doc/control.md",
     r"ascending numbers, ms, > 0, <= " + NUM + r"\)", said_number),
    ("common/protocol.h", "PROTO_WAIT_MAX_MS", 1, "man/gcmonctl.1",
     r"timeout_ms up to " + NUM, said_number),
    ("common/protocol.h", "PROTO_WAIT_MAX_MS", 1, "doc/control.md",
     r"`timeout_ms` \(int, <= " + NUM + r"\)", said_number),
    ("common/protocol.h", "PROTO_PAUSE_THRESHOLD_MS", 1, "man/gcmond.8",
     r"milliseconds \(default " + NUM + r"\)\. Counted in every summary",
     said_number),
    ("common/protocol.h", "PROTO_PAUSE_THRESHOLD_MS", 1, "man/pygcprofiler.1",
     r"milliseconds \(default " + NUM + r"; above 0\)", said_number),
    ("common/protocol.h", "PROTO_PAUSE_THRESHOLD_MS", 1, "man/pygcprofiler.1",
     r"told it its alert threshold \(default " + NUM + r"\)", said_number),
    ("common/protocol.h", "PROTO_MAX_FRAME", 1 << 20, "man/gcmond.8",
     r"frames of at most " + NUM + r" MiB", said_number),
    ("common/protocol.h", "PROTO_PCTS", None, "man/gcmond.8",
     r"the ((?:\d[\d.]*th(?:, | and ))+\d[\d.]*th) percentiles",
     said_ordinals),
    ("common/protocol.h", "PROTO_PCT_NAMES", None, "man/gcmond.8",
     r"percentiles_ms has " + PCT_LIST, said_names),
    ("common/protocol.h", "PROTO_PCT_NAMES", None, "man/gcmonctl.1",
     r"latency " + PCT_LIST + " as served", said_names),
    ("common/protocol.h", "PROTO_PCT_NAMES", None, "man/gcmonctl.1",
     r"percentiles_ms \{" + PCT_LIST + r"\}", said_names),
    ("common/protocol.h", "PROTO_PCT_NAMES", None, "man/pygcprofiler.1",
     r"maximum pause, " + PCT_LIST + ", objects", said_names),
    ("common/protocol.h", "PROTO_PCT_NAMES", None, "doc/control.md",
     r'"percentiles_ms": \{((?:"p[\d.]+": x(?:, )?)+)\}', said_names),
    ("common/protocol.h", "PROTO_MAX_ID", 1, "man/gcmon.7",
     r"service name the agent publishes \(at most " + NUM + " bytes",
     said_number),
    ("common/shm.h", "SHM_STACK_DEPTH", 1, "doc/control.md",
     r"deeper than " + NUM + " frames", said_number),
    ("daemon/server.h", "SRV_MAX_CLIENTS", 1, "man/gcmond.8",
     r"At most " + NUM + " clients at once", said_number),
    ("daemon/server.h", "SRV_NEW_IDLE_MS", 1000, "man/gcmond.8",
     r"\(a HELLO or a request\) " + NUM + " seconds after connecting",
     said_number),
    ("daemon/out/http.h", "HTTP_SSE_QUEUE_MAX", 1 << 10, "man/gcmond.8",
     r"Each stream has a queue of at most " + NUM + " KiB", said_number),
]

DEFINE = re.compile(r"^#define[ \t]+(\w+)[ \t]+(.+?)[ \t]*(?:/\*.*)?$", re.M)


def read(path):
    with open(os.path.join(SRCDIR, path), encoding="utf-8") as f:
        return f.read()


def constant(header, name):
    """The value of a plain #define: a number ((4u << 20) too), or an
    initialiser list of numbers or strings."""
    defs = dict(DEFINE.findall(read(header)))
    assert name in defs, "%s defines no %s" % (header, name)
    v = defs[name]
    if v.startswith("{"):
        items = [x.strip() for x in v.strip("{} ").split(",")]
        return [x.strip('"') if x.startswith('"') else float(x)
                for x in items]
    v = re.sub(r"\b(\d+)[uUlL]+\b", r"\1", v)
    assert re.fullmatch(r"[\d\s()<>+*.]+", v), \
        "%s: %s is no plain number: %s" % (header, name, v)
    return eval(v, {"__builtins__": {}})    # digits and operators only


def document(path):
    text = read(path).replace("\\-", "-")
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("header,name,scale,doc,pattern,said", FACTS,
                         ids=["%s:%s" % (f[3], f[1]) for f in FACTS])
def test_document_states_the_header_value(header, name, scale, doc, pattern,
                                          said):
    value = constant(header, name)
    found = re.findall(pattern, document(doc))
    assert len(found) == 1, "%s: %d places match %r (want one)" % (
        doc, len(found), pattern)
    want = value if scale is None else value / scale
    assert said(found[0]) == want, "%s says %r where %s (%s) is %s" % (
        doc, found[0], name, header,
        "%g" % want if scale is not None else want)
