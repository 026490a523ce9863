#!/usr/bin/env python3
"""A 3-participant cluster on loopback, driven through tools/cluster (label `process`).

Started by the test (its own directory and ports), waited on through
/v1/health, stopped by PID. It checks, against the real processes, sockets
and files:
  1. a cluster forms by arrivals: three members, and every (empty) bucket's
     government grows to its target of three, leadership spread;
  2. appends without connection/series at each bucket's leader: 200 with
     contiguous positions; at a participant that does not lead: hopped to
     the leader, 200 at the next position;
  3. a connection's appends, and resubmissions answered duplicate with the
     original position; a straggler below the last window: 409 superseded;
  4. SIGKILL of a participant and restart on its data dir within the
     departure timeout: it recovers its log and serves what it had acked;
  5. DESIGN §7 read back from every replica of every bucket's current
     government (local=1): each acked append exactly once at its position,
     replicas agreeing entry for entry, nothing no client sent, series
     increasing per connection;
  6. a participant started with other --buckets is refused by the cluster
     and exits 2 with the reason; a bad flag exits 2 with one line;
  6b. the bootstrapper (no --join) killed until departed, then restarted on
     its data dir: it arrives anew (through the members it remembers) under
     a new id.
Prints one line per step; exits non-zero at the first failure.
"""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from harness import ROOT, check, fnv1a64, own_cluster, poll

