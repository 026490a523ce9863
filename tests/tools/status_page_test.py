#!/usr/bin/env python3
"""GET / of a participant, the live status page, in headless chromium (label `process`).

A 3-participant cluster started through tools/cluster on random ports. Checks:
  1. GET / and GET /index.html answer 200 text/html; charset=utf-8 with
     Cache-Control: no-cache and exactly the bytes of
     tools/coworker/status_page.html (the build embedded the current file);
     HEAD / answers the same head without a body; the participant counted the
     four answers as `ok` in /metrics;
  2. chromium --dump-dom, with a virtual-time budget of a few seconds, shows
     every member id of /v1/cluster, their state, the bucket count, buckets
     per leader adding up to it, and a row per bucket;
  3. chromium --screenshot at 1280x900 writes a PNG of that size;
  4. the participants, stopped by their PIDs (SIGINT), exit by a deadline.
Without chromium the test prints why and
exits 77, which ctest counts as skipped (SKIP_RETURN_CODE). COWORKER_BIN names
the participant binary (default build/bin/coworker, through tools/cluster);
COWORKER_CHROMIUM the browser (default: chromium on PATH).
"""
import http.client
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

from harness import ROOT, check, gone, own_cluster

SKIPPED = 77  # SKIP_RETURN_CODE in CMakeLists.txt
PAGE = os.path.join(ROOT, "tools", "coworker", "status_page.html")
BROWSER_SECONDS_MAX = 60      # one chromium run, real time
DOM_DEADLINE_SECONDS = 90     # retrying the DOM check until it holds
STOP_SECONDS_MAX = 10


def request(address, method, path):
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def ok_answers(address):
    """coworker_answers_by_code_total{code="ok"} of one participant."""
    status, _, body = request(address, "GET", "/metrics")
    check(status == 200, f"/metrics answers 200: {status}")
    found = re.search(rb'^coworker_answers_by_code_total\{code="ok"\} (\d+)$', body, re.M)
    return int(found.group(1)) if found else 0


def check_serving(address):
    with open(PAGE, "rb") as f:
        page = f.read()
    before = ok_answers(address)
    for path in ("/", "/index.html"):
        status, headers, body = request(address, "GET", path)
        check(status == 200, f"GET {path} answers 200: {status}")
        check(headers.get("content-type") == "text/html; charset=utf-8",
              f"GET {path} is html: {headers.get('content-type')}")
        check(headers.get("cache-control") == "no-cache", f"GET {path} is not cached: {headers}")
        check(body == page, f"GET {path} serves tools/coworker/status_page.html as built "
                            f"({len(body)} bytes, the file {len(page)}): rebuild?")
    status, headers, body = request(address, "HEAD", "/")
    check(status == 200 and body == b"", f"HEAD / answers 200 without a body: {status}")
    check(headers.get("content-length") == str(len(page)), f"HEAD / has GET's length: {headers}")
    # The /metrics answer above, GET / twice and HEAD /: four answers, all "ok".
    after = ok_answers(address)
    check(after - before == 4, f"four answers counted ok: {before} -> {after}")
    print(f"ok 1: GET /, /index.html and HEAD / serve the embedded page ({len(page)} bytes)")


def browse(browser, profile, *args):
    """Runs headless chromium once; (exit code, stdout). Its process group is
    killed by id if it outlives BROWSER_SECONDS_MAX."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=BROWSER_SECONDS_MAX)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        print(f"chromium ran over {BROWSER_SECONDS_MAX} s: killed")
    if process.returncode != 0:
        print(f"chromium exited {process.returncode}:\n{err.decode(errors='replace')[-2000:]}")
    return process.returncode, out.decode(errors="replace")


def dom_problems(dom, view):
    """What the page does not show yet, as words; empty when it shows it all."""
    problems = []
    for member in view["members"]:
        row = rf'<tr data-member="{member["id"]}"[^>]*>(?:(?!</tr>).)*<b>{member["id"]}</b>'
        if not re.search(row, dom):
            problems.append(f"member {member['id']} has no row")
    if dom.count('class="badge serving"') < len(view["members"]):
        problems.append("not every member shows serving")
    total = view["buckets_total"]
    if f'id="buckets-total">{total}<' not in dom:
        problems.append(f"the bucket count {total} is not shown")
    counts = [int(n) for n in re.findall(r'<span class="count">(\d+)</span>', dom)]
    if sum(counts) != total:
        problems.append(f"buckets per leader {counts} do not add up to {total}")
    if len(re.findall(r'<tr data-bucket="\d+"', dom)) != total:
        problems.append("not a table row per bucket")
    return problems


def check_dom(browser, profile, url, view):
    deadline = time.time() + DOM_DEADLINE_SECONDS
    while True:
        code, dom = browse(browser, profile, "--virtual-time-budget=5000", "--dump-dom", url)
        problems = dom_problems(dom, view) if code == 0 else ["chromium failed"]
        if not problems:
            break
        if time.time() > deadline:
            print(dom[:4000])
            check(False, f"the page shows the cluster: {problems}")
        print(f"again: {problems}")
    ids = ", ".join(str(m["id"]) for m in view["members"])
    print(f"ok 2: the DOM shows members {ids}, {view['buckets_total']} buckets, per leader")


def check_screenshot(browser, profile, url, directory):
    shot = os.path.join(directory, "status-page.png")
    code, _ = browse(browser, profile, "--virtual-time-budget=3000", f"--screenshot={shot}",
                     "--window-size=1280,900", url)
    check(code == 0 and os.path.exists(shot), f"chromium wrote {shot}")
    with open(shot, "rb") as f:
        png = f.read()
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", "the screenshot is a PNG")
    width, height = struct.unpack(">II", png[16:24])
    check((width, height) == (1280, 900) and len(png) > 10000,
          f"a 1280x900 screenshot with content: {width}x{height}, {len(png)} bytes")
    print(f"ok 3: a {width}x{height} screenshot, {len(png)} bytes")


def check_stop(pids):
    """SIGINT each participant by its PID; each exits by the deadline (what
    does not is killed by own_cluster's stop)."""
    for pid in pids:
        os.kill(pid, signal.SIGINT)
    deadline = time.time() + STOP_SECONDS_MAX
    while any(not gone(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.02)
    running = [pid for pid in pids if not gone(pid)]
    check(not running, f"participants stop on SIGINT in {STOP_SECONDS_MAX} s: {running} did not")
    print(f"ok 4: participants {pids} stopped by PID")


def main():
    browser = os.environ.get("COWORKER_CHROMIUM") or shutil.which("chromium")
    if not browser:
        print("SKIP: chromium is not installed (tools/install-deps installs it)")
        sys.exit(SKIPPED)
    with own_cluster("coworker-status-page-") as (directory, cluster):
        profile = os.path.join(directory, "chromium-profile")
        cluster.run("start", "3", "--base-port", str(cluster.base_port))
        address = cluster.http(2)
        status, _, body = request(address, "GET", "/v1/cluster")
        check(status == 200, f"/v1/cluster answers 200: {status}")
        view = json.loads(body)
        check(len(view["members"]) == 3, f"three members: {view['members']}")

        check_serving(address)
        url = f"http://{address}/"
        check_dom(browser, profile, url, view)
        check_screenshot(browser, profile, url, directory)
        check_stop(cluster.pids())
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
