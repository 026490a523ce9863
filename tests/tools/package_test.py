#!/usr/bin/env python3
"""The .deb of tools/package, built by cpack and unpacked into a scratch root (label `process`).

Nothing is installed on the machine: the package is extracted with
`dpkg-deb -x` into a temp dir and the participant runs from there. Checks:
  1. cpack (with the build dir's CPackConfig.cmake) writes one
     coworker_<version>_<arch>.deb: Package coworker, the project's version,
     a maintainer, Depends computed by dpkg-shlibdeps (libc6, liburing2), and
     /etc/default/coworker as a conffile;
  2. the files are where a host expects them: usr/bin holds exactly coworker,
     coworker-cli and coworker-bench; lib/systemd/system/coworker.service,
     etc/default/coworker, usr/share/doc/coworker/OPERATIONS.md;
  3. the unit: ExecStart=/usr/bin/coworker with the environment file's
     variables, KillSignal=SIGTERM, TimeoutStopSec above the 30 s leave
     timeout, Restart=on-failure, LimitNOFILE; `systemd-analyze verify`
     accepts it (skipped, with the reason printed, without systemd-analyze);
  4. --help of each unpacked executable exits 0 (stripped, its libraries found);
  5. one participant (--replicas 1, a one-participant cluster) started from
     the unit's own ExecStart line, its variables taken from the packaged
     environment file with a free port pair, a temp data dir and --cores 1:
     /v1/health serving, one append answered 200 and read back;
  6. SIGINT by PID: exit 0; started again on the same data dir, the entry is
     still there; SIGTERM (the unit's KillSignal): exit 0.
COWORKER_BUILD_DIR names the build dir (default build/), COWORKER_CPACK the
cpack executable (default: cpack on PATH). Exits non-zero at the first failure.
"""
import glob
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import ROOT, check

BUILD = os.environ.get("COWORKER_BUILD_DIR", os.path.join(ROOT, "build"))
CPACK = os.environ.get("COWORKER_CPACK", "cpack")
EXECUTABLES = {"coworker", "coworker-cli", "coworker-bench"}
UNIT = "lib/systemd/system/coworker.service"
ENVIRONMENT = "etc/default/coworker"
LEAVE_TIMEOUT_S = 30        # coworker --help: --leave-timeout-ms default
CPACK_SECONDS_MAX = 60
SERVING_SECONDS_MAX = 20
STOP_SECONDS_MAX = 10


def run(*args, timeout=30):
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        print(f"$ {' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}")
    check(done.returncode == 0, f"{os.path.basename(args[0])} {' '.join(args[1:3])} exits 0")
    return done.stdout


def build_deb(scratch):
    out = os.path.join(scratch, "cpack")
    run(CPACK, "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", out,
        timeout=CPACK_SECONDS_MAX)
    debs = glob.glob(os.path.join(out, "*.deb"))
    check(len(debs) == 1, f"one .deb: {debs}")
    check(re.fullmatch(r"coworker_\d+\.\d+\.\d+_[a-z0-9]+\.deb", os.path.basename(debs[0])),
          f"Debian file name: {os.path.basename(debs[0])}")
    return debs[0]


def check_control(deb, scratch):
    fields = {name: run("dpkg-deb", "-f", deb, name).strip()
              for name in ("Package", "Version", "Maintainer", "Depends", "Description")}
    check(fields["Package"] == "coworker", f"Package: {fields['Package']}")
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        version = re.search(r"project\(coworker VERSION ([0-9.]+)", f.read()).group(1)
    check(fields["Version"] == version, f"Version {fields['Version']} is the project's {version}")
    check("@" in fields["Maintainer"], f"Maintainer: {fields['Maintainer']}")
    depends = fields["Depends"]
    check("libc6" in depends and "liburing2" in depends, f"Depends from shlibdeps: {depends!r}")
    check(fields["Description"], "a description")
    control = os.path.join(scratch, "control")
    run("dpkg-deb", "-e", deb, control)
    with open(os.path.join(control, "conffiles")) as f:
        check(f.read().split() == ["/" + ENVIRONMENT], "the environment file is the conffile")
    print(f"ok 1: {os.path.basename(deb)}: Depends: {depends}")


def check_files(deb, root):
    run("dpkg-deb", "-x", deb, root)
    binaries = set(os.listdir(os.path.join(root, "usr", "bin")))
    check(binaries == EXECUTABLES, f"usr/bin holds the three executables only: {sorted(binaries)}")
    for name in EXECUTABLES:
        check(os.access(os.path.join(root, "usr", "bin", name), os.X_OK), f"{name} executable")
    for path in (UNIT, ENVIRONMENT, "usr/share/doc/coworker/OPERATIONS.md",
                 "usr/share/doc/coworker/README.md"):
        check(os.path.isfile(os.path.join(root, path)), f"{path} in the package")
    print("ok 2: usr/bin/{coworker,coworker-cli,coworker-bench}, the unit, the environment "
          "file, the docs")


def unit_settings(root):
    """The unit's [Service] settings by name, continuation lines joined."""
    with open(os.path.join(root, UNIT)) as f:
        text = re.sub(r"\\\n\s*", " ", f.read())
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            settings[name.strip()] = value.strip()
    return settings


