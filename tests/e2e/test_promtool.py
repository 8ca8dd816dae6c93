"""test_promtool: the contrib/ files that sit on top of gcmond's /metrics.

contrib/prometheus/gcmon-rules.yml passes `promtool check rules` and its
unit tests (`promtool test rules gcmon-rules.test.yml`); every metric the
rules and contrib/grafana/gcmon.json query is one a real gcmond serves
(scraped here, with the per-process series and the route label enabled,
and a fake process that served requests); the dashboard is valid JSON
with the panels it promises, and promtool evaluates its request panels'
expressions over series shaped as gcmond exports them to the figures
worked out by hand; gcmond(8) documents every family and label.
The promtool tests skip (make check's 77 equivalent) only when promtool is
not installed (Debian: apt-get install prometheus).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402
import shmarea  # noqa: E402

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
    with gt.Daemon("--metrics-listen", str(port), "--metrics-per-process", "4",
                   "--metrics-routes", "4", "--quiet") as d:
        a = shmarea.FakeArea(d.sock, run="promtool").publish()
        t = time.monotonic_ns()
        a.request(t + 1000000, t + 3000000, a.add_route("GET /a"), gc_ns=1000000, ngc=1)
        gt.wait_for(lambda: d.ctl("requests")["requests"]["requests"] == 1, 10, 0.05,
                    "the fake request")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            text = r.read().decode()
        a.end()
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
    assert 'route="GET /a"' in text
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
    assert "rate(cpython_gc_requests_delayed_total" in joined     # delayed share
    assert "histogram_quantile(0.99, sum by (service, le) (rate(" \
        "cpython_gc_request_delay_seconds_bucket" in joined        # GC delay p99
    for v in dash["templating"]["list"]:
        if isinstance(v.get("query"), dict):
            exprs.append(v["query"]["query"])
    for e in exprs:
        unknown = metric_names(e) - served
        assert not unknown, "dashboard query %r reads %s, which gcmond does not serve" % (
            e, unknown)


# Ten requests a second in "web", 2 of them delayed, split over two
# routes (as with --metrics-routes) and two roles; per minute, the delay
# histogram's cumulative buckets (0 for most: no collection hit them) and
# 0.75 s of GC time (binary fractions: promtool compares exactly). p99:
# rank 594 of 600 is the top of the 10 ms bucket; the mean delay of a
# delayed request 0.75 s / 120.
REQ_BUCKETS = (("0.001", 480), ("0.0025", 540), ("0.005", 570), ("0.01", 594),
               ("0.025", 600), ("+Inf", 600))
REQ_PANELS = {"Requests delayed by GC (share)": [0.2],
              "GC delay per request": [0.01, 0.00625]}


def _request_series():
    out = []
    for role, route, half in (("worker", "GET /a", True), ("master", "other", False)):
        lab = 'service="web",role="%s",route="%s"' % (role, route)

        def per_min(n, fmt="%d"):
            n = n / 2 if half else n - n / 2
            return {"series": "%%s{%s}" % lab, "values": ("0+" + fmt + "x30") % n}
        for name, n in (("cpython_gc_requests_total", 600),
                        ("cpython_gc_requests_delayed_total", 120)):
            out.append(dict(per_min(n), series="%s{%s}" % (name, lab)))
        for le, n in REQ_BUCKETS:
            out.append(dict(per_min(n), series='cpython_gc_request_delay_seconds_bucket'
                            '{%s,le="%s"}' % (lab, le)))
        out.append(dict(per_min(0.75, "%g"), series="cpython_gc_request_delay_seconds_sum"
                        "{%s}" % lab))
    return out


@needs_promtool
def test_dashboard_request_panels_evaluate_to_the_figures(tmp_path):
    with open(DASHBOARD) as f:
        panels = {p["title"]: p for p in json.load(f)["panels"]}
    tests = []
    for title, want in REQ_PANELS.items():
        exprs = [t["expr"] for t in panels[title]["targets"]]
        assert len(exprs) == len(want), title
        for e, v in zip(exprs, want):
            e = e.replace("$__rate_interval", "5m").replace("$service", ".*")
            tests.append({"expr": e, "eval_time": "20m",
                          "exp_samples": [{"labels": '{service="web"}', "value": v}]})
    spec = {"rule_files": [], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": _request_series(),
                       "promql_expr_test": tests}]}
    path = tmp_path / "dashboard.test.yml"
    path.write_text(json.dumps(spec, indent=1))      # JSON is YAML
    r = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_family_and_label_is_in_the_man_page(served):
    with open(MAN) as f:
        man = f.read().replace("\\-", "-").replace("\\&", "")
    families = {n for n in served if not n.endswith(("_bucket", "_count", "_sum"))}
    missing = [n for n in sorted(families) if n not in man]
    assert not missing, "families not in gcmond.8: %s" % missing
    for label in ("service", "role", "generation", "pid", "le", "route"):
        assert re.search(r"\b%s\b" % label, man), label
