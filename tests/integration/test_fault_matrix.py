#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fault matrix (issue 8): every syscall on common/atomic-file.c's write path x ENOSPC, EIO,
EACCES, EROFS, injected with strace into the running daemon and into `render`.

For each cell the same change is made twice: once traced only, to learn which call of the
syscall belongs to the write of hosts.toml (its index N, counted from the attach), then with
`strace -e inject=SYSCALL:error=ERRNO:when=N`, so exactly that call fails once. After it:
every file the agent owns holds its old or its new content (never partial, never missing, no
temp file left), the daemon is alive, names the file and the error in its log and in
`status --json`, and writes the file once the fault is gone (its retry). `render` exits non-zero
naming the file, leaves old-or-new content, and a second run writes everything.

The four errnos run in four namespaces in parallel; render cells run meanwhile. The matrix
(syscall x errno x outcome) is printed at the end. Exit 0 pass, 1 fail, 77 skip (not root, no
netns/TUN, no strace). Environment as test_agent.py: AGENT, FAKE_K0S, FAKE_TAILSCALED,
PYTHONPATH=tests/fakes."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import netns
from netns import Fail, Skip, wait_until

REGISTRY = "registry.tailnet.test:5000"
ERRNOS = ["ENOSPC", "EIO", "EACCES", "EROFS"]
STRERROR = {"ENOSPC": "No space left on device", "EIO": "Input/output error",
            "EACCES": "Permission denied", "EROFS": "Read-only file system"}


def fd_in(d):
    """A call whose first argument is a file descriptor of a (temp) file inside directory d."""
    e = re.escape(d)
    # strace -y shows an O_TMPFILE inode as "FD<DIR/#INODE>(deleted)"
    return lambda line: re.match(r"^\w+\(\d+<%s/(#\d+|\.#hosts\.toml[^>]*)>" % e,
                                 line) is not None


def dir_fd(d):
    e = re.escape(d)
    return lambda line: re.match(r"^fsync\(\d+<%s>\)" % e, line) is not None


# (cell name, strace syscall expression, the syscall names it matches, predicate(dir) on a
# strace -y line selecting the call that belongs to writing hosts.toml in dir)
SYSCALLS = [
    ("openat(O_TMPFILE)", "openat", ("openat",),
     lambda d: lambda l: re.match(r'^openat\(\d+<%s>, "[^"]*", [^)]*O_TMPFILE' % re.escape(d),
                                  l) is not None),
    ("write", "write", ("write",), fd_in),
    ("fchmod", "fchmod", ("fchmod",), fd_in),
    ("fsync(file)", "fsync", ("fsync",), fd_in),
    ("linkat", "linkat", ("linkat",),
     lambda d: lambda l: re.match(r'^linkat\(.*, \d+<%s>, "\.#hosts\.toml' % re.escape(d),
                                  l) is not None),
    ("renameat", "/^renameat2?$", ("renameat", "renameat2"),
     lambda d: lambda l: re.match(r'^renameat2?\(\d+<%s>, .*, "hosts\.toml"' % re.escape(d),
                                  l) is not None),
    ("fsync(dir)", "fsync", ("fsync",), dir_fd),
]


def strace_calls(log, names):
    """The syscall lines of a strace -o log, in order, for the given syscall names."""
    out = []
    try:
        with open(log, errors="replace") as f:
            for line in f:
                m = re.match(r"^(\w+)\(", line)
                if m and m.group(1) in names:
                    out.append(line.rstrip("\n"))
    except OSError:
        pass
    return out


def target_index(calls, pred):
    for i, line in enumerate(calls):
        if pred(line):
            return i + 1
    return None


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return b"<directory>"


def tree(root):
    """{relative path: bytes} of every regular file below root."""
    out = {}
    for d, _, files in os.walk(root):
        for n in files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = read(p)
    return out


