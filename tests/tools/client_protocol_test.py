#!/usr/bin/env python3
"""DESIGN §3 client protocol against clusters of 3 and 5 real processes (label `process`).

Clusters started by tools/cluster (own directory, random ports), stopped by PID.
Requests go to every participant, leaders or not (a non-leader hops to the leader):
  1. appends with connection+series: contiguous positions, duplicates, a straggler;
  2. windows over several buckets at non-leaders, resubmitted, partly superseded,
     and sent at once to two participants (logged once);
  3. malformed windows, appends and reads: 400/404 and their codes, nothing logged;
  4. reads: the same page everywhere (hopped) and at every replica (local=1),
     /v1/log/{identifier} paged by next, long-polls at a non-leader, body_base64;
  5. DESIGN §7 over every replica of every bucket;
  6. 5 participants: appends and windows everywhere, not_replica, DESIGN §7.
Prints one line per step; exits non-zero at the first failure.
"""
import base64
import concurrent.futures
import itertools
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from harness import CLUSTER, ROOT, check, fnv1a64

WRAP = 2 ** 53
REFUSED = [0]  # requests answered with their expected error


def request(method, address, path, body=b"", headers=None, timeout=15):
    req = urllib.request.Request(f"http://{address}{path}", data=body if method == "POST" else None,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            status, raw = reply.status, reply.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw


def append(address, messages, connection=None, raw=None):
    headers = {"Content-Type": "application/json"}
    if connection:
        headers["Coworker-Connection"] = connection
    body = raw if raw is not None else json.dumps({"messages": messages}).encode()
    return request("POST", address, "/v1/append", body, headers)


def check_error(reply, status, code, what):
    """`code` None: any code. Every error JSON has `error` and `code`."""
    REFUSED[0] += 1
    got, answer = reply
    check(got == status and isinstance(answer, dict) and "error" in answer and
          isinstance(answer.get("code"), str) and answer["code"] == (code or answer["code"]),
          f"{what}: expected {status} code {code}, got {got} {answer}")


def is_utf8(data):
    return data.decode(errors="replace").encode() == data


class Cluster:
    def __init__(self, parent, n):
        self.directory, self.n, self.pids = os.path.join(parent, f"cluster{n}"), n, []
        self.env = dict(os.environ, COWORKER_CLUSTER_DIR=self.directory)
        while True:  # below the ephemeral ports, and none of them taken now
            self.base_port = random.randint(10000, 30000 - 200)
            try:
                for port in (self.base_port + d + i for d in (0, 100) for i in self.all()):
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", port))
                break
            except OSError:
                continue

    def start(self):
        os.makedirs(self.directory)
        done = subprocess.run([CLUSTER, "start", str(self.n), "--base-port", str(self.base_port),
                               "--departure-timeout-ms", "5000", "--timeout", "60"],
                              env=self.env, capture_output=True, text=True)
        state = os.path.join(self.directory, "cluster.json")
        if os.path.exists(state):
            with open(state) as f:
                self.pids = [p["pid"] for p in json.load(f)["participants"]]
        check(done.returncode == 0, f"tools/cluster start {self.n}: {done.stdout} {done.stderr}")
        # Every participant sees every government at its target before any write.
        deadline, ready = time.time() + 60, False
        while not ready and time.time() < deadline:
            views = [request("GET", self.http(i), "/v1/cluster") for i in self.all()]
            ready = all(s == 200 and len(v["members"]) == self.n and all(
                b["replicas"] == b["target"] and len(b["replicas"]) == min(3, self.n)
                for b in v["buckets"]) for s, v in views)
            time.sleep(0 if ready else 0.1)
        check(ready, f"every government of the {self.n}-cluster at its target at every member")
        self.view = views[0][1]
        self.B = self.view["buckets_total"]
        by_address = {self.http(i): i for i in self.all()}
        self.index = {m["id"]: by_address[m["http"]] for m in self.view["members"]}

    def stop(self):
        subprocess.run([CLUSTER, "stop"], env=self.env, capture_output=True)
        for pid in self.pids:
            check(not os.path.exists(f"/proc/{pid}") or
                  open(f"/proc/{pid}/stat").read().split()[2] == "Z", f"pid {pid} stopped")

    def http(self, i):
        return f"127.0.0.1:{self.base_port + i}"

    def all(self):
        return range(1, self.n + 1)

    def leader(self, bucket):  # a 1-based participant index, like replicas()
        return self.index[self.view["buckets"][bucket]["leader"]]

    def replicas(self, bucket):
        return [self.index[r] for r in self.view["buckets"][bucket]["replicas"]]


class Ledger:
    """Every acknowledged append by (bucket, position), and bodies that must never appear."""

    def __init__(self, buckets):
        self.B, self.acked, self.ends, self.poison = buckets, {}, [0] * buckets, set()

    def bucket(self, identifier):
        return fnv1a64(identifier.encode()) % self.B

    def record(self, result, identifier, body, connection, series, what):
        bucket = self.bucket(identifier)
        check(result.get("bucket") == bucket and result.get("duplicate") is False and
              result.get("position") == self.ends[bucket],
              f"{what}: new, bucket {bucket} = fnv1a64 mod B, at its next position "
              f"{self.ends[bucket]}: {result}")
        self.acked[(bucket, result["position"])] = (identifier, body, connection, series)
        self.ends[bucket] += 1

    def identifier(self, prefix, want=lambda bucket: True):
        return next(f"{prefix}{n}" for n in itertools.count() if want(self.bucket(f"{prefix}{n}")))


def connect(c, i, wrap=None):
    body = b"" if wrap is None else json.dumps({"series_wrap": wrap}).encode()
    status, answer = request("POST", c.http(i), "/v1/connect", body)
    form = r"\d+-\d+-[0-9a-f]{8}" if wrap is None else rf"\d+-\d+-{wrap}-[0-9a-f]{{8}}"
    check(status == 201 and re.fullmatch(form, answer.get("connection", "")) and
          answer.get("series_wrap") == (wrap or WRAP),
          f"connect at participant {i} (series_wrap {wrap}): {status} {answer}")
    return answer["connection"]


def wrap_of(connection):
    """The series_wrap a connection id carries (its third part of four)."""
    parts = connection.split("-")
    return int(parts[2]) if len(parts) == 4 else WRAP


def series_after(a, b, wrap):
    """DESIGN §3: serial-number arithmetic within the connection's wrap."""
    distance = (a - b) % wrap
    return 0 < distance < wrap // 2


def message(identifier, series, body):
    m = ({"identifier": identifier, "body": body.decode()} if is_utf8(body) else
         {"identifier": identifier, "body_base64": base64.b64encode(body).decode()})
    return m if series is None else dict(m, series=series)


def window_of(L, prefix, count, series, want=lambda bucket: True):
    """`count` messages over count/2 identifiers; every third body is not UTF-8."""
    bodies = [(b"\xff\x00bin-%d" % k) if k % 3 == 2 else f"{prefix} msg {k} é".encode()
              for k in range(count)]
    return [message(L.identifier(f"{prefix}-{k % max(2, count // 2)}-", want),
                    None if series is None else series + k, bodies[k])
            for k in range(count)], bodies


def send_window(c, L, i, cid, messages, bodies, what):
    status, answer = append(c.http(i), messages, cid)
    check(status == 200 and len(answer.get("results", [])) == len(messages),
          f"{what} at participant {i}: {status} {answer}")
    if bodies:
        for m, body, result in zip(messages, bodies, answer["results"]):
            L.record(result, m["identifier"], body, cid, m.get("series"), what)
    return answer["results"]


def check_ends(c, L, what):
    """Each bucket, read through a rotating participant, ends where the ledger says."""
    for bucket in range(L.B):
        i, end = bucket % c.n + 1, L.ends[bucket]
        status, page = request("GET", c.http(i), f"/v1/buckets/{bucket}/entries?from={end}")
        check(status == 200 and page["entries"] == [] and page["next"] == end,
              f"{what}: bucket {bucket} ends at {end} (read at {i}): {status} {page}")


def singles(c, L, tag):
    conns = [connect(c, i) for i in c.all()]
    check(len(set(conns)) == c.n, f"connection ids are unique: {conns}")
    cid, last, at_leader = conns[-1], {}, 0
    for n in range(6 * c.n):
        i, identifier, series = n % c.n + 1, f"{tag}-r-{n % 10}", n + 1
        body, bucket = f"single {n} ✓".encode(), L.bucket(identifier)
        at_leader += c.leader(bucket) == i
        status, answer = request("POST", c.http(i), f"/v1/log/{identifier}", body,
                                 {"Coworker-Connection": cid, "Coworker-Series": str(series)})
        check(status == 200, f"append {identifier} series {series} at {i}: {status} {answer}")
        L.record(answer, identifier, body, cid, series, f"append at participant {i}")
        last[bucket] = (identifier, body, series, i, answer["position"])
    for bucket, (identifier, body, series, i, position) in last.items():
        other = i % c.n + 1
        status, answer = request("POST", c.http(other), f"/v1/log/{identifier}", body,
                                 {"Coworker-Connection": cid, "Coworker-Series": str(series)})
        check(status == 200 and answer["duplicate"] is True and answer["position"] == position
              and answer["bucket"] == bucket, f"series {series} resubmitted at participant "
              f"{other}: duplicate at {position}: {status} {answer}")
    # Series 1 went to r-0's bucket, which has taken series 11 since: a straggler.
    check_error(request("POST", c.http(2), f"/v1/log/{tag}-r-0", "single 0 ✓".encode(),
                        {"Coworker-Connection": cid, "Coworker-Series": "1"}),
                409, "superseded", "a straggler (series 1)")
    # A percent-decoded path segment; the longest identifier; no connection.
    longest = "x" * (1024 - len(tag)) + tag
    for path, identifier in ((f"/v1/log/{tag}%20w%C3%B6rld%2F", f"{tag} wörld/"),
                             (f"/v1/log/{longest}", longest)):
        status, answer = request("POST", c.http(1), path, b"plain")
        check(status == 200, f"POST {path[:40]}: {status} {answer}")
        L.record(answer, identifier, b"plain", None, None, f"POST {path[:40]}")
    return len(last), at_leader, 6 * c.n - at_leader


def windows(c, L, tag):
    cid, series, spanned = connect(c, 2), 1, 0
    for i in c.all():
        messages, bodies = window_of(L, f"{tag}-w{i}", 8, series, lambda b: c.leader(b) != i)
        series += 8
        results = send_window(c, L, i, cid, messages, bodies, f"window at non-leader {i}")
        spanned = max(spanned, len({r["bucket"] for r in results}))
        other = i % c.n + 1
        again = send_window(c, L, other, cid, messages, None, "resubmitted window")
        check(all(a["duplicate"] is True and (a["bucket"], a["position"]) ==
                  (r["bucket"], r["position"]) for a, r in zip(again, results)),
              f"the window resubmitted at {other}: all duplicates at the same positions: {again}")
    check(spanned >= 3, f"windows span several buckets ({spanned})")
    messages, bodies = window_of(L, f"{tag}-n", 4, None)
    send_window(c, L, c.n, None, messages, bodies, "a window without connection")
    # A partial failure: a straggler in bucket A (whose last window is series 2), new in B.
    cid2 = connect(c, 1)
    old = L.identifier(f"{tag}-s-")
    new = L.identifier(f"{tag}-t-", lambda bucket: bucket != L.bucket(old))
    for s in (1, 2):
        send_window(c, L, s, cid2, [message(old, s, b"s%d" % s)], [b"s%d" % s], "window of one")
    status, answer = append(c.http(c.n), [message(old, 1, b"s1"), message(new, 3, b"s3")], cid2)
    check(status == 409 and answer.get("code") == "superseded" and "error" in answer and
          answer["results"][0].get("code") == "superseded" and "error" in answer["results"][0],
          f"a window with a straggler: 409 superseded, per-message results: {status} {answer}")
    L.record(answer["results"][1], new, b"s3", cid2, 3, "the new message beside a straggler")
    both_new = 0
    for round_ in range(4):
        a, b = round_ % c.n + 1, (round_ + 1) % c.n + 1
        messages, bodies = window_of(L, f"{tag}-f{round_}", 6, series)
        series += 6
        gate = threading.Barrier(2)

        def send(i):
            gate.wait()  # both attempts leave together
            return append(c.http(i), messages, cid)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            (sa, ra), (sb, rb) = pool.map(send, (a, b))
        check(sa == 200 and sb == 200, f"one window at once at {a} and {b}: {sa} {ra} / {sb} {rb}")
        ra, rb = ra["results"], rb["results"]
        check([(r["bucket"], r["position"]) for r in ra] ==
              [(r["bucket"], r["position"]) for r in rb] and
              not any(x["duplicate"] and y["duplicate"] for x, y in zip(ra, rb)),
              f"both attempts answer the same positions, each new for one at least: {ra} / {rb}")
        both_new += not any(r["duplicate"] for r in ra + rb)
        for m, body, result in zip(messages, bodies, ra):
            L.record(dict(result, duplicate=False), m["identifier"], body, cid, m["series"],
                     "a window sent at once to two participants")
        check_ends(c, L, f"one window sent at once to {a} and {b}: logged once")
    return spanned, both_new


def malformed(c, L, tag):
    check_ends(c, L, "before the malformed requests")
    cid, address, refused = connect(c, 3), c.http(2), REFUSED[0]
    ok1 = L.identifier(f"{tag}-p-", lambda b: b % 2 == 0)
    ok2 = L.identifier(f"{tag}-q-", lambda b: b % 2 == 1)
    # Two well-formed messages in two buckets come before the malformed one.
    good = [{"identifier": ok1, "series": 1, "body": "poison 1"},
            {"identifier": ok2, "series": 2, "body": "poison 2"}]
    L.poison.update(f"poison {s}".encode() for s in range(1, 1002))
    L.poison.add(b"x")
    bad = [("series not increasing", {"identifier": ok1, "series": 2, "body": "x"}, "series_order"),
           ("bad base64", {"identifier": ok1, "series": 9, "body_base64": "!!no*"}, "bad_body"),
           ("no identifier", {"series": 9, "body": "x"}, "bad_identifier"),
           ("empty identifier", {"identifier": "", "series": 9, "body": "x"}, "bad_identifier"),
           ("1025-byte identifier", {"identifier": "i" * 1025, "series": 9, "body": "x"},
            "bad_identifier"),
           ("lone surrogate", {"identifier": "a\udc00", "series": 9, "body": "x"},
            "bad_identifier"),
           ("identifier 7", {"identifier": 7, "series": 9, "body": "x"}, "bad_identifier"),
           ("body and body_base64", {"identifier": ok1, "series": 9, "body": "x",
                                     "body_base64": "eA=="}, "bad_body"),
           ("no body", {"identifier": ok1, "series": 9}, "bad_body"),
           ("series 2^53", {"identifier": ok1, "series": WRAP, "body": "x"}, "bad_series"),
           ("no series", {"identifier": ok1, "body": "x"}, "bad_series")]
    for what, bad_message, code in bad:
        check_error(append(address, good + [bad_message], cid), 400, code, f"window: {what}")
    unstamped = [{k: v for k, v in m.items() if k != "series"} for m in good]
    check_error(append(address, unstamped + [{"identifier": ok1, "series": 9, "body": "x"}]),
                400, "bad_header", "window: series without Coworker-Connection")
    check_error(append(address, good, "x-1"), 400, "bad_header", "window: a bad connection id")
    many = [{"identifier": ok1, "series": s, "body": f"poison {s}"} for s in range(1, 1002)]
    check_error(append(address, many, cid), 400, "too_many_messages", "a window of 1001")
    for what, raw in (("not JSON", b'{"messages": [{"identifier": "' + ok1.encode() + b'"'),
                      ("empty", b'{"messages": []}'), ("no messages", b'{"message": 1}')):
        check_error(append(address, None, cid, raw), 400, "bad_json", f"window: {what}")
    single = [({"Coworker-Connection": cid}, "only Coworker-Connection"),
              ({"Coworker-Series": "5"}, "only Coworker-Series"),
              ({"Coworker-Connection": "nope", "Coworker-Series": "5"}, "connection nope"),
              ({"Coworker-Connection": "1-", "Coworker-Series": "5"}, "connection 1-"),
              ({"Coworker-Connection": cid, "Coworker-Series": str(WRAP)}, "series 2^53"),
              ({"Coworker-Connection": cid, "Coworker-Series": "-1"}, "series -1"),
              ({"Coworker-Connection": cid, "Coworker-Series": "5x"}, "series 5x")]
    for headers, what in single:
        L.poison.add(f"poison {what}".encode())
        check_error(request("POST", address, f"/v1/log/{ok1}", f"poison {what}".encode(), headers),
                    400, "bad_header", f"single append with {what}")
    L.poison.add(b"poison path")
    for path in ("/v1/log/" + "i" * 1025, "/v1/log/a%FFb"):
        check_error(request("POST", address, path, b"poison path"), 400, "bad_identifier", path)
    check_error(request("GET", address, "/v1/log/a%FFb"), 400, "bad_identifier", "GET a%FFb")
    check_error(request("GET", address, "/v1/nowhere"), 404, None, "an unknown route")
    for bucket in (str(L.B), "abc", "-1"):
        check_error(request("GET", address, f"/v1/buckets/{bucket}/entries"), 404,
                    "unknown_bucket", f"bucket {bucket}")
    for query in ("limit=0", "limit=1001", "wait_ms=30001", "local=2", "from=x", "from=-1"):
        check_error(request("GET", address, f"/v1/buckets/0/entries?{query}"), 400, "bad_query",
                    f"entries?{query}")
        if query != "local=2":  # local is a parameter of bucket reads only
            check_error(request("GET", address, f"/v1/log/{ok1}?{query}"), 400, "bad_query",
                        f"/v1/log/{ok1}?{query}")
    check_error(request("POST", address, "/v1/connect", b'{"series_wrap": 5}'), 400, None,
                "series_wrap 5")
    check_ends(c, L, "after the malformed requests: nothing logged")
    return REFUSED[0] - refused


def wraps(c, L, tag):
    """series_wrap 2^32: series go past the wrap to 0, in singles and in a
    window, each compared within its connection's wrap; a forged check is
    409 unknown_connection."""
    small = 2 ** 32
    cid = connect(c, 1, small)
    identifier = L.identifier(f"{tag}-wrap-")
    bucket = L.bucket(identifier)
    positions = {}
    for n, series in enumerate((small - 2, small - 1, 0, 1)):
        i = n % c.n + 1
        body = f"wrap {series}".encode()
        status, answer = request("POST", c.http(i), f"/v1/log/{identifier}", body,
                                 {"Coworker-Connection": cid, "Coworker-Series": str(series)})
        check(status == 200, f"series {series} of a 2^32 wrap at {i}: {status} {answer}")
        L.record(answer, identifier, body, cid, series, f"series {series} past the wrap")
        positions[series] = answer["position"]
    status, answer = request("POST", c.http(2), f"/v1/log/{identifier}", b"wrap 1",
                             {"Coworker-Connection": cid, "Coworker-Series": "1"})
    check(status == 200 and answer["duplicate"] is True and answer["position"] == positions[1],
          f"series 1 again: a duplicate at {positions[1]}: {status} {answer}")
    L.poison.add(b"poison before the wrap")
    check_error(request("POST", c.http(3), f"/v1/log/{identifier}", b"poison before the wrap",
                        {"Coworker-Connection": cid, "Coworker-Series": str(small - 1)}),
                409, "superseded", "series 2^32-1 after 0 and 1: before them, a straggler")
    L.poison.add(b"poison at the wrap")
    check_error(request("POST", c.http(1), f"/v1/log/{identifier}", b"poison at the wrap",
                        {"Coworker-Connection": cid, "Coworker-Series": str(small)}),
                400, "bad_header", "series 2^32 of a 2^32 wrap")
    window_cid = connect(c, 2, small)
    messages, bodies = window_of(L, f"{tag}-wrapw", 4, small - 2)
    for m, k in zip(messages, range(4)):
        m["series"] = (small - 2 + k) % small  # 2^32-2, 2^32-1, 0, 1
    send_window(c, L, 3, window_cid, messages, bodies, "a window across the wrap")
    backwards = [message(messages[k]["identifier"], series, b"poison backwards")
                 for k, series in ((2, 5), (3, 4))]
    L.poison.add(b"poison backwards")
    check_error(append(c.http(1), backwards, window_cid), 400, "series_order",
                "a window going back")
    # Neighbours in order but not every pair (the first and the last), and a
    # repeat of the first: refused whole, before anything is dispatched (a
    # bucket's share of such a window once reached a phaser's assertion).
    plain_cid = connect(c, 3)
    L.poison.add(b"poison spread")
    for wrap, cid_, series in ((small, window_cid, (0, small // 2 - 1, small - 2)),
                               (small, window_cid, (0, small // 3, 2 * small // 3, 0)),
                               (WRAP, plain_cid, (0, 3 * 10 ** 15, 6 * 10 ** 15))):
        spread = [message(L.identifier(f"{tag}-spread{k}-"), s, b"poison spread")
                  for k, s in enumerate(series)]
        check_error(append(c.http(2), spread, cid_), 400, "series_order",
                    f"a window {series} (wrap {wrap})")
    # A changed check: not this cluster's id (also tried against another
    # cluster by main()).
    forged = cid[:-1] + ("0" if cid[-1] != "0" else "1")
    L.poison.add(b"poison forged")
    check_error(request("POST", c.http(1), f"/v1/log/{identifier}", b"poison forged",
                        {"Coworker-Connection": forged, "Coworker-Series": "2"}),
                409, "unknown_connection", "a connection id with a changed check")
    check_error(append(c.http(2), [message(identifier, 2, b"poison forged")], forged),
                409, "unknown_connection", "a window under a changed check")
    check_ends(c, L, "after the wraps: nothing refused was logged")
    return cid


def read_all(c, i, bucket):
    """Participant i's own replica of a bucket (local=1), paged by next."""
    entries, at = [], 0
    while True:
        status, page = request("GET", c.http(i),
                               f"/v1/buckets/{bucket}/entries?from={at}&limit=1000&local=1")
        check(status == 200 and page["bucket"] == bucket,
              f"local read of bucket {bucket} from {at} at {i}: {status} {page}")
        if not page["entries"]:
            check(page["next"] == at, f"an empty page has next == from: {page}")
            return entries
        check(page["next"] == page["entries"][-1]["position"] + 1, f"next after the page: {page}")
        entries += page["entries"]
        at = page["next"]


def replicas_agree(c, L, what):
    """Every replica's copy of every bucket, once each has committed everything acked."""
    deadline = time.time() + 10
    while True:
        copies = {b: [read_all(c, i, b) for i in c.replicas(b)] for b in range(L.B)}
        if all(len(x) == L.ends[b] for b in copies for x in copies[b]) or time.time() > deadline:
            break
        time.sleep(0.1)  # a replica commits within a heartbeat of its leader
    for bucket, copy in copies.items():
        check(all(x == copy[0] for x in copy),
              f"{what}: replicas {c.replicas(bucket)} of bucket {bucket} agree: {copy}")
    return copies


def reads(c, L, tag):
    copies = replicas_agree(c, L, "local=1 pages")
    for bucket in range(L.B):
        pages = [request("GET", c.http(i), f"/v1/buckets/{bucket}/entries?from=0&limit=1000")
                 for i in c.all()]
        check(pages[0][0] == 200 and all(p == pages[0] for p in pages) and
              pages[0][1]["entries"] == copies[bucket][0] and len(copies[bucket][0]) ==
              L.ends[bucket], f"bucket {bucket}: the same page at every participant and at "
              f"every replica (local=1): {pages} / {copies[bucket]}")
    cid = connect(c, 1)
    x = L.identifier(f"{tag}-x-")
    y = L.identifier(f"{tag}-y-", lambda b: b == L.bucket(x))
    for s in range(1, 11):
        identifier, body = (x, b"x%d" % s) if s % 2 else (y, b"y%d" % s)
        status, answer = request("POST", c.http(s % c.n + 1), f"/v1/log/{identifier}", body,
                                 {"Coworker-Connection": cid, "Coworker-Series": str(s)})
        check(status == 200, f"append {identifier}: {status} {answer}")
        L.record(answer, identifier, body, cid, s, f"append {identifier}")
    want = [(p, v[1]) for (b, p), v in sorted(L.acked.items()) if b == L.bucket(x) and v[0] == x]
    for i in c.all():
        status, page = request("GET", c.http(i), f"/v1/log/{x}?limit=1000")
        check(status == 200 and all(e["identifier"] == x for e in page["entries"]) and
              [(e["position"], e["body"].encode()) for e in page["entries"]] == want,
              f"GET /v1/log/{x} at {i}: its {len(want)} entries only: {status} {page}")
    walked, at = [], 0
    for _ in range(20):
        status, page = request("GET", c.http(2), f"/v1/log/{x}?from={at}&limit=1")
        check(status == 200 and len(page["entries"]) <= 1 and (not page["entries"] or
              page["next"] == page["entries"][0]["position"] + 1),
              f"/v1/log/{x}?from={at}&limit=1: one entry, next after it: {status} {page}")
        if not page["entries"] and page["next"] == at:
            break
        walked += [(e["position"], e["body"].encode()) for e in page["entries"]]
        at = page["next"]
    check(walked == want, f"paging /v1/log/{x} with limit=1 walks its entries: {walked} / {want}")
    bucket = L.bucket(x)
    follower, end, got = next(i for i in c.all() if i != c.leader(bucket)), L.ends[bucket], {}

    def poll():
        started = time.time()
        got["reply"] = request("GET", c.http(follower),
                               f"/v1/buckets/{bucket}/entries?from={end}&wait_ms=3000")
        got["elapsed"] = time.time() - started
    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # not synchronization: only spaces the append after the poll began
    status, answer = request("POST", c.http(c.leader(bucket)), f"/v1/log/{y}", b"\xff\xfe")
    check(status == 200, f"append during the long-poll: {status} {answer}")
    L.record(answer, y, b"\xff\xfe", None, None, "append during the long-poll")
    poller.join()
    status, page = got["reply"]
    check(status == 200 and [e["position"] for e in page["entries"]] == [end] and
          "body" not in page["entries"][0] and page["next"] == end + 1 and
          base64.b64decode(page["entries"][0]["body_base64"]) == b"\xff\xfe" and
          0.3 < got["elapsed"] < 2.5,
          f"a long-poll (3 s) at non-leader {follower} answers the entry appended 0.5 s later, "
          f"its body as body_base64: {status} {page} after {got['elapsed']:.2f} s")
    for local in ("", "&local=1"):
        path = f"/v1/buckets/{bucket}/entries?from={end + 1}&wait_ms=1500{local}"
        started = time.time()
        status, page = request("GET", c.http(follower), path)
        elapsed = time.time() - started
        check(status == 200 and page["entries"] == [] and page["next"] == end + 1 and
              1.2 <= elapsed <= 3.5, f"{path} at {follower}, nothing appended: empty after "
              f"~1.5 s: {status} {page} after {elapsed:.2f} s")
    return len(want), got["elapsed"]


def invariants(c, L):
    copies, found = replicas_agree(c, L, "DESIGN §7"), set()
    for bucket, copy in copies.items():
        last_series = {}
        for i, entry in enumerate(copy[0]):
            key = (bucket, entry["position"])
            check(entry["position"] == i, f"positions contiguous from 0: {key}")
            body = (entry["body"].encode() if "body" in entry
                    else base64.b64decode(entry["body_base64"]))
            check(("body" in entry) == is_utf8(body), f"body iff valid UTF-8: {entry}")
            check(body not in L.poison, f"a refused message was logged: {key} {entry}")
            check(key in L.acked, f"no entry that no client sent: {key} {entry}")
            identifier, sent, conn, series = L.acked[key]
            check((entry["identifier"], body, entry["connection"], entry["series"]) ==
                  (identifier, sent, conn, series), f"the acked append at {key}: {entry} / "
                  f"{L.acked[key]}")
            if conn is not None:
                check(conn not in last_series or series_after(series, last_series[conn],
                                                              wrap_of(conn)),
                      f"series increase per connection (so each is logged once): {entry}")
                last_series[conn] = series
            found.add(key)
    check(found == set(L.acked), f"every acked append exactly once ({len(found)}/{len(L.acked)})")
    return len(found)


def scrape(address):
    """GET /metrics parsed: {(name, labels): value}; checks the text format."""
    status, raw = request("GET", address, "/metrics")
    check(status == 200 and isinstance(raw, bytes), f"/metrics at {address}: {status}")
    samples, typed = {}, set()
    for line in raw.decode().splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in typed:
                family = name[: -len(suffix)]
        check(name.startswith("coworker_") and family in typed, f"a typed coworker_ sample: {line}")
        samples[(name, labels.rstrip("}"))] = float(value)
    return samples


def metrics(c, malformed_count):
    """The counters moved as the requests above say they must."""
    total = {}
    for i in c.all():
        for key, value in scrape(c.http(i)).items():
            total[key] = total.get(key, 0) + value
    get = lambda name, labels="": total.get((name, labels), 0)
    check(get("coworker_hops_sent_total") > 0 and
          get("coworker_hops_received_total") == get("coworker_hops_sent_total"),
          f"hops sent and received: {get('coworker_hops_sent_total')} "
          f"{get('coworker_hops_received_total')}")
    check(get("coworker_duplicates_total") > 0, "duplicates counted")
    check(get("coworker_superseded_total") > 0, "superseded counted")
    check(get("coworker_answers_by_status_total", 'status="400"') +
          get("coworker_answers_by_status_total", 'status="404"') >= malformed_count,
          f"every malformed request counted: {malformed_count} "
          f"{sorted((k, v) for k, v in total.items() if k[0].startswith('coworker_answers'))}")
    check(get("coworker_answers_by_code_total", 'code="series_order"') > 0, "codes counted")
    check(get("coworker_long_polls_total") > 0, "long-polls counted")
    check(get("coworker_append_seconds_count") > 0 and get("coworker_fdatasync_seconds_count") > 0,
          "append and fdatasync latencies observed")
    check(get("coworker_members") == 3 * 3, "each participant sees 3 members")
    return int(get("coworker_hops_sent_total"))


def main():
    parent, clusters, started = tempfile.mkdtemp(prefix="coworker-protocol-"), [], time.time()
    try:
        c = Cluster(parent, 3)
        clusters.append(c)
        c.start()
        L = Ledger(c.B)
        buckets, at_leader, hopped = singles(c, L, "a")
        print(f"ok 1: 3 participants: {at_leader} appends at the leader, {hopped} hopped, "
              f"contiguous; {buckets} resubmitted elsewhere: duplicates; a straggler: 409")
        spanned, both_new = windows(c, L, "a")
        print(f"ok 2: windows at non-leaders over up to {spanned} buckets, resubmitted: "
              f"duplicates; a straggler beside a new message: 409 with results; 4 windows sent "
              f"at once to two participants logged once ({both_new} answered new by both)")
        refused = malformed(c, L, 'a')
        print(f"ok 3: {refused} malformed requests refused with their codes, nothing logged")
        old_cid = wraps(c, L, "a")
        print(f"ok 3b: series_wrap 2^32: series past the wrap in singles and a window, "
              f"duplicates and stragglers within it; a forged id: 409 unknown_connection")
        found, elapsed = reads(c, L, "a")
        print(f"ok 4: pages equal at every participant and replica; /v1/log/ walked {found} "
              f"entries; a long-poll at a non-leader answered after {elapsed:.2f} s")
        print(f"ok 5: DESIGN §7 over every replica of 3: {invariants(c, L)} appends, each once")
        print(f"ok 5b: /metrics at every participant: {metrics(c, refused)} hops, counters moved")
        c.stop()
        c = Cluster(parent, 5)
        clusters.append(c)
        c.start()
        L = Ledger(c.B)
        singles(c, L, "b")
        windows(c, L, "b")
        # The first cluster's id: another cluster issued it (its counters start
        # again here, so taking it would alias this cluster's ids).
        L.poison.add(b"poison from another cluster")
        check_error(request("POST", c.http(1), "/v1/log/b-elsewhere", b"poison from another cluster",
                            {"Coworker-Connection": old_cid, "Coworker-Series": "9"}),
                    409, "unknown_connection", "an id the first cluster issued")
        outside = {b: [i for i in c.all() if i not in c.replicas(b)] for b in range(L.B)}
        check(all(len(o) == 2 for o in outside.values()), "5 participants: 2 outside each bucket")
        for bucket in range(0, L.B, 5):
            for i in outside[bucket]:
                check_error(request("GET", c.http(i), f"/v1/buckets/{bucket}/entries?local=1"),
                            404, "not_replica", f"local=1 of bucket {bucket} at non-replica {i}")
        print(f"ok 6: 5 participants: appends and windows at every participant; local=1 at a "
              f"non-replica: 404 not_replica; DESIGN §7: {invariants(c, L)} appends, each once")
        c.stop()
    finally:
        for c in clusters:
            subprocess.run([CLUSTER, "stop"], env=c.env, capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)
    print(f"1 passed, 0 failed ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
