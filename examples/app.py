"""examples/app.py: a small WSGI app for gunicorn that makes the cyclic
garbage collector work: each request builds a graph of objects with
reference cycles, the way ORM sessions and parsed documents do.

    pygcprofiler run -m gunicorn --chdir examples --workers 4 app:app
"""
import json


class Node:
    __slots__ = ("name", "children", "parent", "payload")

    def __init__(self, name, parent=None):
        self.name = name
        self.parent = parent          # child -> parent and parent -> child: a cycle
        self.children = []
        self.payload = {"name": name, "tags": [name, str(len(name))]}


def build_tree(width, depth, parent=None, prefix="n"):
    node = Node(prefix, parent)
    if depth > 0:
        for i in range(width):
            node.children.append(build_tree(width, depth - 1, node, "%s.%d" % (prefix, i)))
    return node


def count(node):
    return 1 + sum(count(c) for c in node.children)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        body = b"ok\n"
    else:
        # About 1,500 cyclic objects per request; dropped when it returns.
        tree = build_tree(6, 3)
        body = json.dumps({"nodes": count(tree)}).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
