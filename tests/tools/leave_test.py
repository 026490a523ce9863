#!/usr/bin/env python3
"""SIGTERM leaves the cluster gracefully under load (DESIGN §3, issue 16
point 2), on 4 real processes (label `process`).

  1. A 3-participant cluster by tools/cluster, and a fourth participant
     started here (so its exit status is ours to read) joining it; wait
     until every bucket is at its target, the fourth leading its share.
  2. A client appends windows through participant 1 in the background,
     each window resubmitted with the same series until answered 200.
  3. SIGTERM to the fourth: it exits 0 within --leave-timeout-ms, its log
     says it left; the others list three members, every bucket at its
     target on them.
  4. The load stops: every replica of every bucket holds the same entries,
     and each acknowledged identifier appears exactly once.
  5. The fourth, started again on its data dir, arrives anew; with
     --leave-timeout-ms 1 a SIGTERM cannot complete the leave: it exits 0
     anyway at once, saying so, and is still a member.

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import os
import signal
import subprocess
import time

from harness import ROOT, Load, check, entries, own_cluster, poll, request, settled, view

BINARY = os.environ.get("COWORKER_BIN", os.path.join(ROOT, "build", "bin", "coworker"))


def start_fourth(cluster, directory, *extra):
    http = f"127.0.0.1:{cluster.base_port + 4}"
    log = open(os.path.join(directory, "p4.log"), "a")
    command = [BINARY, "--listen", http, "--peer-listen", f"127.0.0.1:{cluster.base_port + 104}",
               "--data-dir", os.path.join(directory, "p4"), "--join", cluster.peer(1),
               "--cores", "1", "--departure-timeout-ms", "1500", *extra]
    return http, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def wait_exit(process, seconds):
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


def main():
    with own_cluster("coworker-leave-test-") as (directory, cluster):
        fourth = None
        try:
            cluster.run("start", "3", "--base-port", str(cluster.base_port),
                        "--departure-timeout-ms", "1500")
            three = [cluster.http(i) for i in (1, 2, 3)]
            http4, fourth = start_fourth(cluster, directory)
            check(poll(lambda: settled(cluster.http(1), three + [http4]), 60),
                  "four serving members, every bucket at its target")
            leads = sum(1 for b in view(cluster.http(1))["buckets"]
                        if b["leader"] == next(m["id"] for m in view(cluster.http(1))["members"]
                                               if m["http"] == http4))
            check(leads > 0, "the fourth leads some buckets")
            print(f"ok 1: four participants, the fourth leading {leads} buckets")

            load = Load("load", [cluster.http(1)])
            load.start()
            check(poll(lambda: len(load.acked) >= 100, 30), "the load is appending")
            print("ok 2: a client appends through participant 1")

            started = time.time()
            fourth.send_signal(signal.SIGTERM)
            code = wait_exit(fourth, 30)
            took = time.time() - started
            check(code == 0, f"the fourth exits 0 after SIGTERM: {code}")
            with open(os.path.join(directory, "p4.log")) as f:
                log = f.read()
            check("SIGTERM: leaving the cluster" in log and "left the cluster" in log,
                  "its log says it left")
            check(poll(lambda: settled(cluster.http(1), three), 30),
                  "three members, every bucket at its target on them")
            print(f"ok 3: SIGTERM: left and exited 0 in {took:.2f} s; every bucket on the other three")

            acked_at_leave = len(load.acked)
            check(poll(lambda: len(load.acked) >= acked_at_leave + 100, 30),
                  "appends go on after the leave")
            load.stop.set()
            load.join(60)
            check(load.failure is None, f"the load: {load.failure}")
            seen = []
            for b in view(cluster.http(1))["buckets"]:
                # A replica learns the last commit from the trailing notice,
                # a few ticks after the leader: wait for it.
                copies = []

                def equal():
                    copies[:] = [entries(a, b["bucket"]) for a in three]
                    return None not in copies and copies[0] == copies[1] == copies[2]
                check(poll(equal, 5),
                      f"bucket {b['bucket']}: replicas differ: {[c and len(c) for c in copies]}")
                seen += [name for _, name in copies[0]]
            check(sorted(seen) == sorted(load.acked),
                  f"each acknowledged identifier once: {len(seen)} entries, "
                  f"{len(set(seen))} distinct, {len(load.acked)} acknowledged")
            print(f"ok 4: {len(load.acked)} acknowledged ({load.resubmissions} resubmissions), "
                  "each once on three equal replicas")

            http4, fourth = start_fourth(cluster, directory, "--leave-timeout-ms", "1")
            # Serving in the others' view and in its own (it may learn of its
            # arrival's decision a heartbeat after them): SIGTERM must find a
            # serving member, or there is no leave to time out.
            check(poll(lambda: settled(cluster.http(1), three + [http4]) and
                       request("GET", http4, "/v1/health")[0] == 200, 60),
                  "the fourth arrived anew and serves")
            fourth.send_signal(signal.SIGTERM)
            code = wait_exit(fourth, 10)
            check(code == 0, f"SIGTERM with --leave-timeout-ms 1 exits 0: {code}")
            with open(os.path.join(directory, "p4.log")) as f:
                log = f.read()
            check("the leave did not complete within --leave-timeout-ms 1" in log,
                  "it says the leave did not complete")
            v = view(cluster.http(1))
            check(any(m["http"] == http4 for m in v["members"]), "it is still a member")
            cluster.run("stop")  # SIGINT to 1..3: each exits without leaving
            print("ok 5: SIGTERM past --leave-timeout-ms exits 0 at once, saying so, still a member")
        finally:
            if fourth is not None and fourth.poll() is None:
                fourth.kill()
                fourth.wait()


if __name__ == "__main__":
    main()
