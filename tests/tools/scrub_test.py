#!/usr/bin/env python3
"""A start from the newest round, and the scrub of what it did not read
(bucket/recovery.h steps 4-5, bucket/scrub.h; label `process`).

3 participants, 1 core each, --segment-bytes 4MiB, no retention, three loads
appending windows of 1.5 KB messages from step 1 to the end:
  1. once participant 2's log has sealed segments with summaries and a
     round named, it is SIGKILLed; a payload byte of a register record in
     its oldest segment is flipped (damage at rest); it starts again: the
     start takes segments from their summaries, so it does not read the
     damaged one, and serves;
  2. its scrub then finds the damage (CORRUPTION in that segment) and
     deletes the segment's summary;
  3. SIGKILLed and started again, it reads that segment, reports the
     damaged bucket, keeps its id and shrinks itself out of that bucket,
     which grows back to it (Repair at boot, per bucket); the three settle;
  4. the loads stop; DESIGN §7 on every replica.

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import glob
import os
import re

from harness import (Load, check, flip_register_byte, own_cluster, poll, settled,
                     stop_and_check)


def log_of(directory, index):
    with open(os.path.join(directory, "cluster", f"p{index}.log")) as f:
        return f.read()


def main():
    with own_cluster("coworker-scrub-test-") as (directory, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port), "--cores", "1",
                    "--", "--segment-bytes", "4MiB")
        everyone = [cluster.http(i) for i in range(1, 4)]
        check(poll(lambda: settled(everyone[0], everyone), 60), "three members, settled")
        loads = [Load(f"load{k}", everyone[k:] + everyone[:k], body_bytes=1500)
                 for k in range(3)]
        for load in loads:
            load.start()

        # 1. Summaries and a named round on participant 2, then damage at rest.
        core = os.path.join(directory, "cluster", "p2", "log", "core-000")
        check(poll(lambda: len(glob.glob(os.path.join(core, "*.summary"))) >= 3 and
                   os.path.exists(os.path.join(core, "round")), 120),
              "participant 2's log has 3 summarized segments and a named round")
        cluster.run("kill", "2")
        oldest = sorted(glob.glob(os.path.join(core, "*.summary")))[0]
        segment = oldest[:-len(".summary")] + ".seg"
        path, offset, bucket = flip_register_byte(None, segment)
        cluster.run("restart", "2")
        taken = re.findall(r"took (\d+) segments from their summaries", log_of(directory, 2))
        check(taken and int(taken[-1]) >= 2,
              f"the start took segments from their summaries: {taken}")
        check("recovery found" not in log_of(directory, 2),
              "the start did not read the damaged segment (no repair yet)")
        print(f"ok 1: bucket {bucket}'s register damaged at rest ({path} offset {offset}); "
              f"the start took {taken[-1]} segments from their summaries and serves")

        # 2. The scrub finds it.
        name = os.path.basename(segment)[:-len(".seg")]
        check(poll(lambda: re.search(rf"scrub: CORRUPTION \(bad payload\) in segment "
                                     rf"{int(name, 16)} at offset {offset}",
                                     log_of(directory, 2)), 60),
              "the scrub reports the damaged record")
        check(not os.path.exists(oldest), "the damaged segment's summary is deleted")
        print(f"ok 2: the scrub reported segment {int(name, 16)} offset {offset} and deleted "
              f"its summary")

        # 3. The next start reads it and repairs.
        cluster.run("kill", "2")
        cluster.run("restart", "2")
        log = log_of(directory, 2)
        check(f"recovery found buckets {bucket} damaged" in log and "keeps its id" in log,
              f"participant 2 reports the damage to bucket {bucket} and repairs it")
        check(poll(lambda: settled(everyone[0], everyone), 60), "three settled after the repair")
        print(f"ok 3: the next start read the segment, found bucket {bucket} damaged, repaired")

        # 4. DESIGN §7.
        print(f"ok 4: {stop_and_check(loads, everyone[0])}")


if __name__ == "__main__":
    main()
