"""bench/request_cost.py: what recording a request costs (in benchmark 1
of bench/run-all.sh, once per CPython 3.10-3.13, the agent loaded through
its bootstrap and writing to a real gcmond): the extension's
request_begin() + request_end() pair, the call overhead of two C
functions of the same arity subtracted (what any recorder called from
Python pays), and the whole gcmon.wsgi.Middleware around a trivial WSGI
application against the application alone. Rounds interleaved, minimum
kept. It measures and prints; it never asserts.

    python3 request_cost.py [--n N] [--rounds N]
"""
import argparse
from time import perf_counter_ns

from gcmon import _gcmon, _boot  # loaded by the bootstrap (agent/gcmon/)
import gcmon.wsgi

begin, end = _gcmon.request_begin, _gcmon.request_end


def pair(n):
    t = perf_counter_ns()
    for _ in range(n):
        tok = begin(1)
        end(tok, 1, 200, 0)
    return (perf_counter_ns() - t) / n


def floor(n):
    # Two C calls of the same shape that do nothing of ours.
    f1, f4 = abs, max
    t = perf_counter_ns()
    for _ in range(n):
        tok = f1(1)
        f4(tok, 1, 200, 0)
    return (perf_counter_ns() - t) / n


def app(environ, start_response):
    start_response("200 OK", [])
    return [b"x"]


def wsgi(n, a):
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}
    sr = lambda s, h, e=None: None  # noqa: E731
    t = perf_counter_ns()
    for _ in range(n):
        it = a(env, sr)
        for _c in it:
            pass
        close = getattr(it, "close", None)
        if close is not None:
            close()
    return (perf_counter_ns() - t) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=7)
    o = ap.parse_args()
    if _boot._agent is None:
        print("verdict: skipped (no agent loaded: GCMON_SOCKET unset?)")
        return
    _gcmon.request_route(b"GET /x")
    mw = gcmon.wsgi.Middleware(app)
    best = {"pair": 1e18, "floor": 1e18, "app": 1e18, "mw": 1e18}
    for _ in range(o.rounds):
        best["pair"] = min(best["pair"], pair(o.n))
        best["floor"] = min(best["floor"], floor(o.n))
        best["app"] = min(best["app"], wsgi(o.n // 4, app))
        best["mw"] = min(best["mw"], wsgi(o.n // 4, mw))
    rec = best["pair"] - best["floor"]
    print("request_begin+request_end: %.0f ns (call overhead %.0f ns; "
          "recording %.0f ns)" % (best["pair"], best["floor"], rec))
    print("WSGI app alone %.0f ns, in gcmon.wsgi.Middleware %.0f ns "
          "(+%.0f ns a request)" % (best["app"], best["mw"],
                                     best["mw"] - best["app"]))
    print("verdict: recording a request costs %.2f us in C (target 0.5 us); "
          "the WSGI middleware %.2f us in all" % (rec / 1e3,
                                                 (best["mw"] - best["app"]) / 1e3))


if __name__ == "__main__":
    main()
