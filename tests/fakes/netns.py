# SPDX-License-Identifier: MIT
"""Harness for the netns tests and the benchmark: a network namespace and a temp dir per
scenario, the fake tailscaled in it, the real agent, a NOTIFY_SOCKET listener, and readers for
fake-k0s's JSON-lines log. Every process it starts is tracked by pid and killed by pid at the
end. Python stdlib only.

Environment: AGENT, FAKE_K0S, FAKE_TAILSCALED (paths); K0S_TSAGENT_VALGRIND=1 runs the agent
under valgrind memcheck; KEEP_TMP=1 keeps the temp dir."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import tsfake

SKIP = 77


class Skip(Exception):
    pass


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def prerequisites():
    """Raise Skip unless this process can make network namespaces and TUN devices."""
    if os.geteuid() != 0:
        raise Skip("not root")
    if not shutil.which("ip"):
        raise Skip("no ip(8)")
    if not os.path.exists("/dev/net/tun"):
        raise Skip("no /dev/net/tun")
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        raise Skip("cannot open /dev/net/tun: %s" % e)
    name = "k0stsa-probe-%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise Skip("ip netns add: %s" % r.stderr.strip())
    subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
    for var in ("AGENT", "FAKE_K0S", "FAKE_TAILSCALED"):
        if not os.environ.get(var):
            raise Fail("%s is not set" % var)


def pid_alive(pid):
    """True while pid exists and is not a zombie (nobody may reap an orphaned k0s)."""
    if pid <= 0:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


def wait_until(pred, timeout, interval=0.02):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(interval)


# --- YAML -------------------------------------------------------------------------------
def to_yaml(obj, indent=0):
    """Block YAML for dicts/lists/scalars; strings are JSON-quoted (valid YAML)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 1)))
            else:
                out.append("%s%s: %s\n" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                sub = to_yaml(v, indent + 1)
                out.append("%s- %s" % (pad, sub.lstrip()))
            else:
                out.append("%s- %s\n" % (pad, _scalar(v)))
    else:
        out.append(pad + _scalar(obj) + "\n")
    return "".join(out)


def _scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return json.dumps(str(v))


def _parse_scalar(s):
    s = s.strip()
    if s == "" or s in ("null", "~"):
        return None
    if s in ("true", "false"):
        return s == "true"
    if s == "[]":
        return []
    if s == "{}":
        return {}
    if s[0] == '"':
        return json.loads(s)
    if s[0] == "'":
        return s[1:-1].replace("''", "'")
    if re.fullmatch(r"-?[0-9]+", s):
        return int(s)
    return s


def parse_yaml(text):
    """Just enough YAML for the block style libyaml emits (maps, sequences, plain and quoted
    scalars, comments). Used instead of a non-stdlib module."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#") or raw.strip() in ("---", "..."):
            continue
        lines.append((len(raw) - len(raw.lstrip(" ")), raw.strip()))
    pos = 0

    def split_key(s):
        m = re.match(r'^("(?:[^"\\]|\\.)*"|\'[^\']*\'|[^:]+?):(?:\s+(.*))?$', s)
        if not m:
            return None
        return _parse_scalar(m.group(1)), (m.group(2) if m.group(2) is not None else "")

    def block(ind):
        nonlocal pos
        if pos >= len(lines):
            return None
        if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
            seq = []
            while pos < len(lines) and lines[pos][0] == ind and (
                    lines[pos][1].startswith("- ") or lines[pos][1] == "-"):
                item = lines[pos][1][2:].strip()
                if not item:
                    pos += 1
                    seq.append(block(lines[pos][0]) if pos < len(lines)
                               and lines[pos][0] > ind else None)
                elif split_key(item) and not item.startswith(('"', "'")) or (
                        item.startswith('"') and split_key(item)):
                    # "- key: value" opens a map whose other keys are indented by 2 more
                    lines[pos] = (ind + 2, item)
                    seq.append(block(ind + 2))
                else:
                    pos += 1
                    seq.append(_parse_scalar(item))
            return seq
        m = {}
        while pos < len(lines) and lines[pos][0] == ind and not lines[pos][1].startswith("- "):
            kv = split_key(lines[pos][1])
            if kv is None:
                raise ValueError("cannot parse YAML line %r" % lines[pos][1])
            k, v = kv
            pos += 1
            if v == "" or v.startswith("#"):
                if pos < len(lines) and (lines[pos][0] > ind or (
                        lines[pos][0] == ind and lines[pos][1].startswith("- "))):
                    m[k] = block(lines[pos][0])
                else:
                    m[k] = None
            else:
                m[k] = _parse_scalar(re.sub(r"\s+#.*$", "", v) if v[0] not in "\"'" else v)
        return m

    return block(lines[0][0]) if lines else None


# --- the fake k0s's log -------------------------------------------------------------------
class K0sLog:
    def __init__(self, path):
        self.path = path

    def events(self):
        try:
            with open(self.path) as f:
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        # The last piece has no "\n" yet if a fake is writing it right now: not an event yet.
        for line in data.split("\n")[:-1]:
            if line.strip():
                out.append(json.loads(line))
        return out

    def of(self, event, pid=None):
        return [e for e in self.events()
                if e["event"] == event and (pid is None or e["pid"] == pid)]

    def starts(self):
        return self.of("start")

    def signals(self, pid=None):
        return self.of("signal", pid)

    def exits(self, pid=None):
        return self.of("exit", pid)

    def wait_starts(self, n, timeout):
        return wait_until(lambda: len(self.starts()) >= n, timeout)

    def summary(self):
        return "\n".join("  %.3f %s pid=%d %s" % (
            e["time"], e["event"], e["pid"],
            " ".join(e["argv"][1:]) if e["event"] == "start" else
            e.get("signal", e.get("code", ""))) for e in self.events())


# --- sd_notify ------------------------------------------------------------------------------
class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.msgs = []  # (time.time(), key, value)
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.time()
            with self.lock:
                for line in data.decode(errors="replace").split("\n"):
                    if "=" in line:
                        k, v = line.split("=", 1)
                        self.msgs.append((now, k, v))

    def close(self):
        self.stop = True
        self.thread.join(1)
        self.sock.close()

    def all(self, key=None):
        with self.lock:
            return [m for m in self.msgs if key is None or m[1] == key]

    def mark(self):
        with self.lock:
            return len(self.msgs)

    def since(self, mark, key=None):
        with self.lock:
            return [m for m in self.msgs[mark:] if key is None or m[1] == key]

    def statuses(self, mark=0):
        return [m[2] for m in self.since(mark, "STATUS")]

    def last_status(self):
        s = self.statuses()
        return s[-1] if s else None

    def wait(self, key, value=None, timeout=5.0, mark=0, pred=None):
        def found():
            for m in self.since(mark, key):
                if (value is None or m[2] == value) and (pred is None or pred(m[2])):
                    return m
            return None
        return wait_until(found, timeout)

    def dump(self):
        return "\n".join("  %.3f %s=%s" % m for m in self.all())


# --- the scenario environment ------------------------------------------------------------
class Env:
    def __init__(self, name, keep=None):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="k0stsa-%s-" % name)
        os.chmod(self.tmp, 0o755)
        self.ns = ("k0stsa-%d-%s" % (os.getpid(), name))[:60]
        self.procs = []  # Popen objects we started
        self.agents = []
        self.fakes = []
        self.extra_pids = set()  # e.g. fake-k0s pids from the log
        self.keep = keep if keep is not None else bool(os.environ.get("KEEP_TMP"))
        self.notify = None
        self.k0s = K0sLog(self.path("k0s.log"))
        r = subprocess.run(["ip", "netns", "add", self.ns], stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise Skip("ip netns add: %s" % r.stderr.strip())
        self.ip("link", "set", "lo", "up")

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    # commands in the namespace
    def ns_cmd(self, argv):
        return ["ip", "netns", "exec", self.ns] + list(argv)

    def ip(self, *args, check=True):
        r = subprocess.run(["ip", "-n", self.ns, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if check and r.returncode != 0:
            raise Fail("ip -n %s %s: %s" % (self.ns, " ".join(args), r.stderr.strip()))
        return r

    def ip_batch(self, lines):
        f = self.path("batch-%d.ip" % time.monotonic_ns())
        with open(f, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        return self.ip("-force", "-batch", f, check=False)

    def link(self, name="tailscale0"):
        """{'ifindex', 'up', 'ipv4': [...], 'ipv6': [...]} or None if the link is absent."""
        r = self.ip("-j", "addr", "show", "dev", name, check=False)
        if r.returncode != 0 or not r.stdout.strip():
            return None
        j = json.loads(r.stdout)
        if not j:
            return None
        j = j[0]
        return {"ifindex": j["ifindex"], "flags": j.get("flags", []),
                "ipv4": [a["local"] for a in j.get("addr_info", []) if a["family"] == "inet"],
                "ipv6": [a["local"] for a in j.get("addr_info", []) if a["family"] == "inet6"
                         and a.get("scope") == "global"]}

    # processes
    def popen(self, argv, ns=True, **kw):
        p = subprocess.Popen(self.ns_cmd(argv) if ns else argv, **kw)
        self.procs.append(p)
        return p

    def start_notify(self):
        self.notify = NotifyListener(self.path("notify.sock"))
        return self.notify

    def start_fake(self, state="Running", ipv4="100.64.0.10", ipv6="fd7a:115c:a1e0::a",
                   socket_path=None, localapi=True, tun="tailscale0", extra=()):
        """Start fake-tailscaled in the namespace and wait until its control socket answers
        (by then the TUN exists and carries its addresses)."""
        n = len(self.fakes)
        ctl = self.path("fake-ts-%d.ctl" % n)
        argv = [sys.executable, os.environ["FAKE_TAILSCALED"], "--control", ctl,
                "--state", state, "--ipv4", ipv4, "--ipv6", ipv6]
        if localapi:
            argv += ["--socket", socket_path or self.path("ts", "tailscaled.sock")]
        argv += ["--tun", tun] if tun else ["--no-tun"]
        argv += list(extra)
        log = open(self.path("fake-ts-%d.log" % n), "w")
        p = self.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        fake = FakeHandle(p, tsfake.Control(ctl), self.path("fake-ts-%d.log" % n))
        self.fakes.append(fake)
        try:
            fake.info = fake.control.wait_ready(timeout=15)
        except RuntimeError as e:
            raise Fail("%s\n%s" % (e, fake.log_tail()))
        fake.ready_time = time.time()
        return fake

    def config(self, name="agent.yaml", **over):
        """Write an agent config with every path in the temp dir; keyword args override
        top-level keys (dicts are merged one level deep). Returns the path."""
        T = self.tmp
        cfg = {
            "interface": "tailscale0",
            "role": "worker",
            "tailscale": {"socket": T + "/ts/tailscaled.sock", "require_running": True},
            "k0s": {
                "binary": os.environ["FAKE_K0S"],
                "version": "auto",
                "token_file": T + "/k0stoken",
                "base_config": T + "/k0s.yaml",
                "config": T + "/k0s-tsagent.yaml",
                "args": [],
                "env": {},
                "status_socket": T + "/k0s-status.sock",
            },
            "containerd": {"dropin": T + "/containerd.d/registry.toml",
                           "certs_dir": T + "/certs.d"},
            "registries": [{"name": "registry.tailnet.test:5000",
                            "endpoints": [{"url": "http://100.64.0.99:5000"}]}],
            "calico": {"mtu": 1230, "iptables_mark_mask": "0xff00ff00"},
            "health": {"interval": "0s"},
            "timing": {"settle": "2s", "restart_backoff": ["500ms", "4s"],
                       "stop_timeout": "3s", "stable": "60s"},
            "state_dir": T + "/state",
            "persist_dir": T + "/persist",
            "metrics": {"textfile": T + "/metrics/k0s-tsagent.prom"},
            # Test machines have no RTC and an unsynchronized clock: auto would hold k0s for
            # clock.timeout. The clock scenarios ask for the wait explicitly.
            "clock": {"wait_sync": False},
        }
        for k, v in over.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k] = dict(cfg[k], **v)
            else:
                cfg[k] = v
        p = self.path(name)
        with open(p + ".tmp", "w") as f:
            f.write("# k0s-tsagent test config\n" + to_yaml(cfg))
        os.rename(p + ".tmp", p)
        self.cfg = cfg
        return p

    def start_agent(self, config, env=None, notify=True, watchdog_usec=None, wait_ready=True):
        a = Agent(self, config, env_vars=env, notify=notify, watchdog_usec=watchdog_usec)
        a.start()
        self.agents.append(a)
        if wait_ready and notify and self.notify:
            ok = wait_until(lambda: self.notify.wait("READY", "1", timeout=0,
                                                     mark=a.notify_mark) or not a.alive(), 10)
            if not ok or not a.alive():
                raise Fail("agent sent no READY=1 within 10 s (exit code %s)\n%s"
                           % (a.proc.poll(), a.log_tail()))
        return a

    def k0s_pids(self):
        return {e["pid"] for e in self.k0s.starts()}

    def cleanup(self):
        for a in self.agents:
            if a.proc.poll() is None:
                a.proc.send_signal(signal.SIGKILL)
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.k0s_pids() | self.extra_pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        # Anything still in the namespace was started by this test (ip netns exec children).
        r = subprocess.run(["ip", "netns", "pids", self.ns], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        for tok in r.stdout.split():
            try:
                os.kill(int(tok), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        if self.notify:
            self.notify.close()
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def report(self):
        """What a failure message shows: k0s events, notify messages, agent stderr tails."""
        out = ["--- fake k0s log:", self.k0s.summary() or "  (empty)"]
        if self.notify:
            out += ["--- notify messages:", self.notify.dump() or "  (none)"]
        for i, a in enumerate(self.agents):
            out += ["--- agent %d (pid %d, rc %s) stderr tail:" % (i, a.proc.pid,
                                                                   a.proc.poll()),
                    a.log_tail()]
        for f in self.fakes:
            t = f.log_tail(10)
            if t.strip():
                out += ["--- fake tailscaled %s:" % f.log, t]
        return "\n".join(out)


class FakeHandle:
    def __init__(self, proc, control, log):
        self.proc = proc
        self.control = control
        self.log = log
        self.info = None
        self.ready_time = None

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Like systemctl stop tailscaled: the process exits and its TUN vanishes."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)

    def log_tail(self, n=20):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Agent:
    def __init__(self, env, config, env_vars=None, notify=True, watchdog_usec=None):
        self.env = env
        self.config = config
        self.extra_env = env_vars or {}
        self.notify = notify
        self.watchdog_usec = watchdog_usec
        self.log = env.path("agent-%d.log" % len(env.agents))
        self.valgrind = bool(os.environ.get("K0S_TSAGENT_VALGRIND"))
        self.notify_mark = 0
        self.proc = None

    def environment(self):
        e = {k: v for k, v in os.environ.items()
             if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                          "INVOCATION_ID", "LISTEN_FDS", "LISTEN_PID")}
        e.update({
            "K0S_TSAGENT_LOG_LEVEL": "debug",
            "FAKE_K0S_LOG": self.env.k0s.path,
            "FAKE_K0S_CONTROL": self.env.path("k0s-control"),
            "FAKE_K0S_VERSION": "v1.35.7+k0s.0",
        })
        if self.notify and self.env.notify:
            e["NOTIFY_SOCKET"] = self.env.notify.path
        if self.watchdog_usec:
            e["WATCHDOG_USEC"] = str(self.watchdog_usec)
        e.update(self.extra_env)
        return e

    def start(self):
        argv = [os.environ["AGENT"], "--config", self.config, "run"]
        if self.valgrind:
            argv = ["valgrind", "--error-exitcode=9", "--leak-check=full",
                    "--show-leak-kinds=definite,indirect",
                    "--errors-for-leak-kinds=definite,indirect", "--quiet"] + argv
        if self.env.notify:
            self.notify_mark = self.env.notify.mark()
        log = open(self.log, "w")
        self.start_time = time.time()
        self.proc = self.env.popen(argv, env=self.environment(), stdout=log,
                                   stderr=subprocess.STDOUT)
        log.close()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Fail("agent did not exit within %d s of SIGTERM" % timeout)

    def status_path(self):
        return os.path.join(self.env.cfg["state_dir"], "status.json")

    def status(self):
        try:
            with open(self.status_path()) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def wait_status(self, pred, timeout=5.0):
        def ok():
            s = self.status()
            try:
                return s if s is not None and pred(s) else None
            except (KeyError, TypeError, IndexError):
                return None
        return wait_until(ok, timeout)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "".join(self.log_text().splitlines(True)[-n:])

    def cli(self, *args, timeout=10):
        argv = [os.environ["AGENT"], "--config", self.config] + list(args)
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)


# --- the scenario runner every netns test file uses ------------------------------------------
def run_scenarios(scenarios, argv=None, env_prefix=""):
    """`PROG NAME`: run scenario NAME in a fresh Env; print PASS/FAIL/SKIP and the Env's report on
    failure; check agents run under valgrind; clean up. Returns the exit code (0 pass, 1 fail,
    77 skip, 2 usage)."""
    import traceback
    argv = sys.argv if argv is None else argv
    prog = os.path.basename(argv[0])
    if len(argv) != 2 or argv[1] not in scenarios:
        print("usage: %s {%s}" % (prog, "|".join(scenarios)), file=sys.stderr)
        return 2
    name = argv[1]
    try:
        prerequisites()
    except Skip as e:
        print("SKIP: %s" % e)
        return SKIP
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    env = Env(env_prefix + name)
    t0 = time.monotonic()
    rc = 0
    try:
        scenarios[name](env)
        for a in env.agents:
            if a.valgrind and a.proc.poll() is None:
                a.stop(timeout=60)
            if a.valgrind and a.proc.poll() == 9:
                raise Fail("valgrind found errors in the agent")
        print("PASS: %s (%.1f s)" % (name, time.monotonic() - t0))
    except Fail as e:
        rc = 1
        print("FAIL: %s: %s (after %.1f s)" % (name, e, time.monotonic() - t0))
        print(env.report())
    except Skip as e:
        rc = SKIP
        print("SKIP: %s" % e)
    except Exception:  # noqa: BLE001 -- a harness error is a failure with a trace
        rc = 1
        traceback.print_exc()
        print(env.report())
    finally:
        env.cleanup()
    return rc
