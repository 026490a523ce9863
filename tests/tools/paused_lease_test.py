#!/usr/bin/env python3
"""A participant paused past its departure serves no lease read when it wakes,
even before it hears of its departure (DESIGN §3 read leases; issue 16
point 3: "a SIGSTOPped leader that wakes after being departed ... serves no
lease read").

A read lease runs for a number of ticks of the member's own clock. Ticks
counted by timer firings stop while the process is stopped, so a leader woken
after its departure used to hold its lease for most of a lease more, and
answered leader reads from its stale copy until news of its departure
reached it. Ticks now follow the monotonic clock (tools/coworker/core.h,
Core::catch_up), and a lease read first counts the time that passed.

3 participants on distinct loopback addresses, departure timeout 1000 ms.
Bucket B is led by a participant V that does not lead the membership. V is
SIGSTOPped; once the others departed it, entries are appended to B at its
new leader; then V is cut off from both others (nftables, so no news can
reach it) and SIGCONTed, and a leader read of B is sent to V at once. It
must not answer 200 without the entries appended after the pause. Needs
root and nft; exits 77 (skipped) without them.

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import os
import signal
import sys

from harness import (SKIPPED, check, identifier_for, leader_apart, nft_unusable, own_cluster,
                     poll, post_message, request, view)

DEPARTURE_MS = 1000


def main():
    why = nft_unusable()
    if why is not None:
        print(f"skipped: cutting links needs nftables ({why})")
        sys.exit(SKIPPED)
    with own_cluster("coworker-paused-lease-test-", distinct_ips=True) as (_, cluster):
        cluster.run("start", "3", "--distinct-ips", "--base-port", str(cluster.base_port),
                    "--departure-timeout-ms", str(DEPARTURE_MS))
        v, boss, sleeper, bucket, index_of = leader_apart(cluster, 3)
        via = cluster.http(index_of[boss])
        at_sleeper = cluster.http(index_of[sleeper])
        name = identifier_for(bucket, v["buckets_total"], "lease")
        for k in range(5):
            code, body = post_message(via, name, f"before-{k}")
            check(code == 200, f"append {k} to bucket {bucket} before the pause: {code} {body}")
        code, body = request("GET", at_sleeper, f"/v1/buckets/{bucket}/entries?from=0&limit=1000")
        check(code == 200 and len(body["entries"]) == 5,
              f"participant {sleeper} serves a leader read of bucket {bucket}: {code} {body}")

        pid = cluster.pids()[index_of[sleeper] - 1]
        os.kill(pid, signal.SIGSTOP)
        woken = False
        try:
            check(poll(lambda: not any(m["id"] == sleeper for m in (view(via) or {"members": [
                {"id": sleeper}]})["members"]), 30), f"the paused {sleeper} is departed")
            after = 0

            def appended():
                nonlocal after
                code, _ = post_message(via, name, f"after-{after}")
                after += code == 200
                return after >= 3
            check(poll(appended, 30), f"bucket {bucket} takes appends at its next leader")
            others = [i for i in range(1, 4) if i != index_of[sleeper]]
            for i in others:
                cluster.run("partition", str(index_of[sleeper]), str(i))
            os.kill(pid, signal.SIGCONT)
            woken = True
            code, body = request("GET", at_sleeper, f"/v1/buckets/{bucket}/entries?from=0&limit=1000",
                                 timeout=10)
            served = len(body["entries"]) if code == 200 else None
            check(code != 200 or served >= 5 + after,
                  f"the woken, departed participant {sleeper} served a stale lease read: "
                  f"{served} entries of {5 + after} acknowledged")
            print(f"ok: woken after its departure, cut off, participant {sleeper} answered a "
                  f"leader read of bucket {bucket} {code}, not a stale 200")
        finally:
            if not woken:
                os.kill(pid, signal.SIGCONT)
            cluster.run("heal")
        cluster.run("stop")


if __name__ == "__main__":
    main()
