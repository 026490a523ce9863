#!/usr/bin/env python3
"""A restart whose log replay outlasts the departure timeout (DESIGN §3: a
`recovering` participant, answering heartbeats while it replays, is
departed only after --recovery-timeout-ms; issue 16 point 4), on 3 real
processes (label `process`).

The replay is made slow by COWORKER_TEST_SLOW_REPLAY_MS (tools/coworker/
boot.cc: a fault for tests, as a large log or a slow disk would be).

  1. 3 participants, departure timeout 1 s, recovery timeout 6 s; a load of
     windows through participants 1 and 2, resubmitted until answered 200.
  2. Participant 3 is SIGKILLed and started again on its data dir with a
     replay 3 s longer (three departure timeouts): it heartbeats
     `recovering` meanwhile (tools/coworker/beacon.h), so it is not
     departed: it serves again under the same id, and no participant's log
     has a departure of it.
  3. The load stops. Participant 3 is killed again and started with a
     replay 10 s longer (beyond the recovery timeout), the cluster idle, so
     no bucket leader reports it: the membership leader departs it because
     it said `recovering` for the recovery timeout (consensus/
     membership_node.h rule 3), and once replayed it arrives anew under
     another id; the three settle.
  4. Killed again and started with a replay 60 s longer: while it replays,
     its HTTP port answers (DESIGN §3): /v1/health 503 {"state":
     "recovering"}, an append 503. Then it is sent SIGINT while it
     replays: it stops at once (the replay ends at its next record), not
     when the replay would have ended.
  5. Started again; a second load; both checked: every acknowledged
     identifier is once on equal replicas of every bucket (DESIGN §7).

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import os
import re
import signal
import subprocess
import time

from harness import (CLUSTER, Load, check, gone, own_cluster, poll, post_message, request,
                     settled, stop_and_check, stop_loads, view)

DEPARTURE_MS = 1000
RECOVERY_MS = 6000


def id_of(cluster, i):
    v = view(cluster.http(1))
    return next((m["id"] for m in v["members"] if m["http"] == cluster.http(i)), None) if v else None


def departures_of(directory, member_id):
    """Log lines of participants 1 and 2 that decided a departure of `member_id`."""
    lines = []
    for i in (1, 2):
        with open(os.path.join(directory, "cluster", f"p{i}.log")) as f:
            lines += [line for line in f
                      if re.search(rf"decided: (depart|unreachable) {member_id}\b", line)]
    return lines


def restart_slow(cluster, i, slow_ms):
    """tools/cluster restart I with a replay slow_ms longer; seconds until it served."""
    saved = cluster.env
    cluster.env = dict(saved, COWORKER_TEST_SLOW_REPLAY_MS=str(slow_ms))
    try:
        started = time.time()
        cluster.run("restart", str(i))
        return time.time() - started
    finally:
        cluster.env = saved


def main():
    with own_cluster("coworker-slow-replay-test-") as (directory, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port),
                    "--departure-timeout-ms", str(DEPARTURE_MS),
                    "--", "--recovery-timeout-ms", str(RECOVERY_MS))
        everyone = [cluster.http(i) for i in (1, 2, 3)]
        check(poll(lambda: settled(everyone[0], everyone), 60), "three members, settled")
        load = Load("load", everyone[:2], window=10)
        load.start()
        check(poll(lambda: load.acked_count() >= 300, 30), "the load appends")
        old_id = id_of(cluster, 3)
        check(old_id is not None, "participant 3 is a member")
        print(f"ok 1: three members, participant 3 is id {old_id}")

        cluster.run("kill", "3")
        took = restart_slow(cluster, 3, 3 * DEPARTURE_MS)
        check(poll(lambda: settled(everyone[0], everyone), 30), "three settled after the restart")
        check(id_of(cluster, 3) == old_id,
              f"participant 3 kept its id {old_id} (now {id_of(cluster, 3)})")
        check(not departures_of(directory, old_id),
              f"no departure of {old_id}: {departures_of(directory, old_id)}")
        with open(os.path.join(directory, "cluster", "p3.log")) as f:
            log = f.read()
        check("heartbeats sent recovering" in log, "participant 3 heartbeat while it replayed")
        acked = load.acked_count()
        check(poll(lambda: load.acked_count() >= acked + 300, 30), "the load appends after")
        print(f"ok 2: a replay of {3 * DEPARTURE_MS} ms (3 departure timeouts): served again "
              f"after {took:.1f} s under the same id {old_id}, not departed")

        stop_loads([load])
        cluster.run("kill", "3")
        slow = RECOVERY_MS + 4000
        took = restart_slow(cluster, 3, slow)
        check(poll(lambda: settled(everyone[0], everyone), 60), "three settled after the re-arrival")
        new_id = id_of(cluster, 3)
        check(new_id is not None and new_id != old_id,
              f"participant 3 arrived anew: id {old_id} then {new_id}")
        check(departures_of(directory, old_id), f"id {old_id} was departed")
        print(f"ok 3: a replay of {slow} ms, beyond --recovery-timeout-ms {RECOVERY_MS}: id "
              f"{old_id} departed, arrived anew as {new_id}, served after {took:.1f} s")
        cluster.run("kill", "3")
        log_path = os.path.join(directory, "cluster", "p3.log")
        with open(log_path) as f:
            replays_before = f.read().count("recovering: replaying the log")
        saved = cluster.env
        restart = subprocess.Popen([CLUSTER, "restart", "3"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL,
                                   env=dict(saved, COWORKER_TEST_SLOW_REPLAY_MS="60000"))
        try:
            def replaying():
                with open(log_path) as f:
                    return f.read().count("recovering: replaying the log") > replays_before
            check(poll(replaying, 30), "participant 3 replays its log again")
            health = request("GET", cluster.http(3), "/v1/health", timeout=2)
            check(health == (503, {"state": "recovering"}),
                  f"/v1/health while it replays: 503 recovering, not {health}")
            # Not serving yet, it parks the append for the hop deadline
            # (tools/coworker/hop.h, 2 s) before its 503: the client must
            # wait longer than that (a 2 s timeout lost the race under load
            # in CI, 2026-12-07).
            appended = post_message(cluster.http(3), "during-replay", "x", timeout=6)
            check(appended[0] == 503, f"an append while it replays: 503, not {appended}")
            pid = cluster.pids()[2]
            started = time.time()
            os.kill(pid, signal.SIGINT)
            check(poll(lambda: gone(pid), 10), "participant 3 stops after SIGINT")
            stopped = time.time() - started
        finally:
            restart.kill()
            restart.wait()
        check(stopped < 5, f"SIGINT during the replay stopped it in {stopped:.1f} s, not 60")
        print(f"ok 4: during a replay of 60 s, /v1/health {health[0]} {health[1]}, an append "
              f"{appended[0]} {appended[1].get('code') if appended[1] else None}; SIGINT "
              f"stopped it after {stopped:.2f} s")
        cluster.run("restart", "3")
        check(poll(lambda: settled(everyone[0], everyone), 60), "three settled after the restart")
        second = Load("second", everyone[:2], window=10)
        second.start()
        check(poll(lambda: second.acked_count() >= 300, 30), "a second load appends")
        print(f"ok 5: {stop_and_check([load, second], everyone[0])}")


if __name__ == "__main__":
    main()
