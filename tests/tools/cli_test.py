#!/usr/bin/env python3
"""build/bin/coworker-cli against a 3-participant cluster of real processes (label `process`).

Started through tools/cluster on random ports, stopped in `finally`. Checks:
  1. `connect` prints a connection id (`--json`: the server's JSON);
  2. `append` of 250 stdin lines in windows of 100 to a --server list whose
     FIRST address is dead (failover) exits 0, and reading every bucket back
     finds each line exactly once;
  3. `append` of a binary line (not UTF-8, with a NUL) reads back byte for byte;
  4. `read --identifier` pages (--limit 7) through all 250 in order, --from works;
  5. `status` names every member; `health` exits 0, and 1 with a dead address;
  6. a bad flag exits 2 with one stderr line; `--help` on every command exits 0.
COWORKER_BIN and COWORKER_CLI name the binaries (default build/bin/).
"""
import json
import os
import random
import socket
import subprocess

from harness import ROOT, check, fnv1a64, own_cluster

CLI = os.environ.get("COWORKER_CLI", os.path.join(ROOT, "build", "bin", "coworker-cli"))
COMMANDS = ["connect", "append", "read", "status", "health"]


def dead_address():
    """A loopback port nobody listens on: bound once by us, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def cli(*args, stdin=b"", timeout=60):
    done = subprocess.run([CLI, *args], input=stdin, capture_output=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr.decode(errors="replace")


def cli_ok(*args, stdin=b""):
    code, out, err = cli(*args, stdin=stdin)
    if code != 0:
        print(f"coworker-cli {' '.join(args)} -> {code}\n{err}")
    check(code == 0, f"coworker-cli {' '.join(args[:4])} exits 0")
    return out, err


def read_lines(servers, *args):
    """(position, identifier, body) of every entry `read` prints."""
    out, _ = cli_ok("--server", servers, "read", *args)
    entries = []
    for line in out.split(b"\n")[:-1]:
        position, identifier, body = line.split(b"\t", 2)
        entries.append((int(position), identifier.decode(), body))
    return entries


def check_appends(cluster, servers, buckets):
    lines = [f"cli line {i} ünïcode" for i in range(250)]
    failover = ",".join([dead_address(), cluster.http(1), cluster.http(2), cluster.http(3)])
    stdin = ("\n".join(lines) + "\n").encode()
    _, err = cli_ok("--server", failover, "append", "cli-stream", "--window", "100", stdin=stdin)
    check("messages: 250, windows: 3" in err, f"summary line: {err!r}")
    found = {}
    for bucket in range(buckets):
        for position, identifier, body in read_lines(servers, str(bucket)):
            if identifier == "cli-stream":
                check(bucket == fnv1a64(b"cli-stream") % buckets, "the identifier's bucket")
                found.setdefault(body.decode(), []).append((bucket, position))
    for line in lines:
        check(len(found.get(line, [])) == 1, f"{line!r} read back exactly once: {found.get(line)}")
    check(len(found) == len(lines), "nothing else under cli-stream")
    print("ok 2: 250 lines through a dead first address, each read back exactly once")

    binary = b"\xff\xfe\x00bin\x80ary\r"
    out, _ = cli_ok("--server", servers, "--json", "append", "cli-binary", stdin=binary + b"\n")
    result = json.loads(out.decode().splitlines()[0])
    check(result["duplicate"] is False, "a fresh binary message")
    entries = read_lines(servers, "--identifier", "cli-binary")
    check([e[2] for e in entries] == [binary], f"the binary line read back as it was: {entries}")
    out, _ = cli_ok("--server", servers, "--json", "read", "--identifier", "cli-binary")
    check("body_base64" in json.loads(out.decode().splitlines()[0]), "sent as body_base64")
    print("ok 3: a binary line read back byte for byte")

    paged = read_lines(servers, "--identifier", "cli-stream", "--limit", "7")
    check([e[2].decode() for e in paged] == lines, "paging by 7 returns all 250 in order")
    positions = [e[0] for e in paged]
    check(positions == sorted(positions), "positions increase")
    tail = read_lines(servers, "--identifier", "cli-stream", "--from", str(positions[200]))
    check([e[2].decode() for e in tail] == lines[200:], "--from starts at that position")
    print("ok 4: read --identifier pages with --limit 7, and --from")


def check_usage():
    code, out, err = cli("--bogus-flag", "status")
    check(code == 2 and len(err.splitlines()) == 1 and out == b"", f"bad flag: {code} {err!r}")
    code, _, err = cli("append")
    check(code == 2 and len(err.splitlines()) == 1, f"append without identifier: {code} {err!r}")
    code, _, err = cli("read", "--limit", "0", "3")
    check(code == 2 and len(err.splitlines()) == 1, f"bad --limit: {code} {err!r}")
    code, _, err = cli("frobnicate")
    check(code == 2 and len(err.splitlines()) == 1, f"unknown command: {code} {err!r}")
    for args in [["--help"]] + [[command, "--help"] for command in COMMANDS]:
        code, out, _ = cli(*args)
        check(code == 0 and b"Usage" in out, f"coworker-cli {' '.join(args)} exits 0")
    print("ok 6: bad flags exit 2 with one stderr line; --help on every command exits 0")


def main():
    with own_cluster("coworker-cli-") as (_, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port))
        servers = ",".join(cluster.http(i) for i in (1, 2, 3))

        out, _ = cli_ok("--server", servers, "connect")
        check(len(out.decode().split()) == 1, f"connect prints one id: {out!r}")
        out, _ = cli_ok("--server", servers, "--json", "connect")
        check("connection" in json.loads(out), "connect --json prints the server's JSON")
        print("ok 1: connect")

        view, _ = cli_ok("--server", servers, "--json", "status")
        view = json.loads(view)
        check_appends(cluster, servers, view["buckets_total"])

        table, _ = cli_ok("--server", servers, "status")
        table = table.decode()
        for member in view["members"]:
            check(member["http"] in table and member["peer"] in table, f"status names {member}")
        check("serving" in table and "migrating" in table, "status shows states, migrations")
        out, _ = cli_ok("--server", servers, "health")
        check(out.decode().count("serving") == 3, f"health of three: {out!r}")
        code, out, _ = cli("--server", servers + "," + dead_address(), "health")
        check(code == 1 and b"unreachable" in out, f"health with a dead address exits 1: {code}")
        print("ok 5: status names every member; health exits 0, and 1 with a dead address")

        check_usage()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
