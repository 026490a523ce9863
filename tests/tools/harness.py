"""What the process tests in this folder share: the repository's paths, the
bucket hash of DESIGN §3, the one way a check fails, and tools/cluster
driven for one test's own cluster (its directory, its ports)."""
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER = os.path.join(ROOT, "tools", "cluster")


def fnv1a64(data: bytes) -> int:
    """DESIGN §3: bucket = fnv1a64(identifier bytes) mod B."""
    h = 14695981039346656037
    for byte in data:
        h ^= byte
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


# The vectors of DESIGN §3.
assert fnv1a64(b"") == 0xCBF29CE484222325
assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
assert fnv1a64(b"foobar") == 0x85944171F73967E8


def request(method, address, path, body=None, timeout=5, headers=None):
    """(status, parsed JSON body or None) of one HTTP request with a JSON
    body; status 0 when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{address}{path}", data=data, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def poll(condition, seconds):
    """Whether `condition()` held before `seconds` passed (checked every 0.1 s)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def check(condition, what):
    """Prints FAIL and exits 1 (the caller's `finally` stops the cluster)."""
    if not condition:
        print(f"FAIL: {what}")
        sys.exit(1)


class Cluster:
    """tools/cluster with COWORKER_CLUSTER_DIR=directory; host(i) and http(i)
    are participant i's host and client address for `--base-port base_port`
    (and `--distinct-ips` when distinct_ips)."""

    def __init__(self, directory, base_port, distinct_ips=False):
        self.env = dict(os.environ, COWORKER_CLUSTER_DIR=directory)
        self.base_port = base_port
        self.distinct_ips = distinct_ips
        self.state_file = os.path.join(directory, "cluster.json")

    def attempt(self, *args):
        """(exit status, stdout, stderr) of tools/cluster args."""
        done = subprocess.run([CLUSTER, *args], env=self.env, capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr

    def run(self, *args):
        code, out, err = self.attempt(*args)
        if code != 0:
            print(out, err)
        check(code == 0, f"tools/cluster {' '.join(args)}")
        return out

    def host(self, i):
        return f"127.0.0.{1 + i}" if self.distinct_ips else "127.0.0.1"

    def http(self, i):
        return f"{self.host(i)}:{self.base_port + i}"

    def peer(self, i):
        return f"{self.host(i)}:{self.base_port + 100 + i}"

    def pids(self):
        with open(self.state_file) as f:
            return [p["pid"] for p in json.load(f)["participants"]]


@contextlib.contextmanager
def own_cluster(prefix, distinct_ips=False):
    """(directory, Cluster) for one test: a fresh temp directory and a
    cluster on random ports in DIR/cluster. On leaving, whatever happened,
    the cluster is stopped and the directory removed."""
    directory = tempfile.mkdtemp(prefix=prefix)
    cluster = Cluster(os.path.join(directory, "cluster"), random.randint(10000, 30000),
                      distinct_ips)
    try:
        yield directory, cluster
    finally:
        cluster.attempt("stop")
        shutil.rmtree(directory, ignore_errors=True)
