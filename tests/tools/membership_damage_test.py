#!/usr/bin/env python3
"""Damaged membership state on real processes (DESIGN §4 "a participant
whose core-0 log is corrupt after its last membership checkpoint never votes
with that state: it arrives anew", issue 16 point 5).

3 participants, departure timeout 10 s (a plain restart keeps its id), one
load of windows resubmitted until 200; a fourth arrives (membership records
after the checkpoints of the start). Participant 3 is SIGKILLed; one
payload byte of a membership record (Paxos acceptor state) after its last
membership checkpoint, in an acknowledged batch, is flipped; it is started
again on its data dir. It must report the damaged membership state, give up
its id and arrive anew under another, with its old id departed; the four
settle; and at the end every acknowledged message is once on equal replicas
of every bucket (DESIGN §7).

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import os

from harness import (Load, check, flip_membership_byte, own_cluster, poll, settled,
                     stop_and_check, view)

DEPARTURE_MS = 10000


def main():
    with own_cluster("coworker-membership-damage-test-") as (directory, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port),
                    "--departure-timeout-ms", str(DEPARTURE_MS))
        everyone = [cluster.http(i) for i in range(1, 4)]
        check(poll(lambda: settled(everyone[0], everyone), 60), "three members, settled")
        load = Load("load", everyone[:2], window=10)
        load.start()
        check(poll(lambda: load.acked_count() >= 500, 30), "the load appends")
        # Membership records after participant 3's last membership
        # checkpoint: a quiet membership writes none, an arrival does.
        cluster.run("add")
        everyone.append(cluster.http(4))
        acked = load.acked_count()
        check(poll(lambda: load.acked_count() >= acked + 300, 30), "the load appends with four")
        v = view(everyone[0])
        old_id = next(m["id"] for m in v["members"] if m["http"] == everyone[2])

        cluster.run("kill", "3")
        path, offset = flip_membership_byte(os.path.join(directory, "cluster", "p3"))
        cluster.run("restart", "3")
        with open(os.path.join(directory, "cluster", "p3.log")) as f:
            log = f.read()
        check("recovery found" in log and "the membership state" in log and "gives up its id" in log,
              "participant 3 reports its membership state damaged and gives up its id")
        check(poll(lambda: settled(everyone[0], everyone), 60), "four settled after the repair")
        v = view(everyone[0])
        new_id = next(m["id"] for m in v["members"] if m["http"] == everyone[2])
        check(new_id != old_id, f"it arrived anew: id {old_id} then {new_id}")
        check(all(m["id"] != old_id for m in v["members"]), f"id {old_id} is departed")
        print(f"ok 1: a membership record damaged at rest ({path} offset {offset}): id {old_id} "
              f"given up, arrived anew as {new_id}, four settled")
        check(poll(lambda: load.acked_count() >= 1000, 30), "the load appends after the repair")
        print(f"ok 2: {stop_and_check([load], everyone[0])}")


if __name__ == "__main__":
    main()
