"""The deployment files operators copy (contrib/kubernetes/): each
Kubernetes manifest parses as Kubernetes objects (kubectl, offline), and
its paths, socket, port and gcmond flags agree with gcmond's defaults
(common/paths.h), with each other, and with gcmond itself, which is
started with exactly those flags (socket and port moved to private ones).
The docker lines of docker-run.sh are held to the same."""
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import gcmontest as gt  # noqa: E402

yaml = pytest.importorskip("yaml", reason="python3-yaml missing: apt-get install python3-yaml")

KUBE = os.path.join(gt.SRCDIR, "contrib", "kubernetes")
MANIFESTS = ["gcmond-daemonset.yaml", "gcmond-sidecar.yaml"]
DOCKER = os.path.join(KUBE, "docker-run.sh")
DOWNWARD = {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}


def host_socket():
    with open(os.path.join(gt.SRCDIR, "common", "paths.h")) as f:
        return re.search(r'#define PATHS_HOST_SOCKET\s+"([^"]+)"', f.read()).group(1)


def load(name):
    with open(os.path.join(KUBE, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pod_spec(obj):
    return obj["spec"]["template"]["spec"] if obj["kind"] in ("DaemonSet", "Deployment") \
        else obj["spec"]


def pod_meta(obj):
    return obj["spec"]["template"]["metadata"] if obj["kind"] in ("DaemonSet", "Deployment") \
        else obj["metadata"]


def containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", [])


def flag(args, name):
    i = args.index(name)
    return args[i + 1]


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def mount_path(spec, c, volume):
    for m in c.get("volumeMounts", []):
        if m["name"] == volume:
            return m["mountPath"]
    return None


def gcmond_runs_with(args, tmp):
    """The real gcmond accepts these flags: started with them, its socket
    and listener moved to private ones; it answers ping and /metrics."""
    args = list(args)
    sock = os.path.join(tmp, "gcmon.sock")
    port = gt.free_port()
    args[args.index("--socket") + 1] = sock
    if "--metrics-listen" in args:
        args[args.index("--metrics-listen") + 1] = "127.0.0.1:%d" % port
    rest = [a for i, a in enumerate(args)
            if not (a == "--socket" or (i > 0 and args[i - 1] == "--socket"))]
    with gt.Daemon(*rest, sock=sock) as d:
        assert d.ping_ok()
        if "--metrics-listen" in args:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
                assert r.status == 200 and b"gcmond_shared_areas" in r.read()


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_kubernetes_objects(name):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl missing: apt-get install kubernetes-client")
    # --local: decoded by kubectl's own scheme, no cluster asked.
    r = subprocess.run([kubectl, "label", "--local", "-f", os.path.join(KUBE, name),
                        "checked=yes", "-o", "name"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # "daemonset.apps/gcmond", "pod/web-with-gcmond": every object, known.
    got = [line.split("/", 1) for line in r.stdout.split()]
    assert [(k.split(".")[0], n) for k, n in got] == \
        [(o["kind"].lower(), o["metadata"]["name"]) for o in load(name)]


@pytest.mark.skipif(not os.access(gt.GCMOND, os.X_OK), reason="gcmond not built")
@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_agrees_with_gcmond_and_itself(name, tmp):
    sock = host_socket()
    objs = load(name)
    gcmonds = []
    for obj in objs:
        spec, meta = pod_spec(obj), pod_meta(obj)
        for c in containers(spec):
            env = env_of(c)
            if c.get("command") == ["gcmond"]:
                args = c["args"]
                assert flag(args, "--socket") == sock
                vol = [m for m in c["volumeMounts"] if sock.startswith(m["mountPath"] + "/")]
                assert vol, c["volumeMounts"]
                port = int(flag(args, "--metrics-listen").rsplit(":", 1)[1])
                assert [p["containerPort"] for p in c["ports"] if p["name"] == "metrics"] == [port]
                assert meta["annotations"]["prometheus.io/port"] == str(port)
                gcmonds.append((obj, args))
            if "GCMON_SOCKET" in env:
                assert env["GCMON_SOCKET"]["value"] == sock, c["name"]
                # The socket's directory is where the shared volume is.
                assert any(sock.startswith(m["mountPath"] + "/") for m in c["volumeMounts"])
                for var, path in DOWNWARD.items():
                    if var in env:
                        assert env[var]["valueFrom"]["fieldRef"]["fieldPath"] == path
        # A pod with a sidecar gcmond: it and the service mount the same
        # volume at the same place.
        names = {c["name"] for c in containers(spec)}
        if "gcmond" in names and len(names) > 1:
            mounts = {c["name"]: {(m["name"], m["mountPath"]) for m in c["volumeMounts"]}
                      for c in containers(spec)}
            assert len(set.intersection(*mounts.values())) >= 1, mounts
    assert gcmonds
    for obj, args in gcmonds:
        spec = pod_spec(obj)
        if obj["kind"] == "DaemonSet":
            # The node's gcmond sees every pod's processes (gcmond(8)).
            assert spec["hostPID"] is True
            (c,) = [c for c in containers(spec) if c["name"] == "gcmond"]
            assert "SYS_PTRACE" in c["securityContext"]["capabilities"]["add"]
            vols = {v["name"]: v for v in spec["volumes"]}
            assert vols["gcmon-run"]["hostPath"]["path"] == os.path.dirname(sock)
        gcmond_runs_with(args, tmp)


def docker_commands():
    with open(DOCKER) as f:
        text = f.read().replace("\\\n", " ")
    return [shlex.split(line) for line in text.splitlines()
            if line.strip().startswith("docker run")]


@pytest.mark.skipif(not os.access(gt.GCMOND, os.X_OK), reason="gcmond not built")
def test_docker_lines_agree_with_gcmond(tmp):
    sock = host_socket()
    cmds = docker_commands()
    assert len(cmds) == 4
    volumes = set()
    for argv in cmds:
        mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
        assert all(m.split(":")[1] == os.path.dirname(sock) for m in mounts), mounts
        volumes |= {m.split(":")[0] for m in mounts}
        image = [i for i, a in enumerate(argv) if a.startswith("gcmon:")]
        if image and argv[image[0] + 1] == "gcmond":   # gcmond, after its image
            args = argv[image[0] + 2:]
            assert flag(args, "--socket") == sock
            port = flag(args, "--metrics-listen").rsplit(":", 1)[1]
            assert any(argv[i + 1].endswith(":" + port) for i, a in enumerate(argv) if a == "-p")
            gcmond_runs_with(args, tmp)
        else:
            envs = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
            assert "GCMON_SOCKET=" + sock in envs
    assert volumes == {os.path.dirname(sock), "gcmon-run"}
    # The node's gcmond is in the host's PID namespace.
    (node,) = [a for a in cmds if "--name" in a and a[a.index("--name") + 1] == "gcmond"]
    assert "--pid=host" in node
