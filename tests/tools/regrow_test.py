#!/usr/bin/env python3
"""Buckets with entries grow back to a participant that was departed and
arrives anew (issue 11: growth with acclimation), on 3 real processes
(label `process`).

  1. A 3-participant cluster (departure timeout 1.5 s); 300 messages appended
     with distinct identifiers, spread over the buckets.
  2. Participant 3 is SIGKILLed; once the others depart it, 100 more messages
     are appended (its buckets serve on the two replicas left).
  3. Participant 3 is started again on its data dir: it arrives anew under a
     new id. Every bucket grows back to three replicas, the new id among
     them, each at its target.
  4. Every replica of every bucket (`local=1` reads) holds the same entries,
     and the 400 identifiers appear once each across the buckets: nothing
     lost, nothing doubled, the newcomer's copy equal to the leader's.
  5. Its old copies were offered and verified (phaser.h step 9f), not
     streamed again: participant 3 dropped none
     (coworker_copies_reset_total 0), and the leaders streamed it fewer
     entries (coworker_catchup_entries_sent_total, counted from its
     restart) than the 300 its copies already held, at least the 100 late
     ones.
  6. A fourth participant arrives with nothing: the buckets whose targets
     take it grow to it, and the entries streamed to it are those buckets'
     entries, within 1.1x (issue 11 point 9: no full-log resend per step,
     no chunk sent twice by a slow ack).

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""

from harness import check, entries, metric, own_cluster, poll, request, view


class Client:
    """One connection, windows of 25 messages, each resubmitted with the same
    series until answered (exactly once: DESIGN §3)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.series = 1
        code, body = 0, None

        def connect():
            nonlocal code, body
            code, body = request("POST", cluster.http(1), "/v1/connect")
            return code == 201
        check(poll(connect, 20), f"POST /v1/connect: {code}")
        self.connection = body["connection"]

    def append(self, names):
        for start in range(0, len(names), 25):
            batch = []
            for n in names[start:start + 25]:
                batch.append({"identifier": n, "body": f"body-{n}", "series": self.series})
                self.series += 1
            headers = {"Coworker-Connection": self.connection}
            ok = poll(lambda: request("POST", self.cluster.http(1), "/v1/append",
                                      {"messages": batch}, headers=headers)[0] == 200, 30)
            check(ok, f"append of {len(batch)} messages from {names[start]}")


def replica(cluster, i, bucket):
    """Bucket `bucket` as participant i's own replica holds it."""
    out = entries(cluster.http(i), bucket, fields=("position", "identifier", "body"))
    check(out is not None, f"participant {i} reads bucket {bucket} locally")
    return out


def main():
    with own_cluster("coworker-regrow-test-") as (_, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port),
                    "--departure-timeout-ms", "1500")
        client = Client(cluster)
        first = [f"early-{i}" for i in range(300)]
        client.append(first)
        before = view(cluster.http(1))
        old_id = next(m["id"] for m in before["members"] if m["http"] == cluster.http(3))
        print(f"ok 1: 300 appended; participant 3 is id {old_id}")

        cluster.run("kill", "3")
        departed = poll(lambda: (v := view(cluster.http(1))) is not None and
                        all(m["id"] != old_id for m in v["members"]), 30)
        check(departed, f"id {old_id} departed")
        later = [f"late-{i}" for i in range(100)]
        client.append(later)
        print("ok 2: participant 3 killed and departed; 100 more appended on two replicas")

        streamed_before = sum(metric(cluster.http(i), "coworker_catchup_entries_sent_total")
                              for i in (1, 2))
        cluster.run("restart", "3")

        def regrown():
            v = view(cluster.http(1))
            if v is None:
                return False
            ids = [m["id"] for m in v["members"] if m["http"] == cluster.http(3)]
            if not ids or ids[0] == old_id:
                return False
            return all(len(b["replicas"]) == 3 and b["replicas"] == b["target"] and
                       ids[0] in b["replicas"] for b in v["buckets"])
        check(poll(regrown, 60), "every bucket back at three replicas, the new id among them")
        new_id = next(m["id"] for m in view(cluster.http(1))["members"]
                      if m["http"] == cluster.http(3))
        print(f"ok 3: participant 3 arrived anew as {new_id}; every bucket at its target of 3")

        seen = []
        v = view(cluster.http(1))
        for b in v["buckets"]:
            copies = [replica(cluster, i, b["bucket"]) for i in (1, 2, 3)]
            check(copies[0] == copies[1] == copies[2],
                  f"bucket {b['bucket']}: replicas differ: {[len(c) for c in copies]}")
            check([p for p, _, _ in copies[0]] == list(range(len(copies[0]))),
                  f"bucket {b['bucket']}: positions contiguous from 0")
            seen += [name for _, name, _ in copies[0]]
        check(sorted(seen) == sorted(first + later),
              f"each of the 400 identifiers once: {len(seen)} entries, {len(set(seen))} distinct")
        print(f"ok 4: {len(v['buckets'])} buckets, three equal replicas each, 400 entries once")

        resets = metric(cluster.http(3), "coworker_copies_reset_total")
        streamed = int(sum(metric(cluster.http(i), "coworker_catchup_entries_sent_total")
                           for i in (1, 2)) - streamed_before)
        check(resets == 0, f"participant 3 dropped {resets} of its offered copies")
        check(100 <= streamed < 300, f"{streamed} entries streamed to participant 3")
        print(f"ok 5: its copies verified, none dropped; {streamed} entries streamed to it "
              f"(the 100 late ones, and one write per bucket to compare)")

        before = sum(metric(cluster.http(i), "coworker_catchup_entries_sent_total")
                     for i in (1, 2, 3))
        cluster.run("add", "1")

        def grown():
            v = view(cluster.http(1))
            ids = [m["id"] for m in (v or {"members": []})["members"] if m["http"] == cluster.http(4)]
            return bool(ids) and all(b["replicas"] == b["target"] for b in v["buckets"]) and ids[0]
        fourth = poll(grown, 60) and grown()
        check(bool(fourth), "participant 4 arrived and every bucket is at its target")
        taken = [b["bucket"] for b in view(cluster.http(1))["buckets"] if fourth in b["replicas"]]
        check(taken, "some buckets grew to participant 4")
        live = sum(len(entries(cluster.http(1), b, local=False)) for b in taken)
        sent = int(sum(metric(cluster.http(i), "coworker_catchup_entries_sent_total")
                       for i in (1, 2, 3, 4)) - before)
        check(live <= sent <= 1.1 * live,
              f"{sent} entries streamed to participant 4 for {live} in its {len(taken)} buckets")
        print(f"ok 6: participant 4 arrived empty; {len(taken)} buckets grew to it, "
              f"{sent} entries streamed for their {live} ({sent / live:.2f}x)")


if __name__ == "__main__":
    main()