# --- strace attached to the daemon --------------------------------------------------------
class Tracer:
    def __init__(self, pid, log, syscall, inject=None):
        argv = ["strace", "-qq", "-y", "-s", "24", "-o", log, "-e", "trace=" + syscall]
        if inject:
            argv += ["-e", "inject=%s:error=%s:when=%d" % (syscall, inject[0], inject[1])]
        argv += ["-p", str(pid)]
        self.pid = pid
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        if not wait_until(self.attached, 5):
            self.stop()
            raise Fail("strace did not attach to %d: %s" % (pid, self.proc.stderr.read()))

    def attached(self):
        if self.proc.poll() is not None:
            return True  # reported by the caller through stop()
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("TracerPid:"):
                        return int(line.split()[1]) == self.proc.pid
        except OSError:
            return True
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # strace detaches and exits
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the daemon: one namespace per errno ------------------------------------------------------
class DaemonRow:
    def __init__(self, errno):
        self.errno = errno
        self.env = None
        self.agent = None
        self.version = 0
        self.results = {}  # cell name -> (ok, text)
        self.notes = []

    def url(self):
        return "http://100.64.1.%d:5000" % self.version

    def hosts(self):
        return self.env.path("certs.d", REGISTRY, "hosts.toml")

    def hosts_has(self, content):
        return content is not None and ('[host."%s"]' % self.url()).encode() in content

    def reconfigure(self):
        """Write the config with the next endpoint URL and ask the agent to reload."""
        self.version += 1
        self.env.config(registries=[{"name": REGISTRY, "endpoints": [{"url": self.url()}]}])
        self.agent.signal(signal.SIGHUP)

    def file_status(self, st):
        for f in (st or {}).get("files", []):
            if f.get("path") == self.hosts():
                return f
        return None

    def setup(self):
        env = self.env = netns.Env("fault-" + self.errno.lower())
        os.makedirs(env.path("persist"), exist_ok=True)
        with open(env.path("k0stoken"), "w") as f:
            f.write("H4sIAAAAAAAC/fake-join-token\n")
        env.start_notify()
        env.start_fake(state="Running")
        conf = env.config(registries=[{"name": REGISTRY, "endpoints": [{"url": self.url()}]}])
        self.agent = env.start_agent(conf)
        if not env.k0s.wait_starts(1, 10):
            raise Fail("k0s not started: %s" % self.agent.log_tail())
        if not wait_until(lambda: self.hosts_has(read(self.hosts())), 10):
            raise Fail("hosts.toml never written: %s" % self.agent.log_tail())

    def learn(self, cell):
        """Makes the change traced only; returns the index of the target call."""
        name, expr, names, pred = cell
        log = self.env.path("learn-%d.strace" % SYSCALLS.index(cell))
        t = Tracer(self.agent.pid, log, expr)
        try:
            self.reconfigure()
            ok = wait_until(lambda: self.hosts_has(read(self.hosts())), 10)
            time.sleep(0.3)  # the rest of the pass (status.json, metrics)
        finally:
            t.stop()
        if not ok:
            raise Fail("%s: hosts.toml not rewritten while traced" % name)
        n = target_index(strace_calls(log, names), pred(os.path.dirname(self.hosts())))
        if n is None:
            raise Fail("%s: no %s call for hosts.toml in the trace (%s)"
                       % (name, expr, "; ".join(strace_calls(log, names))[:600]))
        return n

    def watch(self, old, stop, bad):
        """Polls every owned file until stop is set; records what was never allowed."""
        hosts, dropin = self.hosts(), self.env.path("containerd.d", "registry.toml")
        dropin_old = read(dropin)
        seen = []
        while not stop.is_set():
            h = read(hosts)
            if h is None:
                bad.append("hosts.toml missing")
            elif h != old:
                seen.append(h)
            if read(dropin) != dropin_old:
                bad.append("registry.toml changed or vanished")
            s = read(self.agent.status_path())
            try:
                json.loads(s)
            except (TypeError, ValueError):
                bad.append("status.json missing or not JSON")
            time.sleep(0.01)
        return seen

    def fault(self, cell, n):
        """Returns (ok, outcome text)."""
        name, expr, names, pred = cell
        hosts = self.hosts()
        old = read(hosts)
        log_mark = len(self.agent.log_text())
        slog = self.env.path("fault-%d.strace" % SYSCALLS.index(cell))
        stop, bad, seen = threading.Event(), [], []
        watcher = threading.Thread(target=lambda: seen.extend(self.watch(old, stop, bad)))
        watcher.start()
        t = Tracer(self.agent.pid, slog, expr, inject=(self.errno, n))
        try:
            self.reconfigure()
            wait_until(lambda: any("INJECTED" in l for l in strace_calls(slog, names)), 5)
            # status --json names the file and the error before the retry fixes it
            reported = wait_until(lambda: (self.file_status(self.agent.status()) or {})
                                  .get("error"), 3)
        finally:
            t.stop()
        calls = strace_calls(slog, names)
        hit = [l for l in calls if "INJECTED" in l]
        recovered = wait_until(lambda: self.hosts_has(read(hosts)) and not (
            self.file_status(self.agent.status()) or {}).get("error"), 10)
        stop.set()
        watcher.join()
        new = read(hosts)
        logged = self.agent.log_text()[log_mark:]
        problems = []
        if not hit:
            return None, "not injected (%d calls traced)" % len(calls)
        if not pred(os.path.dirname(hosts))(hit[0]):
            return None, "injected elsewhere: %s" % hit[0][:120]
        if not self.agent.alive():
            problems.append("daemon died (rc %s)" % self.agent.proc.poll())
        problems += sorted(set(bad))
        for s in seen:
            if s != new:
                problems.append("hosts.toml seen neither old nor new: %r" % s[:80])
                break
        if not reported:
            problems.append("status.json never showed the error for hosts.toml")
        elif STRERROR[self.errno] not in reported:
            problems.append("status error %r does not name %s" % (reported, self.errno))
        if not re.search(r"Failed to write '%s'.*%s" % (re.escape(hosts),
                                                      re.escape(STRERROR[self.errno])), logged):
            problems.append("log does not say 'Failed to write %s: %s'"
                            % (hosts, STRERROR[self.errno]))
        if not recovered:
            problems.append("hosts.toml not rewritten after the fault (%r)"
                            % (self.file_status(self.agent.status()),))
        leftovers = [f for f in os.listdir(os.path.dirname(hosts)) if f.startswith(".#")]
        if leftovers:
            problems.append("temp files left: %s" % leftovers)
        if problems:
            return False, "; ".join(problems)
        return True, "ok"

    def run(self):
        try:
            self.setup()
            for cell in SYSCALLS:
                ok, text = None, ""
                for _ in range(2):  # a call that moved between the two passes: once more
                    n = self.learn(cell)
                    ok, text = self.fault(cell, n)
                    if ok is not None:
                        break
                self.results[cell[0]] = (bool(ok), text)
        except (Fail, Skip) as e:
            self.notes.append("%s: %s" % (self.errno, e))
        except Exception:  # noqa: BLE001 -- a harness error fails the row, with its trace
            self.notes.append("%s: %s" % (self.errno, traceback.format_exc()))
        finally:
            if self.env:
                if self.notes or not all(ok for ok, _ in self.results.values()):
                    self.notes.append(self.env.report())
                self.env.cleanup()


