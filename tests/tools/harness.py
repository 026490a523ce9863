"""What the process tests in this folder share: the repository's paths, the
bucket hash of DESIGN §3, the one way a check fails, and tools/cluster
driven for one test's own cluster (its directory, its ports)."""
import contextlib
import glob
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
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


def identifier_for(bucket, buckets, prefix="probe"):
    """The first identifier `prefix`-N whose bucket (DESIGN §3 hash) is `bucket`."""
    i = 0
    while fnv1a64(f"{prefix}-{i}".encode()) % buckets != bucket:
        i += 1
    return f"{prefix}-{i}"


def request(method, address, path, body=None, timeout=5, headers=None):
    """(status, parsed JSON body or None) of one HTTP request with a JSON
    body (an error's too); status 0 when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{address}{path}", data=data, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except (ValueError, OSError):
            return error.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def post_message(address, identifier, body, timeout=5):
    """(status, parsed body) of one append of the text `body` without a
    connection; status 0 when nothing answered."""
    req = urllib.request.Request(f"http://{address}/v1/log/{identifier}", data=body.encode(),
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def metric(address, name):
    """The value of the unlabelled metric `name` in GET /metrics, or None."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == name:
            return float(fields[1])
    return None


def poll(condition, seconds):
    """Whether `condition()` held before `seconds` passed (checked every 0.1 s)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def view(address):
    """GET /v1/cluster at `address`, or None."""
    code, body = request("GET", address, "/v1/cluster")
    return body if code == 200 else None


def settled(address, members):
    """Whether `address` lists exactly the client addresses `members` as
    serving members, a membership leader, and every bucket at its target."""
    v = view(address)
    return (v is not None and v["membership"]["leader"] != 0 and
            sorted(m["http"] for m in v["members"] if m["state"] == "serving") ==
            sorted(members) and all(b["replicas"] == b["target"] for b in v["buckets"]))


def voters_in_force(addresses, count):
    """Whether every participant at `addresses` lists `count` voters and its
    own membership log has reached the slot from which they decide (a voter
    change takes effect α slots after it is decided: losing a majority of
    the previous voters before then stalls the membership). Each participant
    learns the decided slots on its own, so ask every one: a kill that leaves
    only survivors short of that slot stalls even when the dead knew it was
    reached (nobody alive can prove what the previous voters decided there;
    seen: failover_test's two of five, the leader killed 40 ms after
    deciding the change)."""
    for address in addresses:
        v = view(address)
        # In force once the log has decided every slot before their first:
        # the next slot to decide is theirs (the leader fills up to it with
        # no-ops).
        if not (v is not None and len(v["membership"]["voters"]) == count and
                v["membership"]["slot"] + 1 >= v["membership"]["voters_from"]):
            return False
    return True


def gone(pid):
    """The process ended (a zombie counts: it serves nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def entries(address, bucket, local=True, fields=("position", "identifier"), timeout=5,
            start=0):
    """[(field, ...)] of every entry of `bucket` from `start` read at
    `address`, paged — its own replica's (local=1) or, local=False, the
    leader's under its read lease — or None unless every page was answered
    200."""
    out, position = [], start
    while True:
        code, body = request("GET", address,
                             f"/v1/buckets/{bucket}/entries?from={position}&limit=1000" +
                             ("&local=1" if local else ""), timeout=timeout)
        if code != 200:
            return None
        out += [tuple(e[f] for f in fields) for e in body["entries"]]
        if not body["entries"]:
            return out
        position = body["next"]


def retained_start(address, bucket, local=True, timeout=5):
    """The first position `address` still holds of `bucket` (0 until
    retention moved it: DESIGN §3 `410 retained`), or None when it does not
    answer 200 or 410."""
    code, body = request("GET", address, f"/v1/buckets/{bucket}/entries?from=0&limit=1" +
                         ("&local=1" if local else ""), timeout=timeout)
    if code == 410 and body.get("code") == "retained":
        return body["start"]
    return 0 if code == 200 else None


class Load(threading.Thread):
    """One client connection appending windows of `window` messages, each
    resubmitted with the same series until answered 200 — at the next of
    `addresses` after a failure, so a load survives the death of the
    participant it talks to. Identifiers are `name`-N, unique per load.
    `acked` holds what was answered 200, `sent` everything ever sent; after
    stop, `failure` says why the load gave up (a window not answered 200 in
    `patience` seconds), or is None. `placed` maps each acknowledged
    identifier to its (bucket, position); bodies are the identifier padded
    to `body_bytes`."""

    def __init__(self, name, addresses, window=10, patience=30, body_bytes=0):
        super().__init__(daemon=True)
        self.name = name
        self.addresses = list(addresses)
        self.window = window
        self.patience = patience
        self.body_bytes = body_bytes
        self.acked = []
        self.placed = {}
        self.sent = set()
        self.stop = threading.Event()
        self.failure = None
        self.resubmissions = 0
        self.connection = None
        for turn in range(len(self.addresses) * 10):
            code, body = request("POST", self.addresses[turn % len(self.addresses)],
                                 "/v1/connect")
            if code == 201:
                self.connection = body["connection"]
                break
            time.sleep(0.1)
        check(self.connection is not None, f"load {name}: POST /v1/connect answered 201")

    def acked_count(self):
        return len(self.acked)

    def run(self):
        series, n, turn = 1, 0, 0
        while not self.stop.is_set():
            names = [f"{self.name}-{n + i}" for i in range(self.window)]
            window = [{"identifier": x, "body": x.ljust(self.body_bytes, "."),
                       "series": series + i} for i, x in enumerate(names)]
            self.sent.update(names)
            deadline = time.time() + self.patience
            while True:
                # 2 s: a paused participant holds a try no longer than that.
                code, body = request("POST", self.addresses[turn % len(self.addresses)],
                                     "/v1/append", {"messages": window}, timeout=2,
                                     headers={"Coworker-Connection": self.connection})
                if code == 200:
                    for x, result in zip(names, body["results"]):
                        self.placed[x] = (result["bucket"], result["position"])
                    break
                self.resubmissions += 1
                turn += 1
                if time.time() > deadline:
                    self.failure = (f"a window was not answered 200 in {self.patience} s "
                                    f"(last {code})")
                    return
                time.sleep(0.05)
            self.acked += names
            series += self.window
            n += self.window


def stop_loads(loads):
    """Stops the loads; each must not have given up."""
    for load in loads:
        load.stop.set()
    for load in loads:
        load.join(60)
        check(load.failure is None, f"{load.name}: {load.failure}")


def stop_and_check_retained(loads, address):
    """stop_and_check for logs that retention shortened (DESIGN §3, §6):
    per bucket, the leader's entries from its retained start at consecutive
    positions; every replica's copy from its own retained start equal to the
    leader's where both hold positions, up to the same end; every
    acknowledged message at or above the leader's start at the position its
    200 named; no identifier twice, nothing no load sent. Returns a summary."""
    stop_loads(loads)
    v = view(address)
    check(v is not None, f"{address} answers /v1/cluster")
    address_of = {m["id"]: m["http"] for m in v["members"]}
    at = {}  # (bucket, position) -> identifier, from the leaders
    starts = {}
    for b in v["buckets"]:
        bucket = b["bucket"]
        leader = address_of[b["leader"]]
        copies = {}

        def read(where, local):
            start = retained_start(where, bucket, local=local)
            got = None if start is None else entries(where, bucket, local=local, start=start)
            return None if got is None else (start, dict(got))

        def equal():
            copies["leader"] = read(leader, False)
            for r in b["replicas"]:
                copies[r] = read(address_of[r], True)
            if None in copies.values():
                return False
            start, mine = copies["leader"]
            end = start + len(mine)
            for r in b["replicas"]:
                theirs_start, theirs = copies[r]
                if theirs_start + len(theirs) != end:
                    return False
                if any(mine[p] != theirs[p] for p in range(max(start, theirs_start), end)):
                    return False
            return True
        check(poll(equal, 10), f"bucket {bucket}: replicas {b['replicas']} agree with the "
                               f"leader on what both retain")
        start, mine = copies["leader"]
        check(sorted(mine) == list(range(start, start + len(mine))),
              f"bucket {bucket}: positions {start}, {start + 1}, ...")
        starts[bucket] = start
        for p, name in mine.items():
            at[(bucket, p)] = name
    kept = retained_away = 0
    for load in loads:
        for name, (bucket, position) in list(load.placed.items()):
            if position < starts[bucket]:
                retained_away += 1
                continue
            check(at.get((bucket, position)) == name,
                  f"{name}: acknowledged at bucket {bucket} position {position}, found "
                  f"{at.get((bucket, position))}")
            kept += 1
    seen = list(at.values())
    sent = set().union(*(load.sent for load in loads))
    check(len(seen) == len(set(seen)), f"no identifier twice: {len(seen) - len(set(seen))}")
    check(set(seen) <= sent, f"{len(set(seen) - sent)} entries no client sent")
    moved = sum(1 for s in starts.values() if s > 0)
    return (f"{kept + retained_away} acknowledged: {kept} retained, each at its position once on "
            f"equal replicas; {retained_away} below their bucket's retained start "
            f"({moved} of {len(starts)} buckets' starts moved)")


def stop_and_check(loads, address):
    """Stops the loads (each must not have given up), then checks DESIGN §7
    on every replica of every bucket's government in `address`'s view (once
    they agree and reach the bucket's highest acknowledged position, waiting
    up to 10 s for the trailing commits):
    replicas equal entry for entry at positions 0, 1, 2, ...; each
    acknowledged identifier exactly once; nothing no load sent. Returns a
    summary line."""
    stop_loads(loads)
    v = view(address)
    check(v is not None, f"{address} answers /v1/cluster")
    address_of = {m["id"]: m["http"] for m in v["members"]}
    seen = []
    # The highest position acknowledged in each bucket.
    top = {}
    for load in loads:
        for bucket, position in load.placed.values():
            top[bucket] = max(top.get(bucket, -1), position)
    for b in v["buckets"]:
        copies = []

        def equal():
            copies[:] = [entries(address_of[r], b["bucket"]) for r in b["replicas"]]
            return (None not in copies and all(c == copies[0] for c in copies) and
                    len(copies[0]) > top.get(b["bucket"], -1))
        # Every replica, the leader too, reads its committed log up to its
        # last durable commit record, and the commit of a bucket's last
        # write is staged with the trailing notice a few ticks after the
        # leader answered it: the copies can agree without that write for a
        # moment. Wait until they agree and reach the highest acknowledged
        # position (what is missing after that is lost, checked below).
        check(poll(equal, 10), f"bucket {b['bucket']}: replicas {b['replicas']} differ or end "
                               f"before position {top.get(b['bucket'])}: "
                               f"{[c and len(c) for c in copies]}")
        positions = [p for p, _ in copies[0]]
        check(positions == list(range(len(positions))),
              f"bucket {b['bucket']}: positions 0, 1, 2, ...")
        seen += [name for _, name in copies[0]]
    acked = [name for load in loads for name in load.acked]
    sent = set().union(*(load.sent for load in loads))
    check(len(seen) == len(set(seen)), f"no identifier twice: {len(seen) - len(set(seen))}")
    lost = set(acked) - set(seen)
    placed = {name: where for load in loads for name, where in load.placed.items()}
    check(not lost, f"{len(lost)} acknowledged entries lost: " +
          ", ".join(f"{name} at (bucket, position) {placed.get(name)}" for name in sorted(lost)[:10]))
    check(set(seen) <= sent, f"{len(set(seen) - sent)} entries no client sent")
    resubmissions = sum(load.resubmissions for load in loads)
    return (f"{len(acked)} acknowledged, {len(seen) - len(set(acked))} more of "
            f"{len(sent) - len(set(acked))} indeterminate logged, {resubmissions} "
            "resubmissions; each acknowledged entry once on equal replicas")


def flip_register_byte(data_dir, segment=None, buckets=None):
    """Flips one payload byte of a register record (kind 2, docs/ARCHITECTURE.md
    "Log store") in the first half of the first segment of the log in
    `data_dir` that holds one (or of the segment file `segment`): damage at
    rest in an acknowledged batch. The register chosen is committed (a commit
    record of its bucket above its position follows) before any checkpoint
    round, re-proposal, checkpoint or reset of its bucket: its entries are in
    that record only. (A round stages a register still uncommitted again and
    a re-proposal holds the same entries, so damage to the first copy loses
    nothing and needs no repair.) With `buckets`, a register of one of them
    if there is one. Returns (segment path, record offset, bucket)."""
    if buckets:
        found = _flip_register_byte(data_dir, segment, set(buckets))
        if found:
            return found
    found = _flip_register_byte(data_dir, segment, None)
    check(found is not None, f"a committed register record to damage in {data_dir}")
    return found


def _flip_register_byte(data_dir, segment, buckets):
    paths = [segment] if segment else glob.glob(os.path.join(data_dir, "log", "core-*", "*.seg"))
    for path in sorted(paths):
        with open(path, "rb") as f:
            data = bytearray(f.read())
        records, at = [], 0  # (offset, kind, bucket, position, payload bytes), in log order
        while at + 64 <= len(data) and data[at:at + 4] == b"CWLG":
            size = struct.unpack_from("<I", data, at + 12)[0]
            records.append((at, data[at + 17], struct.unpack_from("<I", data, at + 20)[0],
                            struct.unpack_from("<Q", data, at + 56)[0], size))
            at += (64 + size + 7) // 8 * 8
        half = len(records) // 2
        for i, (offset, kind, bucket, position, size) in enumerate(records[:half]):
            if kind != 2 or size <= 16 or (buckets is not None and bucket not in buckets):
                continue
            for (_, k, b, p, _) in records[i + 1:]:
                # A round marker first may hold the register again; another
                # register of the bucket at its position replaces it (a
                # re-proposal); a checkpoint or reset of the bucket restarts it.
                if k == 11 or (b == bucket and (k in (4, 10) or (k == 2 and p == position))):
                    break
                if k == 7 and b == bucket and p > position:
                    data[offset + 64 + size // 2] ^= 0x10
                    with open(path, "r+b") as f:
                        f.write(data)
                    return path, offset, bucket
    return None


def flip_membership_byte(data_dir):
    """Flips one payload byte of a membership record (kind 5: Paxos acceptor
    state, core 0's log only) that lies after the last membership checkpoint
    (kind 6) in a batch before the last one (an acknowledged batch, not a
    torn tail): damage at rest that no checkpoint makes harmless. Returns
    (segment path, record offset)."""
    records = []  # (path, offset, kind, payload bytes, batch_first_seq) in log order
    core0 = next(d for d in glob.glob(os.path.join(data_dir, "log", "core-*"))
                 if int(os.path.basename(d)[5:]) == 0)
    for path in sorted(glob.glob(os.path.join(core0, "*.seg")),
                       key=lambda p: int(os.path.basename(p).split(".")[0], 16)):
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at + 64 <= len(data) and data[at:at + 4] == b"CWLG":
            size = struct.unpack_from("<I", data, at + 12)[0]
            records.append((path, at, data[at + 17], size,
                            struct.unpack_from("<Q", data, at + 32)[0]))
            at += (64 + size + 7) // 8 * 8
    last_checkpoint = max((i for i, r in enumerate(records) if r[2] == 6), default=-1)
    last_batch = records[-1][4] if records else 0
    for i in range(last_checkpoint + 1, len(records)):
        path, offset, kind, size, batch = records[i]
        if kind == 5 and size > 16 and batch < last_batch:
            with open(path, "r+b") as f:
                f.seek(offset + 64 + size // 2)
                byte = f.read(1)[0]
                f.seek(offset + 64 + size // 2)
                f.write(bytes([byte ^ 0x10]))
            return path, offset
    check(False, f"a membership record after the last checkpoint to damage in {data_dir}")


SKIPPED = 77  # a test's exit status when it cannot run here: SKIP_77 in CMakeLists.txt


def nft_unusable():
    """Why this machine cannot add nftables rules (tools/cluster partition),
    or None."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("nft") is None:
        return "no nft on PATH"
    done = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return f"nft list tables: {done.stderr.strip()}" if done.returncode != 0 else None


def leader_apart(cluster, count):
    """Of a settled cluster of `count` started by tools/cluster: (its
    /v1/cluster view, the membership leader's id, a bucket leader V that
    does not lead the membership, a bucket V leads, {id: the participant's
    1-based index in `cluster`})."""
    v = view(cluster.http(1))
    check(v is not None, "the cluster answers /v1/cluster")
    boss = v["membership"]["leader"]
    ids = {m["http"]: m["id"] for m in v["members"]}
    index_of = {ids[cluster.http(i)]: i for i in range(1, count + 1)}
    apart = next(b["leader"] for b in v["buckets"] if b["leader"] != boss)
    bucket = next(b["bucket"] for b in v["buckets"] if b["leader"] == apart)
    return v, boss, apart, bucket, index_of


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


def free_base_port(cluster, participants=9):
    """Sets and returns a random base port whose client and peer ports are
    free for participants 1..participants (tests add up to the ninth). A
    port taken by another test running alongside, or still in TIME_WAIT,
    made a participant exit at its bind (coworker_scrub_process in a
    fresh-clone CI run, 2026-12-07)."""
    for _ in range(50):
        cluster.base_port = random.randint(10000, 30000)  # below the ephemeral ports
        try:
            for i in range(1, participants + 1):
                for address in (cluster.http(i), cluster.peer(i)):
                    host, port = address.rsplit(":", 1)
                    with socket.socket() as s:
                        s.bind((host, int(port)))
            return cluster.base_port
        except OSError:
            continue
    check(False, "a free base port")


@contextlib.contextmanager
def own_cluster(prefix, distinct_ips=False):
    """(directory, Cluster) for one test: a fresh temp directory and a
    cluster on random ports in DIR/cluster. On leaving, whatever happened,
    the cluster is stopped and the directory removed (kept, for a look at
    the logs, when COWORKER_TEST_KEEP is set)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    cluster = Cluster(os.path.join(directory, "cluster"), 0, distinct_ips)
    free_base_port(cluster)
    try:
        yield directory, cluster
    except SystemExit as failed:
        if failed.code not in (0, None, SKIPPED):
            # The directory goes below: the participants' last words first.
            for log in sorted(glob.glob(os.path.join(directory, "cluster", "*.log"))):
                with open(log, errors="replace") as f:
                    tail = f.readlines()[-15:]
                print(f"--- last lines of {log}:\n{''.join(tail)}", end="")
        raise
    finally:
        cluster.attempt("stop")
        if os.environ.get("COWORKER_TEST_KEEP"):
            print(f"kept {directory} (COWORKER_TEST_KEEP)")
        else:
            shutil.rmtree(directory, ignore_errors=True)
