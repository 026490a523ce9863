#!/usr/bin/env python3
"""Connection expiry and --max-connections on 3 real processes (issue 13
points 1 and 2; label `process`). The cluster runs with
--connection-expiry 1500ms and --max-connections 3:
  1. participant 1 issues three connections, then answers the fourth
     `429 too_many_connections`; participant 2 still issues its own;
  2. connection A appends a message; its resubmission is a duplicate;
  3. connection B keeps appending to the same bucket (each append answered
     200) while A stays silent: once a write stamped 1.5 s after A's last
     message commits, A's resubmission is answered `409 connection_expired`,
     and the message is in the bucket's log exactly once (read at the
     leader and at every replica);
  4. a fresh connection appends to that bucket (new, 200);
  5. the counters: coworker_connections_expired_total moved;
  6. 1.5 s after the first three were issued, participant 1 issues again.

Run by ctest with COWORKER_BIN set; needs build/bin/coworker."""
import urllib.error
import urllib.request

from harness import check, entries, own_cluster, poll, request, settled, view

EXPIRY_MS = 1500
MAX_CONNECTIONS = 3


def post(address, path, body=b"", headers=None):
    """(status, parsed JSON) of a POST with a raw body; status 0 when nothing answered."""
    import json
    req = urllib.request.Request(f"http://{address}{path}", data=body, method="POST",
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (urllib.error.URLError, OSError):
        return 0, None


def append(address, identifier, body, connection, series):
    return post(address, f"/v1/log/{identifier}", body,
                {"Coworker-Connection": connection, "Coworker-Series": str(series)})


def counter(address, name):
    req = urllib.request.Request(f"http://{address}/metrics")
    with urllib.request.urlopen(req, timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def main():
    with own_cluster("coworker-expiry-test-") as (directory, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port), "--",
                    "--connection-expiry", f"{EXPIRY_MS}ms",
                    "--max-connections", str(MAX_CONNECTIONS))
        everyone = [cluster.http(i) for i in range(1, 4)]
        check(poll(lambda: settled(everyone[0], everyone), 60), "three members, settled")

        # 1. The limit, per issuer.
        issued = []
        for k in range(MAX_CONNECTIONS):
            status, answer = post(everyone[0], "/v1/connect")
            check(status == 201, f"connect {k + 1} at participant 1: {status} {answer}")
            issued.append(answer["connection"])
        status, answer = post(everyone[0], "/v1/connect")
        check(status == 429 and answer["code"] == "too_many_connections",
              f"connect {MAX_CONNECTIONS + 1} at participant 1: 429: {status} {answer}")
        status, answer = post(everyone[1], "/v1/connect")
        check(status == 201, f"participant 2 issues its own: {status} {answer}")
        a, b = issued[0], issued[1]

        # 2. A appends; its resubmission is a duplicate.
        status, first = append(everyone[0], "x", b"a's message", a, 1)
        check(status == 200 and first["duplicate"] is False, f"A appends: {status} {first}")
        bucket, position = first["bucket"], first["position"]
        status, again = append(everyone[1], "x", b"a's message", a, 1)
        check(status == 200 and again["duplicate"] is True and again["position"] == position,
              f"A resubmits: a duplicate at {position}: {status} {again}")

        # 3. B keeps the bucket written; A falls silent until it expires.
        state = {"series": 0, "answer": None}

        def a_expired():
            state["series"] += 1
            status, answer = append(everyone[2], "x", f"b {state['series']}".encode(), b,
                                    state["series"])
            check(status == 200, f"B appends series {state['series']}: {status} {answer}")
            state["answer"] = append(everyone[0], "x", b"a's message", a, 1)
            return state["answer"][0] == 409
        check(poll(a_expired, 30), f"A's resubmission answered 409 in time: {state['answer']}")
        status, answer = state["answer"]
        check(answer["code"] == "connection_expired",
              f"A's resubmission: 409 connection_expired: {status} {answer}")
        leader = next(x for x in view(everyone[0])["buckets"] if x["bucket"] == bucket)["leader"]
        members = {m["id"]: m["http"] for m in view(everyone[0])["members"]}
        for where, local in [(members[leader], False)] + [(h, True) for h in everyone]:
            log = entries(where, bucket, local=local, fields=("position", "body"))
            check(log is not None, f"bucket {bucket} read at {where}")
            copies = [p for p, body in log if body == "a's message"]
            check(copies == [position], f"A's message once, at {position}, at {where}: {copies}")

        # 4. A fresh connection is new there.
        status, answer = post(everyone[1], "/v1/connect")
        check(status == 201, f"a fresh connection: {status} {answer}")
        status, answer = append(everyone[0], "x", b"fresh", answer["connection"], 1)
        check(status == 200 and answer["duplicate"] is False, f"fresh appends: {status} {answer}")

        # 5. The counter moved (at the leader, where the dedup rule ran).
        expired = sum(counter(h, "coworker_connections_expired_total") or 0 for h in everyone)
        check(expired >= 1, f"coworker_connections_expired_total: {expired}")

        # 6. The window passes: participant 1 issues again.
        check(poll(lambda: post(everyone[0], "/v1/connect")[0] == 201, 10),
              "participant 1 issues again once its connections are older than the expiry")
        print(f"expiry test: A expired after B's series {state['series']}, "
              f"{int(expired)} expired answers")


if __name__ == "__main__":
    main()
