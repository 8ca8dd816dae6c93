"""test_promtool: the contrib/ files that sit on top of gcmond's /metrics.

contrib/prometheus/gcmon-rules.yml passes `promtool check rules` and its
unit tests (`promtool test rules gcmon-rules.test.yml`); every metric the
rules and contrib/grafana/gcmon.json query is one a real gcmond serves
(scraped here, with the per-process series enabled); the dashboard is
valid JSON with the panels it promises; gcmond(8) documents every family.
The promtool tests skip (make check's 77 equivalent) only when promtool is
not installed (Debian: apt-get install prometheus).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402

PROMTOOL = shutil.which("promtool")
RULES = os.path.join(gt.SRCDIR, "contrib", "prometheus", "gcmon-rules.yml")
RULES_TEST = os.path.join(gt.SRCDIR, "contrib", "prometheus", "gcmon-rules.test.yml")
DASHBOARD = os.path.join(gt.SRCDIR, "contrib", "grafana", "gcmon.json")
MAN = os.path.join(gt.SRCDIR, "man", "gcmond.8")
needs_promtool = pytest.mark.skipif(PROMTOOL is None,
                                    reason="promtool not installed (apt-get install prometheus)")


@pytest.fixture(scope="module")
def served():
    """Every sample name a gcmond's exposition can carry."""
    port = gt.free_port()
    with gt.Daemon("--metrics-listen", str(port), "--metrics-per-process", "4", "--quiet"):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            text = r.read().decode()
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)$", line)
        if m:
            name, kind = m.groups()
            names.add(name)
            if kind == "histogram":
                names.update(name + s for s in ("_bucket", "_count", "_sum"))
    assert "cpython_gc_pause_seconds_bucket" in names
    assert "cpython_gc_process_pause_max_seconds" in names
    return names


def metric_names(expr):
    """The metric names an expression reads: gcmond's, and recorded ones
    (level:metric:operation)."""
    expr = re.sub(r'"[^"]*"', '""', expr)          # label values are not names
    toks = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {t for t in toks if t.startswith(("cpython_gc_", "gcmond_")) or ":" in t}


def rule_exprs():
    """[(record or alert name, expr)] of the rules file, read without a
    YAML library: each `expr:` is a one-liner or a `|` block."""
    out, name, lines = [], None, open(RULES).read().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"\s*- (record|alert): (\S+)", lines[i])
        if m:
            name = m.group(2)
        m = re.match(r"(\s*)expr: ?(.*)$", lines[i])
        if m:
            if m.group(2).strip() == "|":
                block, ind = [], len(m.group(1))
                i += 1
                while i < len(lines) and (not lines[i].strip() or
                                          len(lines[i]) - len(lines[i].lstrip()) > ind):
                    block.append(lines[i])
                    i += 1
                out.append((name, "\n".join(block)))
                continue
            out.append((name, m.group(2)))
        i += 1
    return out


@needs_promtool
def test_rules_pass_promtool_check():
    r = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 8 rules found" in r.stdout


@needs_promtool
def test_rules_pass_their_unit_tests():
    r = subprocess.run([PROMTOOL, "test", "rules", RULES_TEST], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_rules_query_only_served_or_recorded_metrics(served):
    exprs = rule_exprs()
    recorded = {n for n, _ in exprs if ":" in n}
    assert len(exprs) == 8 and len(recorded) == 4
    for name, expr in exprs:
        unknown = metric_names(expr) - served - recorded
        assert not unknown, "%s reads %s, which gcmond does not serve" % (name, unknown)


def test_dashboard_is_valid_and_queries_served_metrics(served):
    with open(DASHBOARD) as f:
        dash = json.load(f)
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    kinds = {p["type"] for p in panels}
    assert "heatmap" in kinds
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert all(e.strip() for e in exprs)
    joined = "\n".join(exprs)
    assert "histogram_quantile(0.99" in joined                    # p99 per service
    assert "rate(cpython_gc_collections_total" in joined          # collections rate
    assert "rate(cpython_gc_pause_seconds_sum" in joined          # GC share
    for v in dash["templating"]["list"]:
        if isinstance(v.get("query"), dict):
            exprs.append(v["query"]["query"])
    for e in exprs:
        unknown = metric_names(e) - served
        assert not unknown, "dashboard query %r reads %s, which gcmond does not serve" % (
            e, unknown)


def test_every_family_and_label_is_in_the_man_page(served):
    with open(MAN) as f:
        man = f.read().replace("\\-", "-").replace("\\&", "")
    families = {n for n in served if not n.endswith(("_bucket", "_count", "_sum"))}
    missing = [n for n in sorted(families) if n not in man]
    assert not missing, "families not in gcmond.8: %s" % missing
    for label in ("service", "role", "generation", "pid", "le"):
        assert re.search(r"\b%s\b" % label, man), label
