#!/usr/bin/env python3
"""Retention under load on 3 real processes (issue 12 points 3, 4 and 6;
label `process`): checkpoint rounds, whole segments deleted from the front
of each core's log, recovery from a retained log, DESIGN §7 on what is kept.

Each participant runs 2 cores with --segment-bytes 4MiB and
--retention-bytes 24MiB (12 MiB of log per core). Three loads append windows
of 10 messages with 1.5 KB bodies, each window resubmitted with the same
series until answered 200, from step 1 to the end:
  1. every core of every participant retires segments (its `retained`
     marker appears) and keeps at most its share plus the segment being
     filled, one prepared ahead and one for a round in flight;
  2. a read below a bucket's retained start answers 410 `retained` with the
     start, and a read from the start answers 200;
  3. one participant SIGKILLed and started again at once on its data dir: it
     recovers from its retained log (a checkpoint round heads its first
     segment) and serves under its id;
  4. the whole cluster SIGKILLed and started again: every participant
     recovers from its retained log, the loads go on, and retention goes on
     (each core's marker moves again);
  5. a fourth participant arrives: where a leader's log no longer holds
     the writes it lacks, it is acclimated from a snapshot of the committed
     state (phaser.h step 9b), and the four settle;
  6. the loads stop; for every bucket, every replica's copy from its own
     retained start equals the leader's on the positions both hold, and
     every acknowledged message at or above the leader's retained start is
     there, at the position its 200 named, exactly once.

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import glob
import os
import re
import time

from harness import (Load, check, entries, own_cluster, poll, retained_start, settled,
                     stop_and_check_retained, view)

SEGMENT_BYTES = 4 << 20
RETENTION_BYTES = 24 << 20
CORES = 2


def summaries_taken(directory):
    """Segments the participants' starts took from their summaries, from their logs."""
    taken = 0
    for path in glob.glob(os.path.join(directory, "cluster", "p*.log")):
        with open(path) as f:
            for found in re.finditer(r"took (\d+) segments from their summaries", f.read()):
                taken += int(found.group(1))
    return taken


def markers(directory):
    """{core dir: first segment kept} of every participant's every core (the
    marker: the index in hex, its checksum)."""
    out = {}
    for path in glob.glob(os.path.join(directory, "cluster", "p*", "log", "core-*", "retained")):
        with open(path) as f:
            out[os.path.dirname(path)] = int(f.read().split()[0], 16)
    return out


def segments(core_dir):
    return len(glob.glob(os.path.join(core_dir, "*.seg")))


def main():
    with own_cluster("coworker-retention-test-") as (directory, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port), "--cores", str(CORES),
                    "--", "--segment-bytes", "4MiB", "--retention-bytes", "24MiB")
        everyone = [cluster.http(i) for i in range(1, 4)]
        check(poll(lambda: settled(everyone[0], everyone), 60), "three members, settled")
        loads = [Load(f"load{k}", everyone[k:] + everyone[:k], body_bytes=1500)
                 for k in range(3)]
        for load in loads:
            load.start()

        # 1. Every core retires segments.
        check(poll(lambda: len(markers(directory)) == 3 * CORES, 120),
              f"every core of every participant retired segments: {markers(directory)}")
        share = RETENTION_BYTES // CORES // SEGMENT_BYTES
        most = max(segments(d) for d in markers(directory))
        check(most <= share + 3, f"at most {share + 3} segments per core, found {most}")
        print(f"ok 1: every core retired segments ({sum(l.acked_count() for l in loads)} "
              f"acknowledged so far); at most {most} segments of 4 MiB per core")

        # 2. 410 below the start, 200 from it.
        v = view(everyone[0])
        moved = None
        for b in v["buckets"]:
            leader = next(m["http"] for m in v["members"] if m["id"] == b["leader"])
            start = retained_start(leader, b["bucket"], local=False)
            if start:
                moved = (b["bucket"], leader, start)
                break
        check(moved is not None, "a bucket whose retained start moved")
        bucket, leader, start = moved
        page = entries(leader, bucket, local=False, start=start)
        check(page is not None and page and page[0][0] == start,
              f"bucket {bucket}: a read from its retained start {start} answers 200")
        print(f"ok 2: bucket {bucket}: from=0 answers 410 retained with start {start}; "
              f"from={start} answers 200 ({len(page)} entries)")

        # 3. One participant killed and started again on its retained log.
        before = markers(directory)
        cluster.run("kill", "2")
        cluster.run("restart", "2")
        check(poll(lambda: settled(everyone[0], everyone), 60), "participant 2 back, settled")
        counts = [load.acked_count() for load in loads]
        check(poll(lambda: all(l.acked_count() > c for l, c in zip(loads, counts)), 30),
              "the loads append")
        print("ok 3: participant 2 SIGKILLed and restarted on its retained log: serving")

        # 4. The whole cluster.
        cluster.run("kill", "1", "2", "3")
        cluster.run("restart", "1", "2", "3")
        check(poll(lambda: settled(everyone[0], everyone), 60), "the whole cluster back, settled")
        check(poll(lambda: all(markers(directory).get(d, 0) > first
                               for d, first in before.items()), 120),
              "retention goes on after the restarts: every marker moved")
        taken = summaries_taken(directory)
        check(taken > 0, "the restarts took segments from their summaries (recovery from the "
              "newest round, bucket/recovery.h steps 4-6)")
        print(f"ok 4: the whole cluster SIGKILLed and restarted on retained logs; retention "
              f"goes on; the restarts took {taken} segments from their summaries")

        # 5. An arrival: acclimated from snapshots where the writes are retired.
        cluster.run("add", "1")
        everyone.append(cluster.http(4))
        check(poll(lambda: settled(everyone[0], everyone), 60), "four members, settled")
        v = view(everyone[0])
        led = sum(1 for b in v["buckets"] if b["leader"] == next(
            m["id"] for m in v["members"] if m["http"] == everyone[3]))
        replicated = sum(1 for b in v["buckets"] if next(
            m["id"] for m in v["members"] if m["http"] == everyone[3]) in b["replicas"])
        print(f"ok 5: a fourth participant arrived under retention: it replicates {replicated} "
              f"buckets and leads {led}, grown from snapshots of retired prefixes")

        # 6. What is kept.
        summary = stop_and_check_retained(loads, everyone[0])
        print(f"ok 6: {summary}")


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"retention test passed in {time.time() - started:.1f} s")