def request(method, address, path, body=b"", headers=None):
    req = urllib.request.Request(f"http://{address}{path}", data=body if method == "POST" else None,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def leader_address(cluster_view, bucket):
    leader = cluster_view["buckets"][bucket]["leader"]
    for member in cluster_view["members"]:
        if member["id"] == leader:
            return member["http"]
    return None


def main():
    acked = {}  # (bucket, position) -> (identifier, body, connection, series)
    with own_cluster("coworker-process-") as (directory, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port), "--departure-timeout-ms", "5000")
        status, _, view = request("GET", cluster.http(3), "/v1/cluster")
        check(status == 200 and len(view["members"]) == 3, "three members in /v1/cluster")
        buckets = view["buckets_total"]
        check(len(view["buckets"]) == buckets and all(b["replicas"] for b in view["buckets"]),
              "every bucket has a government")
        # The empty buckets of a new cluster grow to their targets before
        # any write: every government of three, leadership spread.
        for _ in range(200):
            status, _, view = request("GET", cluster.http(3), "/v1/cluster")
            if all(b["replicas"] == b["target"] for b in view["buckets"]):
                break
            time.sleep(0.05)
        check(all(len(b["replicas"]) == 3 and b["replicas"] == b["target"]
                  for b in view["buckets"]), "every government grew to its target of three")
        print(f"ok 1: a cluster of 3 formed (membership slot {view['membership']['slot']})")

        next_position = {}
        for n in range(60):
            identifier = f"user-{n}"
            bucket = fnv1a64(identifier.encode()) % buckets
            body = f"message {n}".encode()
            status, _, answer = request("POST", leader_address(view, bucket),
                                        f"/v1/log/{identifier}", body)
            check(status == 200, f"append {identifier} at its leader: {status} {answer}")
            check(answer["bucket"] == bucket, "the bucket is fnv1a64 mod B")
            check(answer["position"] == next_position.get(bucket, 0), "positions are contiguous")
            next_position[bucket] = answer["position"] + 1
            acked[(bucket, answer["position"])] = (identifier, body, None, None)
        bucket = fnv1a64(b"user-0") % buckets
        other = next(m for m in view["members"] if m["id"] != view["buckets"][bucket]["leader"])
        status, headers, answer = request("POST", other["http"], "/v1/log/user-0", b"x")
        check(status == 200 and answer["position"] == next_position[bucket],
              f"a participant that does not lead hops the append to the leader: {status} {answer}")
        acked[(bucket, answer["position"])] = ("user-0", b"x", None, None)
        replicated = sum(1 for b in view["buckets"] if len(b["replicas"]) == 3)
        leaders = {b["leader"] for b in view["buckets"]}
        print(f"ok 2: 60 appends at the buckets' leaders, one hopped from a non-leader; "
              f"{replicated} of {buckets} governments of 3, {len(leaders)} leaders")

        status, _, connection = request("POST", cluster.http(1), "/v1/connect")
        check(status == 201, "connect")
        cid = connection["connection"]
        positions = {}
        for series in range(1, 11):
            identifier = f"session-{series % 3}"
            bucket = fnv1a64(identifier.encode()) % buckets
            headers = {"Coworker-Connection": cid, "Coworker-Series": str(series)}
            body = f"s{series}".encode()
            status, _, answer = request("POST", leader_address(view, bucket),
                                        f"/v1/log/{identifier}", body, headers)
            check(status == 200 and not answer["duplicate"], f"series {series}")
            positions[series] = (identifier, answer)
            acked[(bucket, answer["position"])] = (identifier, body, cid, series)
        identifier, first = positions[10]
        status, _, again = request("POST", leader_address(view, first["bucket"]),
                                   f"/v1/log/{identifier}", b"s10",
                                   {"Coworker-Connection": cid, "Coworker-Series": "10"})
        check(status == 200 and again["duplicate"] and again["position"] == first["position"],
              "a resubmission is a duplicate at the original position")
        identifier, old = positions[9]
        status, _, answer = request("POST", leader_address(view, old["bucket"]),
                                    f"/v1/log/{identifier}", b"s9",
                                    {"Coworker-Connection": cid, "Coworker-Series": "9"})
        if old["bucket"] == first["bucket"]:
            check(status == 409 and answer["code"] == "superseded", "a straggler is superseded")
        print("ok 3: a connection's appends, a duplicate at the original position")

        # A replica stopped (SIGSTOP): its bucket's leader cannot commit, the
        # append's deadline answers 503; resubmitted with the same series
        # once it runs again, the append is logged exactly once.
        stopped = view["members"][2]["id"]
        bucket = next(b["bucket"] for b in view["buckets"]
                      if stopped in b["replicas"] and b["leader"] != stopped)
        identifier = next(f"paused-{n}" for n in range(100000)
                          if fnv1a64(f"paused-{n}".encode()) % buckets == bucket)
        pid = cluster.pids()[2]
        headers = {"Coworker-Connection": cid, "Coworker-Series": "11"}
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.time()
            status, _, answer = request("POST", leader_address(view, bucket),
                                        f"/v1/log/{identifier}", b"paused", headers)
            waited = time.time() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        check(status == 503 and 1.5 < waited < 4.5,
              f"an append its replica cannot ack ends at the deadline: {status} after {waited:.1f} s")
        for _ in range(100):
            status, _, answer = request("POST", leader_address(view, bucket),
                                        f"/v1/log/{identifier}", b"paused", headers)
            if status == 200:
                break
            time.sleep(0.05)
        check(status == 200, f"the resubmission succeeds once the replica runs: {status} {answer}")
        acked[(bucket, answer["position"])] = (identifier, b"paused", cid, 11)
        print(f"ok 3b: a stopped replica: 503 after {waited:.1f} s, the resubmission logged once "
              f"(duplicate: {answer['duplicate']})")

        victim = view["buckets"][0]["leader"]
        victim_index = [m["id"] for m in view["members"]].index(victim) + 1
        cluster.run("kill", str(victim_index))
        cluster.run("restart", str(victim_index))
        for (bucket, position), (identifier, body, _, _) in sorted(acked.items()):
            if view["buckets"][bucket]["leader"] != victim:
                continue
            # The restarted replica learns a commit from the next write or the
            # trailing notice (2 idle ticks later): ask until it has it.
            deadline = time.time() + 5
            while True:
                status, _, page = request(
                    "GET", cluster.http(victim_index),
                    f"/v1/buckets/{bucket}/entries?from={position}&limit=1&local=1")
                if (status == 200 and page["entries"]) or time.time() > deadline:
                    break
                time.sleep(0.05)
            check(status == 200 and page["entries"], f"bucket {bucket} position {position} back")
            check(page["entries"][0]["body"] == body.decode(), "the same body after restart")
        identifier = "after-restart"
        bucket = fnv1a64(identifier.encode()) % buckets
        status, _, view = request("GET", cluster.http(1), "/v1/cluster")
        status, _, answer = request("POST", leader_address(view, bucket), f"/v1/log/{identifier}",
                                    b"again")
        check(status == 200 and answer["position"] == sum(1 for (b, _) in acked if b == bucket),
              f"appends go on after the restart at the next position: {status} {answer}")
        acked[(bucket, answer["position"])] = (identifier, b"again", None, None)
        print(f"ok 4: participant {victim_index} killed and restarted: its log recovered")

        status, _, view = request("GET", cluster.http(2), "/v1/cluster")
        members = {m["id"]: m["http"] for m in view["members"]}
        found = set()
        for b in view["buckets"]:
            copies = []

            def read_copies():
                copies.clear()
                for replica in b["replicas"]:
                    status, _, page = request(
                        "GET", members[replica],
                        f"/v1/buckets/{b['bucket']}/entries?limit=1000&local=1")
                    check(status == 200, f"local read of bucket {b['bucket']} at {replica}")
                    copies.append(page["entries"])
                return all(c == copies[0] for c in copies)
            # A replica commits a write at most a heartbeat after its leader
            # (the trailing notice): the last append may not be there yet.
            check(poll(read_copies, 5), f"replicas of {b['bucket']} agree")
            last_series = {}
            for i, entry in enumerate(copies[0]):
                check(entry["position"] == i, "positions contiguous from 0")
                key = (b["bucket"], entry["position"])
                check(key in acked, f"no entry nobody sent: {key} {entry}")
                identifier, body, conn, series = acked[key]
                check(entry["identifier"] == identifier and entry["body"] == body.decode(),
                      f"the acked bytes at {key}")
                check(entry["connection"] == conn and entry["series"] == series, "series kept")
                if conn is not None:
                    check(series > last_series.get(conn, 0), "series increase per connection")
                    last_series[conn] = series
                found.add(key)
        check(found == set(acked), f"every acked append exactly once ({len(found)}/{len(acked)})")
        print(f"ok 5: DESIGN §7 over every replica: {len(acked)} appends, each once")

        binary = os.environ.get("COWORKER_BIN", os.path.join(ROOT, "build", "bin", "coworker"))
        foreign = subprocess.run(
            [binary, "--listen", f"127.0.0.1:{cluster.base_port + 9}", "--peer-listen",
             f"127.0.0.1:{cluster.base_port + 109}", "--data-dir", os.path.join(directory, "foreign"),
             "--buckets", "32", "--join", f"127.0.0.1:{cluster.base_port + 101}"],
            capture_output=True, text=True, timeout=60)
        check(foreign.returncode == 2 and "64 buckets" in foreign.stderr,
              f"a participant with other --buckets exits 2 with the reason: "
              f"{foreign.returncode} {foreign.stderr[-300:]}")
        bad = subprocess.run([binary, "--listen", "127.0.0.1:1", "--peer-listen", "127.0.0.1:2",
                              "--data-dir", directory, "--replicas", "4"],
                             capture_output=True, text=True, timeout=10)
        check(bad.returncode == 2 and bad.stderr.count("\n") == 1, "a bad flag: one line, exit 2")
        print("ok 6: other --buckets refused by the cluster, a bad flag refused, both exit 2")

        # The bootstrapper (no --join) killed for longer than the departure
        # timeout is departed; restarted on its data dir it arrives anew
        # through the members its state remembers, under a new id.
        status, _, view = request("GET", cluster.http(2), "/v1/cluster")
        old_id = view["members"][0]["id"]
        cluster.run("kill", "1")
        for _ in range(400):
            status, _, view = request("GET", cluster.http(2), "/v1/cluster")
            if status == 200 and all(m["id"] != old_id for m in view["members"]):
                break
            time.sleep(0.05)
        check(all(m["id"] != old_id for m in view["members"]), "participant 1 departed")
        cluster.run("restart", "1")
        status, _, view = request("GET", cluster.http(1), "/v1/cluster")
        check(status == 200 and view["self"] != old_id and len(view["members"]) == 3,
              f"participant 1 arrived anew under a new id: {view.get('self')} (was {old_id})")
        print(f"ok 6b: the bootstrapper departed, restarted: arrived anew as {view['self']}")

        pids = cluster.pids()
        cluster.run("stop")
        for pid in pids:
            check(not os.path.exists(f"/proc/{pid}") or
                  open(f"/proc/{pid}/stat").read().split()[2] == "Z", f"pid {pid} stopped")
        print("ok 7: every participant stopped")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
