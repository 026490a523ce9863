#!/usr/bin/env python3
"""A hop to a leader that stops answering ends when that leader departs, not at
the hop deadline (issue 16 point 3: a request that had hopped to a leader
just before it died waited out the 2 s deadline, one failover in eight took
4.1 departure timeouts instead of 2).

3 participants, departure timeout 1000 ms. A bucket B is led by a
participant V that does not lead the membership; appends to B go through the
membership leader M, which hops them to V. V is SIGSTOPped, then one append
to B is sent to M: M hops it to V, which never answers. M departs V after the
timeout; the append is then answered 503 (its outcome is unknown: V may have
logged it), and M's coworker_hops_abandoned_total counts it. The elapsed time
is printed, not asserted: the counter says which way the call ended.

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import os
import signal
import time

from harness import (check, identifier_for, leader_apart, metric, own_cluster, poll, post_message,
                     view)

DEPARTURE_MS = 1000


def counter(address, name):
    value = metric(address, name)
    check(value is not None, f"{name} in {address}/metrics")
    return int(value)


def main():
    with own_cluster("coworker-hop-abandon-test-") as (_, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port),
                    "--departure-timeout-ms", str(DEPARTURE_MS))
        v, boss, victim, bucket, index_of = leader_apart(cluster, 3)
        via = cluster.http(index_of[boss])
        name = identifier_for(bucket, v["buckets_total"], "abandoned")
        code, body = post_message(via, name, "before")
        check(code == 200, f"an append to bucket {bucket} through participant {boss}: {code} {body}")
        before = counter(via, "coworker_hops_abandoned_total")
        hops = counter(via, "coworker_hops_sent_total")
        check(hops >= 1, f"participant {boss} hopped the append to participant {victim}")

        pid = cluster.pids()[index_of[victim] - 1]
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.time()
            code, body = post_message(via, name, "to-a-stopped-leader", timeout=15)
            took = time.time() - started
            check(code == 503, f"the append hopped to stopped participant {victim}: {code} {body}")
            after = counter(via, "coworker_hops_abandoned_total")
            check(after == before + 1,
                  f"participant {boss} abandoned the hop when {victim} departed "
                  f"(coworker_hops_abandoned_total {before} -> {after})")
            state = next((m["state"] for m in view(via)["members"] if m["id"] == victim), "gone")
            check(state == "gone", f"participant {victim} is departed: {state}")
            print(f"ok: answered 503 after {took:.2f} s, when participant {victim} departed "
                  f"(the hop deadline is 2 s)")
            check(poll(lambda: post_message(via, name, "after")[0] == 200, 30),
                  f"bucket {bucket} takes appends again")
            print(f"ok: bucket {bucket} takes appends again")
        finally:
            os.kill(pid, signal.SIGCONT)
        cluster.run("stop")


if __name__ == "__main__":
    main()
