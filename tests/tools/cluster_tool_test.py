#!/usr/bin/env python3
"""tools/cluster --distinct-ips, partition and heal, on 3 real processes (label `process`).

Needs root and nft (the partitions are nftables rules); without them it says
why and exits 77, which ctest counts as skipped. Checks:
  1. `start 3 --distinct-ips`: participant I serves on 127.0.0.(1+I), its
     host is in cluster.json, and the members' addresses say so; an append
     through participant 1 succeeds;
  2. `partition 1 2`: our table holds a drop rule each way; a TCP connect
     from 127.0.0.2 to participant 2's peer port (and back) times out, from
     participant 3's host it connects, participant 2's client port answers
     127.0.0.1; the participants notice (1 or 2 leaves the serving members);
  3. `heal`: the table is gone, the connect goes through, `wait` returns once
     all three serve again, and appends through each participant succeed;
  4. `partition 2 3 --one-way` drops datagrams 2 -> 3 only;
  5. bad partitions exit 2 (itself, out of range, a cluster without
     --distinct-ips); `status` and `logs` work on distinct hosts;
  6. `stop` with a partition in place stops every participant and deletes
     the table.
Polls with deadlines; prints one line per step; exits 1 at the first failure.
"""
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from harness import SKIPPED, Cluster, check, free_base_port, nft_unusable

