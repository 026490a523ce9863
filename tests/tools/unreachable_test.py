#!/usr/bin/env python3
"""The unreachable rule on real processes (DESIGN §2, issue 11 point 5): the
last survivor of a bucket's government is never departed; it is marked
unreachable, its sole buckets answer 503 until it returns with its id, and
they then resume without loss.

3 participants with --replicas 1, so every bucket's government is one
participant; departure timeout 1000 ms. Appends go to a bucket B led by a
participant V that does not lead the membership, through another
participant. V is SIGKILLed: the membership marks it unreachable (it stays
a member, its state `unreachable` in /v1/cluster). Appends and leader reads
of B through the others then answer 503 at once, naming V as marked (not
after the 2 s hop deadline, with the generic words), while a bucket led by
another participant keeps taking appends. V is restarted on its data dir:
it keeps its id, returns, and B takes appends again after every entry
acknowledged before the kill, each once, at the positions they were given.

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import os
import signal
import time

from harness import (check, entries, gone, identifier_for, own_cluster, poll, post_message,
                     request, view)

DEPARTURE_MS = 1000


def state_of(address, member_id):
    v = view(address)
    if v is None:
        return None
    return next((m["state"] for m in v["members"] if m["id"] == member_id), "gone")


def main():
    with own_cluster("coworker-unreachable-test-") as (_, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port),
                    "--departure-timeout-ms", str(DEPARTURE_MS), "--", "--replicas", "1")
        v = view(cluster.http(1))
        check(v is not None, "the cluster answers /v1/cluster")
        check(all(len(b["replicas"]) == 1 for b in v["buckets"]), "every government is one")
        boss = v["membership"]["leader"]
        ids = {m["http"]: m["id"] for m in v["members"]}
        index_of = {ids[cluster.http(i)]: i for i in range(1, 4)}
        buckets = v["buckets_total"]
        victim = next(m["id"] for m in v["members"] if m["id"] != boss)
        via = index_of[boss]  # the membership leader: it decides the mark
        bucket = next(b["bucket"] for b in v["buckets"] if b["leader"] == victim)
        other = next(b["bucket"] for b in v["buckets"] if b["leader"] not in (victim,))
        name = identifier_for(bucket, buckets, "marked")
        elsewhere = identifier_for(other, buckets, "elsewhere")

        acked = {}
        for k in range(20):
            status, body = post_message(cluster.http(via), name, f"before-{k}", 5)
            check(status == 200, f"append {k} to bucket {bucket} before the kill: {status} {body}")
            acked[body["position"]] = f"before-{k}"
        print(f"ok: 20 appends to bucket {bucket}, led by participant {victim}, through "
              f"participant {ids[cluster.http(via)]}")

        pid = cluster.pids()[index_of[victim] - 1]
        os.kill(pid, signal.SIGKILL)
        check(poll(lambda: gone(pid), 5), f"participant {victim} (pid {pid}) ended")
        check(poll(lambda: state_of(cluster.http(via), victim) == "unreachable", 30),
              f"participant {victim} is marked unreachable, not departed")
        print(f"ok: participant {victim} is a member marked unreachable")

        started = time.time()
        status, body = post_message(cluster.http(via), name, "while-marked", 10)
        took = time.time() - started
        check(status == 503, f"an append to bucket {bucket} while marked: {status} {body}")
        words = (body or {}).get("error", "")
        check(f"participant {victim}" in words and "unreachable" in words,
              f"the 503 names participant {victim} as marked: {body}")
        code, read = request("GET", cluster.http(via), f"/v1/buckets/{bucket}/entries?from=0")
        check(code == 503 and "unreachable" in (read or {}).get("error", ""),
              f"a leader read of bucket {bucket} while marked: {code} {read}")
        status, body = post_message(cluster.http(via), elsewhere, "elsewhere", 5)
        check(status == 200, f"bucket {other}, led elsewhere, takes appends: {status} {body}")
        print(f"ok: bucket {bucket} answers 503 naming the marked participant (in {took:.2f} s; "
              f"the hop deadline is 2 s); bucket {other} takes appends")

        cluster.run("restart", str(index_of[victim]))
        check(poll(lambda: state_of(cluster.http(via), victim) == "serving", 30),
              f"participant {victim} returns with its id")
        status, body, attempt = 0, None, 0

        def appended():
            # Each attempt its own body: an attempt answered 503 may still be
            # logged (no connection: at least once), so a retry is not the same
            # message.
            nonlocal status, body, attempt
            attempt += 1
            status, body = post_message(cluster.http(via), name, f"after-return-{attempt}", 5)
            return status == 200
        check(poll(appended, 30), f"bucket {bucket} takes appends after the return: {status} {body}")
        acked[body["position"]] = f"after-return-{attempt}"
        got = None

        def read():
            nonlocal got
            got = entries(cluster.http(via), bucket, local=False, fields=("position", "body"))
            return got is not None
        check(poll(read, 10), f"bucket {bucket} reads after the return")
        logged = dict(got)
        check(len(logged) == len(got), "positions are distinct")
        for position, message in acked.items():
            check(logged.get(position) == message,
                  f"position {position} holds {logged.get(position)!r}, {message!r} was answered")
        bodies = [message for _, message in got]
        check(len(bodies) == len(set(bodies)), f"no message logged twice: {bodies}")
        check("while-marked" not in bodies, "the append answered 503 while marked is not logged")
        print(f"ok: participant {victim} returned; bucket {bucket} holds every acknowledged "
              f"entry once ({len(acked)}) and took appends again")


if __name__ == "__main__":
    main()