# --- render ----------------------------------------------------------------------------------
def render(conf, root, strace=None):
    argv = [os.environ["AGENT"], "--config", conf, "render", "--root", root,
            "--address", "100.64.0.10", "--k0s-version", "v1.35.7+k0s.0"]
    env = None
    if strace:
        argv = strace + ["--"] + argv
        # LeakSanitizer stops the world with ptrace, which a process under strace cannot: with
        # an ASan build it would abort at exit ("LeakSanitizer has encountered a fatal error").
        opts = os.environ.get("ASAN_OPTIONS", "")
        env = dict(os.environ, ASAN_OPTIONS=(opts + ":" if opts else "") + "detect_leaks=0")
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=30, env=env)


def render_conf(path, url):
    with open(path, "w") as f:
        f.write("role: worker\nregistries:\n  - name: %s\n    endpoints:\n      - url: %s\n"
                % (REGISTRY, url))
    os.chmod(path, 0o644)
    return path


def render_matrix(results, notes):
    w = tempfile.mkdtemp(prefix="k0stsa-fault-render-")
    try:
        c1 = render_conf(os.path.join(w, "v1.conf"), "http://100.64.1.1:5000")
        c2 = render_conf(os.path.join(w, "v2.conf"), "http://100.64.1.2:5000")
        base = os.path.join(w, "old")
        r = render(c1, base)
        if r.returncode != 0:
            raise Fail("render v1: %s" % r.stderr)
        old = tree(base)
        hosts_rel = os.path.join("etc", "containerd", "certs.d", REGISTRY, "hosts.toml")
        if hosts_rel not in old:
            raise Fail("render wrote no %s: %s" % (hosts_rel, sorted(old)))
        for cell in SYSCALLS:
            name, expr, names, pred = cell
            tag = str(SYSCALLS.index(cell))
            learn_root = os.path.join(w, "learn-" + tag)
            shutil.copytree(base, learn_root, symlinks=True)
            log = os.path.join(w, "learn-%s.strace" % tag)
            r = render(c2, learn_root, ["strace", "-qq", "-y", "-s", "24", "-o", log,
                                        "-e", "trace=" + expr])
            if r.returncode != 0:
                raise Fail("render v2 traced: %s" % r.stderr)
            new = tree(learn_root)
            d = os.path.join(learn_root, os.path.dirname(hosts_rel))
            n = target_index(strace_calls(log, names), pred(d))
            if n is None:
                for e in ERRNOS:
                    results[(name, e)] = (False, "no %s call for hosts.toml in render" % expr)
                continue
            for e in ERRNOS:
                root = os.path.join(w, "fault-%s-%s" % (tag, e))
                shutil.copytree(base, root, symlinks=True)
                flog = os.path.join(w, "fault-%s-%s.strace" % (tag, e))
                r = render(c2, root, ["strace", "-qq", "-y", "-s", "24", "-o", flog,
                                      "-e", "trace=" + expr,
                                      "-e", "inject=%s:error=%s:when=%d" % (expr, e, n)])
                results[(name, e)] = check_render(r, root, old, new, hosts_rel, e,
                                                  strace_calls(flog, names), pred, c2)
    except Fail as e:
        notes.append("render: %s" % e)
    finally:
        shutil.rmtree(w, ignore_errors=True)