def request(method, address, path, body=None, timeout=5):
    """(status, parsed body or None); status 0 when nothing answered."""
    req = urllib.request.Request(f"http://{address}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def poll(condition, seconds):
    """condition() until it is true or the deadline passes; its last value."""
    deadline = time.time() + seconds
    while True:
        value = condition()
        if value or time.time() > deadline:
            return value
        time.sleep(0.05)


def connects(source, address):
    """Whether a TCP connect from host `source` to `address` completes in 1 s."""
    host, port = address.split(":")
    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(1.0)
        try:
            s.connect((host, int(port)))
            return True
        except OSError:  # a timeout: the SYN or its answer was dropped
            return False


def delivered(source, destination):
    """Whether a UDP datagram from host `source` reaches host `destination`
    (a packet the output hook drops fails the send with EPERM)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind((destination, 0))
        receiver.settimeout(0.5)
        sender.bind((source, 0))
        try:
            sender.sendto(b"ping", receiver.getsockname())
            return receiver.recv(16) == b"ping"
        except OSError:
            return False


def table_rules(table):
    """The rule comments of our nftables table, or None when it is absent."""
    done = subprocess.run(["nft", "list", "table", "inet", table], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return [line.split('comment "')[1].rstrip('"') for line in done.stdout.splitlines()
            if 'comment "' in line]


def serving_members(cluster, i):
    status, view = request("GET", cluster.http(i), "/v1/cluster")
    if status != 200:
        return set()
    return {m["http"] for m in view["members"] if m["state"] == "serving"}


def appended(cluster, i, identifier):
    status, answer = request("POST", cluster.http(i), f"/v1/log/{identifier}", b"x")
    return status == 200 and answer is not None


def check_start(cluster):
    with open(cluster.state_file) as f:
        state = json.load(f)
    hosts = [p["host"] for p in state["participants"]]
    check(hosts == [cluster.host(i) for i in (1, 2, 3)], f"hosts in cluster.json: {hosts}")
    for p in state["participants"]:
        with open(f"/proc/{p['pid']}/cmdline") as f:
            argv = f.read().split("\0")
        check(argv[-3:-1] == ["--prepare", "zero_fill"], f"flags after -- reach coworker: {argv}")
    everyone = {cluster.http(i) for i in (1, 2, 3)}
    check(serving_members(cluster, 3) == everyone, "the members' addresses are the distinct hosts")
    check(appended(cluster, 1, "before"), "an append through participant 1")
    print(f"ok 1: 3 participants on {', '.join(hosts)}, an append through participant 1")


def check_partition(cluster, table):
    out = cluster.run("partition", "1", "2")
    check(table in out, f"partition names its table: {out!r}")
    rules = table_rules(table)
    check(rules == ["partition 1 -> 2", "partition 2 -> 1"], f"two drop rules: {rules}")
    check(not connects(cluster.host(1), cluster.peer(2)), "1 -> 2's peer port is cut")
    check(not connects(cluster.host(2), cluster.peer(1)), "2 -> 1's peer port is cut")
    check(connects(cluster.host(3), cluster.peer(2)), "3 -> 2's peer port is not")
    check(request("GET", cluster.http(2), "/v1/health")[0] != 0,
          "participant 2's client port still answers 127.0.0.1")
    check("partitions: 1 -> 2, 2 -> 1" in cluster.run("status"), "status lists the partitions")
    # The participants' own peer links come from their hosts, so they notice:
    # 1 or 2 stops being a serving member (departed, or unreachable).
    pair = {cluster.http(1), cluster.http(2)}
    noticed = poll(lambda: not pair <= serving_members(cluster, 3), 20)
    check(noticed, f"the participants notice the cut: {serving_members(cluster, 3)}")
    print(f"ok 2: partition 1 2: {rules}, peer connects time out, the cluster noticed")


def check_heal(cluster, table):
    cluster.run("heal")
    check(table_rules(table) is None, "heal deletes the table")
    check(connects(cluster.host(1), cluster.peer(2)), "1 -> 2's peer port connects again")
    started = time.time()
    cluster.run("wait", "--timeout", "30")
    waited = time.time() - started
    everyone = {cluster.http(i) for i in (1, 2, 3)}
    for i in (1, 2, 3):
        check(serving_members(cluster, i) == everyone, f"participant {i} sees all three serving")
        check(poll(lambda: appended(cluster, i, f"healed-{i}"), 20),
              f"an append through participant {i} after heal")
    print(f"ok 3: healed: table gone, serving again after {waited:.1f} s, appends through each")


def check_one_way(cluster, table):
    cluster.run("partition", "2", "3", "--one-way")
    rules = table_rules(table)
    check(rules == ["partition 2 -> 3"], f"one rule one way: {rules}")
    check(not delivered(cluster.host(2), cluster.host(3)), "2 -> 3 dropped")
    check(delivered(cluster.host(3), cluster.host(2)), "3 -> 2 delivered")
    cluster.run("heal")
    check(delivered(cluster.host(2), cluster.host(3)), "2 -> 3 delivered after heal")
    cluster.run("wait", "--timeout", "30")
    print("ok 4: partition 2 3 --one-way drops 2 -> 3 only")


def check_usage(cluster, directory):
    for args, words in ((("1", "1"), "itself"), (("1", "4"), "1 to 3")):
        code, _, err = cluster.attempt("partition", *args)
        check(code == 2 and words in err, f"partition {' '.join(args)}: exit 2: {code} {err!r}")
    # A cluster on 127.0.0.1 only (its state file is all `partition` reads).
    plain = Cluster(os.path.join(directory, "plain"), 9)
    os.makedirs(os.path.dirname(plain.state_file))
    with open(plain.state_file, "w") as f:
        json.dump({"participants": [{"host": "127.0.0.1", "pid": 0}] * 2}, f)
    code, _, err = plain.attempt("partition", "1", "2")
    check(code == 2 and "--distinct-ips" in err, f"no --distinct-ips: exit 2: {code} {err!r}")
    log = cluster.run("logs", "2")
    check(os.path.join(directory, "p2") in log and "arrived" in log, "logs 2")
    code, _, err = cluster.attempt("status", "--", "--cores", "2")
    check(code == 2 and "start only" in err, f"flags after -- for status: exit 2: {code} {err!r}")
    print("ok 5: bad partitions exit 2; status and logs on distinct hosts")


def check_stop(cluster, table):
    cluster.run("partition", "1", "2")
    pids = cluster.pids()
    cluster.run("stop")
    check(table_rules(table) is None, "stop deletes the table")
    for pid in pids:
        check(not os.path.exists(f"/proc/{pid}") or
              open(f"/proc/{pid}/stat").read().split()[2] == "Z", f"pid {pid} stopped")
    print("ok 6: stop with a partition in place: every participant stopped, the table gone")


def main():
    why = nft_unusable()
    if why:
        print(f"SKIP: partitions need nftables rules: {why}")
        sys.exit(SKIPPED)
    directory = tempfile.mkdtemp(prefix="coworker-cluster-tool-")
    cluster = Cluster(directory, 0, distinct_ips=True)
    table = f"coworker_cluster_{free_base_port(cluster)}"
    started = time.time()
    try:
        cluster.run("start", "3", "--distinct-ips", "--base-port", str(cluster.base_port),
                    "--heartbeat-ms", "100", "--departure-timeout-ms", "3000",
                    "--", "--prepare", "zero_fill")
        check_start(cluster)
        check_partition(cluster, table)
        check_heal(cluster, table)
        check_one_way(cluster, table)
        check_usage(cluster, directory)
        check_stop(cluster, table)
    finally:
        cluster.attempt("stop")
        # Never leave a rule behind, whatever failed.
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
    print(f"1 passed, 0 failed ({time.time() - started:.1f} s)")


if __name__ == "__main__":
    main()
