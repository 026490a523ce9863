"""The servers bench/compare/run measures, each started in its own folder on
free ports, polled until ready, and stopped by the pid it was started with.

A server class holds what one round needs: `start()` (returns once it
serves), `pids()` (every process whose CPU time counts: the server processes
and their children, read from /proc), the addresses its clients use, and
`stop()`. Nothing here sleeps to wait for anything: readiness is polled.
"""
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
POLL_S = 0.05
READY_TIMEOUT_S = 60


class SetupError(Exception):
    """A server that did not start, or a client that did not run."""


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_ports(count, taken):
    """`count` distinct free ports below the ephemeral range (so no client's
    outgoing connection takes one between the check and the bind), none in
    `taken`, which collects them."""
    ports = []
    while len(ports) < count:
        port = random.randrange(10000, 30000)
        if port not in taken and port_free(port):
            taken.add(port)
            ports.append(port)
    return ports


def poll(ready, what, timeout=READY_TIMEOUT_S, alive=lambda: True):
    """Until ready() is true; SetupError after `timeout` s or once alive()
    turns false (the server exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise SetupError(f"{what}: the server exited")
        try:
            if ready():
                return
        except (OSError, ValueError, urllib.error.URLError):
            pass
        time.sleep(POLL_S)
    raise SetupError(f"{what}: not ready after {timeout} s")


def http(url, data=None, timeout=2.0):
    """(status, body bytes) of one request; an HTTP error is an answer too."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def process_tree(pids):
    """`pids` and all their descendants still running."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except (OSError, IndexError):
                pass
    seen, stack = set(), list(pids)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(children.get(pid, []))
    return seen


def cpu_seconds(pids):
    """utime + stime of every process in the trees under `pids` (each
    process's own figure covers all its threads)."""
    total = 0
    for pid in process_tree(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
        except (OSError, IndexError):
            pass
    return total / TICKS_PER_S


class Spawned:
    """One server process of ours: its own session (so a terminal's ^C reaches
    only the script), output to a log file in its folder."""

    def __init__(self, command, log_path, cwd=None):
        self.command = command
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, cwd=cwd,
                                            start_new_session=True)
        self.pid = self.process.pid

    def alive(self):
        return self.process.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if not self.alive():
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)  # the group we made, led by this pid
            self.process.wait()

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-5:])
        except OSError:
            return ""


class Server:
    """What each system shares: a folder, its processes, stop()."""

    name = "?"

    def __init__(self, folder, ports_taken):
        self.folder = folder
        self.ports_taken = ports_taken
        self.processes = []
        os.makedirs(folder, exist_ok=True)

    def spawn(self, command, log_name, cwd=None):
        process = Spawned(command, os.path.join(self.folder, log_name), cwd)
        self.processes.append(process)
        return process

    def all_alive(self):
        return all(p.alive() for p in self.processes)

    def pids(self):
        return [p.pid for p in self.processes]

    def stop(self):
        for process in self.processes:
            process.stop()
        self.processes = []


class Coworker(Server):
    """3 participants by tools/cluster (--cores 1, --sync always), in its own
    folder on a free base port; ready once every bucket's government is at
    its target of three, so no migration runs under the load."""

    name = "coworker"

    def __init__(self, folder, ports_taken, binary):
        super().__init__(folder, ports_taken)
        self.env = dict(os.environ, COWORKER_CLUSTER_DIR=folder, COWORKER_BIN=binary)
        self.state = None

    def _cluster(self, *args):
        return subprocess.run([os.path.join(ROOT, "tools", "cluster"), *args], env=self.env,
                              capture_output=True, text=True)

    def start(self):
        while True:
            base = random.randrange(10000, 29800)
            ports = [base + i for i in (1, 2, 3, 101, 102, 103)]
            if not any(p in self.ports_taken for p in ports) and all(map(port_free, ports)):
                break
        self.ports_taken.update(ports)
        done = self._cluster("start", "3", "--base-port", str(base), "--cores", "1",
                             "--sync", "always")
        if done.returncode != 0:
            raise SetupError(f"coworker: tools/cluster start: {done.stderr.strip()}")
        with open(os.path.join(self.folder, "cluster.json")) as f:
            self.state = json.load(f)
        first = self.addresses()[0]

        def settled():
            _, body = http(f"http://{first}/v1/cluster")
            return all(b["replicas"] == b["target"] for b in json.loads(body)["buckets"])
        poll(settled, "coworker: governments at their targets")

    def addresses(self):
        return [p["http"] for p in self.state["participants"]]

    def pids(self):
        return [p["pid"] for p in self.state["participants"]] if self.state else []

    def stop(self):
        # Also after a start that failed half way: whatever cluster.json lists.
        if os.path.exists(os.path.join(self.folder, "cluster.json")):
            self._cluster("stop")  # SIGINT to each pid it started, waits for each
        self.state = None


