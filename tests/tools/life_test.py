#!/usr/bin/env python3
"""The life of a cluster under load on real processes (issue 16 points 1, 2
and 6; label `process`), departure timeout 1500 ms, DESIGN §7 read back at
the end.

Three loads run from step 1 to the end, each one connection appending
windows of 10, every window resubmitted with the same series (at the next
participant after a failure) until answered 200; a load gives up, and the
test fails, when a window is not answered 200 within 30 s.
  1. one participant bootstraps; the loads append through it;
  2. arrivals 1 -> 5 (tools/cluster add, one at a time): each newcomer is
     acclimated, the buckets grow to three replicas and move, and each
     newcomer leads its share (at least one bucket) once settled; the loads
     go on, each taking the newcomer among its addresses;
  3. a rolling restart: every participant in turn gets SIGTERM, leaves (its
     log says so) and exits, is started again on its data dir (it arrives
     anew: it left), and the cluster settles with five before the next;
  4. the loads stop: no window failed for good; every replica of every
     bucket holds the same entries at positions 0, 1, 2, ...; each
     acknowledged identifier appears exactly once, and nothing appears that
     no client sent.

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import os

from harness import Load, check, gone, own_cluster, poll, settled, stop_and_check, view

DEPARTURE_MS = 1500


def leads(address, http):
    """How many buckets the member at client address `http` leads."""
    v = view(address)
    me = next((m["id"] for m in (v or {"members": []})["members"] if m["http"] == http), None)
    return sum(1 for b in v["buckets"] if b["leader"] == me) if me is not None else 0


def main():
    with own_cluster("coworker-life-test-") as (directory, cluster):
        cluster.run("start", "1", "--base-port", str(cluster.base_port),
                    "--departure-timeout-ms", str(DEPARTURE_MS))
        everyone = [cluster.http(1)]
        loads = [Load(f"load{k}", everyone) for k in range(3)]
        for load in loads:
            load.start()
        check(poll(lambda: all(load.acked_count() >= 30 for load in loads), 30),
              "the loads append")
        print("ok 1: one participant; three loads append")

        for i in range(2, 6):
            before = [load.acked_count() for load in loads]
            cluster.run("add", "1")
            everyone.append(cluster.http(i))
            for load in loads:
                load.addresses.append(cluster.http(i))
            check(poll(lambda: settled(everyone[0], everyone), 30), f"{i} settled")
            check(leads(everyone[0], cluster.http(i)) > 0, f"participant {i} leads some buckets")
            check(poll(lambda: all(load.acked_count() > b for load, b in zip(loads, before)), 30)
                  and not any(load.failure for load in loads), f"the loads went on with {i}")
            print(f"ok 2.{i}: participant {i} arrived under load, leads "
                  f"{leads(everyone[0], cluster.http(i))} buckets; every bucket at its target")

        for i in range(1, 6):
            pid = cluster.pids()[i - 1]
            others = [a for a in everyone if a != cluster.http(i)]
            cluster.run("term", str(i))
            check(poll(lambda: gone(pid), 30), f"participant {i} exits after SIGTERM")
            with open(os.path.join(directory, "cluster", f"p{i}.log")) as f:
                log = f.read()
            check("left the cluster" in log.split("SIGTERM: leaving the cluster")[-1],
                  f"participant {i}'s log says it left")
            check(poll(lambda: settled(others[0], others), 30), f"four settled without {i}")
            before = [load.acked_count() for load in loads]
            cluster.run("restart", str(i))
            check(poll(lambda: settled(others[0], everyone), 30), f"five settled with {i} back")
            check(poll(lambda: all(load.acked_count() > b for load, b in zip(loads, before)), 30)
                  and not any(load.failure for load in loads), f"the loads went on after {i}")
            print(f"ok 3.{i}: participant {i} left on SIGTERM, restarted on its data dir, "
                  "arrived anew; five settled")

        print(f"ok 4: {stop_and_check(loads, everyone[0])}")


if __name__ == "__main__":
    main()