def check_unit(root):
    unit = unit_settings(root)
    check(unit.get("ExecStart", "").startswith("/usr/bin/coworker "), f"ExecStart: {unit}")
    check(unit.get("EnvironmentFile") == "/" + ENVIRONMENT, "EnvironmentFile")
    check(unit.get("KillSignal") == "SIGTERM", "KillSignal=SIGTERM")
    check(int(unit.get("TimeoutStopSec", "0")) > LEAVE_TIMEOUT_S, "TimeoutStopSec above 30 s")
    check(unit.get("Restart") == "on-failure", "Restart=on-failure")
    check(int(unit.get("LimitNOFILE", "0")) >= 65536, "LimitNOFILE high")
    check(unit.get("StateDirectory") == "coworker", "StateDirectory=coworker (/var/lib/coworker)")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("ok 3: the unit's settings; systemd-analyze verify skipped: no systemd-analyze")
        return
    # verify checks that ExecStart's binary exists: it is in the scratch root,
    # not in /usr/bin, so a copy of the unit names it there.
    copy = os.path.join(root, "verify", "coworker.service")
    os.makedirs(os.path.dirname(copy))
    with open(os.path.join(root, UNIT)) as f:
        text = f.read().replace("ExecStart=/usr/bin/", f"ExecStart={root}/usr/bin/")
    with open(copy, "w") as f:
        f.write(text)
    done = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if "coworker.service" in line]
    if done.returncode != 0 or complaints:
        print(done.stdout + done.stderr)
    check(done.returncode == 0 and not complaints, "systemd-analyze verify coworker.service")
    print("ok 3: the unit's settings; systemd-analyze verify accepts it")


def free_port():
    """A port below the ephemeral range that nobody listens on now."""
    while True:
        port = random.randint(10000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def command_line(root, data_dir):
    """The unit's ExecStart, expanded as systemd does with the packaged
    environment file, pointed at the scratch root and a temp data dir."""
    environment = {}
    with open(os.path.join(root, ENVIRONMENT)) as f:
        for line in f:
            if "=" in line and not line.lstrip().startswith("#"):
                name, value = line.strip().split("=", 1)
                environment[name] = " ".join(shlex.split(value))
    check({"COWORKER_LISTEN", "COWORKER_PEER_LISTEN", "COWORKER_FLAGS"} <= environment.keys(),
          f"the environment file sets the unit's variables: {sorted(environment)}")
    environment["COWORKER_LISTEN"] = f"127.0.0.1:{free_port()}"
    environment["COWORKER_PEER_LISTEN"] = f"127.0.0.1:{free_port()}"
    environment["COWORKER_FLAGS"] += " --replicas 1 --cores 1"
    args = []
    for word in unit_settings(root)["ExecStart"].split():
        if word.startswith("${"):
            args.append(environment[word[2:-1]])  # ${NAME}: one word
        elif word.startswith("$"):
            args += environment[word[1:]].split()  # $NAME: split on spaces
        else:
            args.append(word)
    check(args[0] == "/usr/bin/coworker" and "/var/lib/coworker" in args, f"ExecStart: {args}")
    args[0] = os.path.join(root, "usr", "bin", "coworker")
    args[args.index("/var/lib/coworker")] = data_dir
    return args, environment["COWORKER_LISTEN"]


def request(method, address, path, body=None):
    req = urllib.request.Request(f"http://{address}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def wait_serving(process, address, log_path):
    deadline = time.monotonic() + SERVING_SECONDS_MAX
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log_path) as f:
                print(f.read())
            check(False, f"the participant exited {process.returncode} before serving")
        try:
            status, body = request("GET", address, "/v1/health")
            if status == 200 and body == {"state": "serving"}:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.05)  # a poll interval; the deadline above bounds the wait
    check(False, f"/v1/health serving within {SERVING_SECONDS_MAX} s")


def stop(process, sig):
    process.send_signal(sig)
    try:
        code = process.wait(timeout=STOP_SECONDS_MAX)
    except subprocess.TimeoutExpired:
        code = None
    check(code == 0, f"{signal.Signals(sig).name} by PID: exit 0 (got {code})")


def check_runs(root, scratch):
    for name in sorted(EXECUTABLES):
        done = subprocess.run([os.path.join(root, "usr", "bin", name), "--help"],
                              capture_output=True, text=True, timeout=10)
        check(done.returncode == 0 and "--help" in done.stdout, f"unpacked {name} --help")
    print("ok 4: <root>/usr/bin/{coworker,coworker-bench,coworker-cli} --help exit 0")

    data_dir = os.path.join(scratch, "var-lib-coworker")
    args, address = command_line(root, data_dir)
    log_path = os.path.join(scratch, "coworker.log")
    processes = []
    try:
        with open(log_path, "a") as log:
            processes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        wait_serving(processes[-1], address, log_path)
        body = b"installed from the .deb"
        status, answer = request("POST", address, "/v1/log/package-test", body)
        check(status == 200 and answer["position"] == 0, f"append: {status} {answer}")
        print(f"ok 5: {' '.join(args[1:])}: serving, append answered {answer}")
        stop(processes[-1], signal.SIGINT)

        with open(log_path, "a") as log:
            processes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        wait_serving(processes[-1], address, log_path)
        status, page = request("GET", address, "/v1/log/package-test?from=0")
        check(status == 200, f"read back: {status}")
        check([e.get("body") for e in page["entries"]] == [body.decode()],
              f"the entry survived the restart: {page}")
        stop(processes[-1], signal.SIGTERM)
        print("ok 6: SIGINT exit 0; restarted on its data dir, the entry read back; SIGTERM exit 0")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def main():
    scratch = tempfile.mkdtemp(prefix="coworker-package-")
    try:
        deb = build_deb(scratch)
        check_control(deb, scratch)
        root = os.path.join(scratch, "root")
        check_files(deb, root)
        check_unit(root)
        check_runs(root, scratch)
        print(run("dpkg-deb", "-c", deb), end="")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