class Etcd(Server):
    """3 members on loopback, a static initial cluster, default fsync'd WAL;
    ready once every member answers /health with "true". `leader` is the
    client URL of the member leading, where the puts go (as coworker-bench
    routes each append to its bucket's leader)."""

    name = "etcd"

    def start(self):
        ports = free_ports(6, self.ports_taken)
        clients, peers = ports[:3], ports[3:]
        initial = ",".join(f"m{i}=http://127.0.0.1:{peers[i]}" for i in range(3))
        for i in range(3):
            self.spawn(["etcd", "--name", f"m{i}", "--data-dir", os.path.join(self.folder, f"m{i}"),
                        "--listen-client-urls", f"http://127.0.0.1:{clients[i]}",
                        "--advertise-client-urls", f"http://127.0.0.1:{clients[i]}",
                        "--listen-peer-urls", f"http://127.0.0.1:{peers[i]}",
                        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peers[i]}",
                        "--initial-cluster", initial, "--initial-cluster-state", "new",
                        "--initial-cluster-token", os.path.basename(self.folder),
                        "--logger", "zap", "--log-level", "error"], f"m{i}.log")
        self.urls = [f"http://127.0.0.1:{port}" for port in clients]
        for url in self.urls:
            poll(lambda: b'"true"' in http(f"{url}/health")[1], f"etcd: {url}/health",
                 alive=self.all_alive)
        self.leader = None

        def leader_known():
            for url in self.urls:
                _, body = http(f"{url}/v3/maintenance/status", b"{}")
                status = json.loads(body)
                if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                    self.leader = url
                    return True
            return False
        poll(leader_known, "etcd: a leader", alive=self.all_alive)


class Nats(Server):
    """3 nats-server nodes clustered, JetStream on each with its store in its
    folder; ready once each /healthz answers 200. The client makes the R3 file
    stream."""

    name = "nats"

    def start(self):
        clients = free_ports(3, self.ports_taken)
        monitors = free_ports(3, self.ports_taken)
        routes = free_ports(3, self.ports_taken)
        route_list = ", ".join(f"nats-route://127.0.0.1:{port}" for port in routes)
        for i in range(3):
            config = os.path.join(self.folder, f"n{i}.conf")
            with open(config, "w") as f:
                f.write(f'server_name: n{i}\nlisten: 127.0.0.1:{clients[i]}\n'
                        f'http: 127.0.0.1:{monitors[i]}\n'
                        f'jetstream {{ store_dir: "{os.path.join(self.folder, f"n{i}")}" }}\n'
                        f'cluster {{ name: compare, listen: 127.0.0.1:{routes[i]}, '
                        f'routes: [{route_list}] }}\n')
            self.spawn(["nats-server", "-c", config], f"n{i}.log")
        self.addresses = [f"127.0.0.1:{port}" for port in clients]
        for port in monitors:
            poll(lambda: http(f"http://127.0.0.1:{port}/healthz")[0] == 200,
                 f"nats: :{port}/healthz", alive=self.all_alive)


class Redis(Server):
    """One redis-server, appendonly yes, appendfsync always (an answer only
    after the AOF write is fsync'd), no RDB snapshots; ready once it answers
    PING."""

    name = "redis"

    def start(self):
        (self.port,) = free_ports(1, self.ports_taken)
        self.spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", self.folder, "--appendonly", "yes", "--appendfsync", "always",
                    "--save", "", "--daemonize", "no", "--protected-mode", "no"], "redis.log")

        def pong():
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        poll(pong, "redis: PING", alive=self.all_alive)


class Nginx(Server):
    """nginx answering GET /v1/health with Coworker's fixed 200 body, one
    worker (as one participant has --cores 1), no access log; ready once it
    answers."""

    name = "nginx"

    def start(self):
        (self.port,) = free_ports(1, self.ports_taken)
        config = os.path.join(self.folder, "nginx.conf")
        temp = " ".join(f"{kind}_temp_path {self.folder}/{kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(config, "w") as f:
            f.write(f"worker_processes 1;\ndaemon off;\npid {self.folder}/nginx.pid;\n"
                    f"error_log {self.folder}/error.log crit;\n"
                    "events { worker_connections 4096; }\n"
                    f"http {{ access_log off; keepalive_requests 100000000; {temp}\n"
                    f"  server {{ listen 127.0.0.1:{self.port};\n"
                    "    location = /v1/health { default_type application/json;\n"
                    "      return 200 '{\"state\": \"serving\"}\\n'; } } }\n")
        nginx = "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else "nginx"
        self.spawn([nginx, "-c", config, "-p", self.folder], "nginx.out")
        self.url = f"http://127.0.0.1:{self.port}"
        poll(lambda: http(f"{self.url}/v1/health")[0] == 200, "nginx", alive=self.all_alive)