def check_render(r, root, old, new, hosts_rel, errno, calls, pred, conf):
    problems = []
    hit = [l for l in calls if "INJECTED" in l]
    if not hit or not pred(os.path.join(root, os.path.dirname(hosts_rel)))(hit[0]):
        return False, "injection missed hosts.toml: %s" % (hit[:1] or "none")
    if r.returncode == 0:
        problems.append("render exited 0 although a write failed")
    if "hosts.toml" not in r.stderr or STRERROR[errno] not in r.stderr:
        problems.append("stderr does not name hosts.toml and %s: %r" % (errno, r.stderr[-300:]))
    after = tree(root)
    for p in set(old) | set(new) | set(after):
        got = after.get(p)
        if os.path.basename(p).startswith(".#"):
            problems.append("temp file left: %s" % p)
        elif got is None:
            problems.append("%s missing" % p)
        elif got not in (old.get(p), new.get(p)):
            problems.append("%s is neither old nor new" % p)
    r2 = render(conf, root)
    if r2.returncode != 0 or tree(root) != new:
        problems.append("a second render did not write everything (rc %d): %s"
                        % (r2.returncode, r2.stderr[-200:]))
    return (False, "; ".join(problems)) if problems else (True, "ok")


# --- the matrix --------------------------------------------------------------------------------
def print_matrix(title, cell):
    width = 10
    print("\n%s" % title)
    print("  %-20s" % "syscall \\ errno" + "".join("%-*s" % (width, e) for e in ERRNOS))
    for name, *_ in SYSCALLS:
        row = []
        for e in ERRNOS:
            ok = cell(name, e)
            row.append("%-*s" % (width, "-" if ok is None else ("ok" if ok else "FAIL")))
        print("  %-20s" % name + "".join(row))


def main():
    try:
        netns.prerequisites()
        if not shutil.which("strace"):
            raise Skip("strace is not installed")
    except Skip as e:
        print("SKIP: %s" % e)
        return netns.SKIP
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    t0 = time.monotonic()
    rows = [DaemonRow(e) for e in ERRNOS]
    threads = [threading.Thread(target=r.run) for r in rows]
    for t in threads:
        t.start()
    render_results, notes = {}, []
    render_matrix(render_results, notes)
    for t in threads:
        t.join()

    failed = bool(notes)
    print("fault matrix: %d daemon rows, %.1f s" % (len(rows), time.monotonic() - t0))
    for r in rows:
        for name, *_ in SYSCALLS:
            ok, text = r.results.get(name, (False, "not run"))
            failed |= not ok
            print("daemon %-18s %-7s %s" % (name, r.errno, text))
    for name, *_ in SYSCALLS:
        for e in ERRNOS:
            ok, text = render_results.get((name, e), (False, "not run"))
            failed |= not ok
            print("render %-18s %-7s %s" % (name, e, text))
    by_errno = {r.errno: r for r in rows}
    print_matrix("daemon (syscall x errno):",
                 lambda n, e: by_errno[e].results.get(n, (None,))[0])
    print_matrix("render (syscall x errno):",
                 lambda n, e: render_results.get((n, e), (None,))[0])
    for r in rows:
        notes += r.notes
    for n in notes:
        print(n)
    print("%s: fault-matrix (%.1f s)" % ("FAIL" if failed else "PASS", time.monotonic() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
