#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A real tailnet on one machine: N nodes across S sites, each node a network namespace plus a
private mount namespace, joined by an underlay and meshed with wireguard-go, running the real
agent, the stand-in k0s, Debian's containerd (workers) and docker-registry (one node per site).

Underlay: a "wan" namespace routes between one namespace per site; a site namespace holds the
site's bridge (10.200.S.0/24, the site router at .1) and its uplink veth to the wan
(10.199.S.0/30). A node's eth0 is a veth on its site's bridge. Cutting a site's uplink is one
link down; cutting its power kills every process of its nodes and takes its links down.

A node: netns tslab-ID-NODE; an init process (`unshare -m`: tmpfs on /run, so wireguard-go's
UAPI socket /run/wireguard/tailscale0.sock is per node) whose mount and network namespaces every
other process of the node enters with nsenter; tests/lab/tailscaled.py (wireguard-go + LocalAPI
stand-in); `k0s-tsagent run` with a config whose paths are all below the node's directory;
containerd (workers) with its root/state/socket there and the agent's drop-in imported; and
docker-registry on the node's tailnet address on registry nodes. NODE/run is the node's /run:
emptied when power returns. Everything is named with the prefix "tslab-" so `lab clean` finds
what a crashed run left (namespaces, processes in them, directories).

CLI: lab.py up|down DIR|clean|drill {1,2,3,4,all}|check. Needs root, wireguard-go, wg, ip,
containerd, ctr, docker-registry, curl (HTTP/2). Env: LAB_AGENT or AGENT, LAB_FAKE_K0S or
FAKE_K0S (or --agent/--fake-k0s): the built k0s-tsagent and tests/fake-k0s."""

import argparse
import glob
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tailscaled import CONTROL_OFFLINE_AFTER  # noqa: E402
PREFIX = "tslab-"
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
WG_PORT = 41641
REG_PORT = 5000
IMAGE = "lab/tiny:1"
MIRROR = "mirror.lab:%d" % REG_PORT
K0S_VERSION = "v1.35.7+k0s.0"   # the drop-in containerd 1.6 reads (version = 2)
SKIP = 77


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def sh(argv, check=True, timeout=30, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise Fail("%s: %s" % (" ".join(argv), (r.stderr or r.stdout).strip()))
    return r


def wait_until(pred, timeout, interval=0.02):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def to_yaml(obj, ind=0):
    pad = "  " * ind
    if isinstance(obj, dict):
        out = ""
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out += "%s%s:\n%s" % (pad, k, to_yaml(v, ind + 1))
            else:
                out += "%s%s: %s\n" % (pad, k, json.dumps(v) if not isinstance(v, bool)
                                        else str(v).lower())
        return out
    out = ""
    for v in obj:
        sub = to_yaml(v, ind + 1) if isinstance(v, (dict, list)) else json.dumps(v) + "\n"
        out += "%s- %s" % (pad, sub.lstrip())
    return out


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def prerequisites():
    if os.geteuid() != 0:
        raise Skip("not root")
    for c in ("ip", "wireguard-go", "wg", "nsenter", "unshare", "containerd", "ctr",
              "docker-registry", "curl"):
        if not shutil.which(c):
            raise Skip("%s is not installed" % c)
    if not os.path.exists("/dev/net/tun"):
        raise Skip("no /dev/net/tun")
    if "HTTP2" not in sh(["curl", "--version"]).stdout:
        raise Skip("curl has no HTTP/2 (needed for CRI PullImage)")


# --- leftovers ----------------------------------------------------------------------------
def netns_pids(ns):
    r = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return [int(t) for t in r.stdout.split() if t.isdigit()]


def kill_netns(ns, timeout=5.0):
    """SIGKILL every process in the namespace until none is left (a dying agent may still
    fork a k0s)."""
    end = time.monotonic() + timeout
    seen = set()
    while True:
        pids = netns_pids(ns)
        if not pids:
            reap(seen)
            return True
        seen.update(pids)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if time.monotonic() > end:
            return False
        time.sleep(0.02)


def become_subreaper():
    """Orphans of the lab (a wireguard-go whose tailscaled was killed, a k0s whose agent was)
    are reparented to the lab, which reaps them: no zombie is left for PID 1 to collect."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap(pids, timeout=1.0):
    """waitpid() the killed pids that are (now) our children; others are not ours to reap."""
    left = set(pids)
    end = time.monotonic() + timeout
    while left and time.monotonic() < end:
        for pid in list(left):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    left.discard(pid)
            except ChildProcessError:
                left.discard(pid)
        if left:
            time.sleep(0.01)


def clean(lab_id=None, quiet=False, remove_dirs=True):
    """Remove what a lab (or every lab, lab_id None) left: processes in its namespaces, the
    namespaces, processes whose command line names a lab directory, lab directories."""
    pre = PREFIX + (lab_id + "-" if lab_id else "")
    found = []
    names = sh(["ip", "netns", "list"], check=False).stdout.split("\n")
    names = [n.split()[0] for n in names if n.strip() and n.split()[0].startswith(pre)]
    for ns in names:
        kill_netns(ns)
    for ns in names:
        sh(["ip", "netns", "del", ns], check=False)
        found.append("netns " + ns)
    tmp = tempfile.gettempdir()
    dirs = glob.glob(os.path.join(tmp, pre + "*" if lab_id is None else pre.rstrip("-")))
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(d + "/" in cmd for d in dirs):
            try:
                os.kill(int(pid), signal.SIGKILL)
                found.append("process %s (%s)" % (pid, cmd[:60]))
            except OSError:
                pass
    with open("/proc/mounts") as f:
        mounts = [ln.split()[1] for ln in f if any(ln.split()[1].startswith(d) for d in dirs)]
    for m in sorted(mounts, reverse=True):
        sh(["umount", "-l", m], check=False)
        found.append("mount " + m)
    r = sh(["ip", "-o", "link", "show"], check=False)
    for ln in r.stdout.splitlines():
        name = ln.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            sh(["ip", "link", "del", name], check=False)
            found.append("link " + name)
    if remove_dirs:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
            found.append("dir " + d)
    if not quiet:
        for f in found:
            print("clean: removed %s" % f)
    return found


# --- the image ----------------------------------------------------------------------------
def build_image(d):
    """A one-layer OCI image (a text file), as blobs + manifest in d. Returns the manifest."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = b"hello from the k0s-tsagent lab\n"
        ti = tarfile.TarInfo("hello.txt")
        ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
        t.addfile(ti, io.BytesIO(data))
    layer_tar = buf.getvalue()
    os.makedirs(d, exist_ok=True)
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps({"architecture": arch, "os": "linux", "config": {}, "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]}})
    config = config.encode()
    blobs = {}
    for b in (layer, config):
        dg = "sha256:" + hashlib.sha256(b).hexdigest()
        blobs[dg] = os.path.join(d, dg.replace(":", "-"))
        with open(blobs[dg], "wb") as f:
            f.write(b)
    oci = "application/vnd.oci.image"
    manifest = {"schemaVersion": 2, "mediaType": oci + ".manifest.v1+json",
                "config": {"mediaType": oci + ".config.v1+json",
                           "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                           "size": len(config)},
                "layers": [{"mediaType": oci + ".layer.v1.tar+gzip",
                            "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                            "size": len(layer)}]}
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return blobs


def cri_pull_request(ref):
    """PullImageRequest{image: ImageSpec{image: ref}} in a gRPC frame (one-byte lengths)."""
    n = len(ref.encode())
    if n >= 120:
        raise ValueError("reference too long")
    msg = bytes([0x0a, n + 2, 0x0a, n]) + ref.encode()
    return b"\0" + len(msg).to_bytes(4, "big") + msg


# --- nodes --------------------------------------------------------------------------------
class Node:
    def __init__(self, lab, name, site, idx, registry, worker=True):
        self.lab = lab
        self.name = name
        self.site = site        # site index
        self.idx = idx          # index within the site (1-based)
        self.registry = registry
        self.worker = worker
        self.ns = "%s%s-%s" % (PREFIX, lab.id, name)
        self.dir = os.path.join(lab.dir, "nodes", name)
        self.underlay = "10.200.%d.%d" % (site + 1, 10 + idx)
        self.ipv4 = "100.64.%d.%d" % (site + 1, idx)
        self.ipv6 = "fd7a:115c:a1e0::%d:%d" % (site + 1, idx)
        self.procs = {}         # name -> Popen
        self.init = None
        self.powered = False
        self.gen = 0            # boot generation: threads of an earlier boot stop
        self.ctrd_ready = None  # when this boot's containerd answered
        self.orig_ipv4, self.orig_ipv6 = self.ipv4, self.ipv6

    def path(self, *p):
        return os.path.join(self.dir, *p)

    @property
    def site_name(self):
        return self.lab.site_names[self.site]

    def enter(self, argv):
        """argv run inside the node's network and mount namespaces (its init's)."""
        return ["nsenter", "-t", str(self.init.pid), "-m", "-n", "--"] + list(argv)

    def in_net(self, argv):
        return ["nsenter", "--net=/run/netns/" + self.ns, "--"] + list(argv)

    def start(self, what, argv, env=None):
        log = open(self.path("%s.log" % what), "a")
        p = subprocess.Popen(self.enter(argv), stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        self.procs[what] = p
        return p

    def ts(self, cmd, timeout=5.0):
        """A command to the node's tailscaled control socket."""
        import socket as so
        s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.path("run", "tailscaled.ctl"))
            s.sendall((json.dumps(cmd) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                c = s.recv(65536)
                if not c:
                    break
                data += c
        finally:
            s.close()
        r = json.loads(data)
        if not r.get("ok"):
            raise Fail("%s tailscaled: %s" % (self.name, r.get("error")))
        return r

    def localapi(self, path="/localapi/v0/status"):
        r = sh(["curl", "-sS", "--max-time", "3", "--unix-socket",
                self.path("run", "tailscale", "tailscaled.sock"),
                "http://local-tailscaled.sock" + path], check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    # events ------------------------------------------------------------------------------
    def ts_events(self, since=0.0):
        return [e for e in read_jsonl(self.path("ts-events.jsonl")) if e["t"] >= since]

    def k0s_events(self, since=0.0, event=None):
        return [e for e in read_jsonl(self.path("k0s.log"))
                if e["time"] >= since and (event is None or e["event"] == event)]

    def k0s_running(self):
        """The pid of the newest stand-in k0s that is alive, or None."""
        starts = self.k0s_events(event="start")
        if starts and pid_alive(starts[-1]["pid"]):
            return starts[-1]["pid"]
        return None

    def link(self):
        r = sh(["ip", "-n", self.ns, "-j", "addr", "show", "dev", "tailscale0"], check=False)
        if r.returncode != 0 or not r.stdout.strip():
            return None
        j = json.loads(r.stdout)
        if not j:
            return None
        return {"ifindex": j[0]["ifindex"],
                "ipv4": [a["local"] for a in j[0].get("addr_info", []) if a["family"] == "inet"]}

    def http_get(self, url, timeout=2):
        r = sh(self.in_net(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "--max-time", str(timeout), url]), check=False, timeout=timeout + 5)
        return r.stdout.strip() == "200"

    def cri_pull(self, ref, timeout=30):
        """CRI PullImage through the node's containerd (which reads the agent's drop-in and
        hosts.toml). Returns (ok, message)."""
        req = self.path("run", "pull-req.bin")
        with open(req, "wb") as f:
            f.write(cri_pull_request(ref))
        hdr = self.path("run", "pull-headers.txt")
        r = sh(["curl", "-sS", "--max-time", str(timeout), "--http2-prior-knowledge",
                "--unix-socket", self.path("run", "containerd.sock"),
                "-H", "content-type: application/grpc", "-H", "te: trailers",
                "--data-binary", "@" + req, "-D", hdr, "-o", "/dev/null",
                "http://localhost/runtime.v1.ImageService/PullImage"],
               check=False, timeout=timeout + 5)
        if r.returncode != 0:
            return False, r.stderr.strip()
        with open(hdr) as f:
            h = f.read().replace("\r", "")
        if "grpc-status: 0" in h:
            return True, "ok"
        msg = [ln for ln in h.splitlines() if ln.startswith("grpc-message")]
        return False, (msg[0] if msg else h.strip()[-200:])

    def image_rm(self, ref):
        sh(["ctr", "--address", self.path("run", "containerd.sock"), "-n", "k8s.io", "images",
            "rm", ref], check=False)


def read_jsonl(path):
    try:
        with open(path) as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split("\n")[:-1]:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


class Lab:
    def __init__(self, sites=2, nodes=3, registries_per_site=1, settle="2s", agent=None,
                 fake_k0s=None, seed=None, log=None, lab_id=None, peer_endpoints=True,
                 control_offline_after=None):
        self.peer_endpoints = peer_endpoints
        self.control_offline_after = control_offline_after or CONTROL_OFFLINE_AFTER
        self.netns_dir_existed = os.path.isdir("/run/netns")
        become_subreaper()
        self.id = lab_id or "%04x" % random.randrange(0x10000)
        self.dir = os.path.join(tempfile.gettempdir(), PREFIX + self.id)
        env = os.environ.get
        self.agent = os.path.abspath(agent or env("LAB_AGENT") or env("AGENT", ""))
        self.fake_k0s = os.path.abspath(fake_k0s or env("LAB_FAKE_K0S") or env("FAKE_K0S", ""))
        for what, p in (("AGENT", self.agent), ("FAKE_K0S", self.fake_k0s)):
            if not os.access(p, os.X_OK):
                raise Fail("%s (%s) is not an executable" % (what, p))
        self.settle = settle
        self.rng = random.Random(seed)
        self.log = log or (lambda s: print(s, flush=True))
        self.site_names = [chr(ord("a") + i) for i in range(sites)]
        self.nodes = []
        per = {}
        for i in range(nodes):
            s = i % sites
            per[s] = per.get(s, 0) + 1
            self.nodes.append(Node(self, "%s%d" % (self.site_names[s], per[s]), s, per[s],
                                   registry=per[s] <= registries_per_site))
        self.wan = "%s%s-wan" % (PREFIX, self.id)
        self.timeline = []
        self.lock = threading.Lock()

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def site_ns(self, s):
        return "%s%s-site-%s" % (PREFIX, self.id, self.site_names[s])

    def site_nodes(self, s):
        return [n for n in self.nodes if n.site == s]

    def registry_nodes(self):
        return [n for n in self.nodes if n.registry]

    def mark(self, t, who, what):
        with self.lock:
            self.timeline.append((t, who, what))

    # --- underlay -------------------------------------------------------------------------
    def ip(self, ns, *args, check=True):
        return sh(["ip", "-n", ns, *args], check=check)

    def sysctl(self, ns, key, val):
        sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "%s=%s" % (key, val)])

    def build_underlay(self):
        sh(["ip", "netns", "add", self.wan])
        self.ip(self.wan, "link", "set", "lo", "up")
        self.sysctl(self.wan, "net.ipv4.ip_forward", 1)
        for s, _ in enumerate(self.site_names):
            ns = self.site_ns(s)
            sh(["ip", "netns", "add", ns])
            self.ip(ns, "link", "set", "lo", "up")
            self.sysctl(ns, "net.ipv4.ip_forward", 1)
            self.ip(ns, "link", "add", "br0", "type", "bridge")
            self.ip(ns, "addr", "add", "10.200.%d.1/24" % (s + 1), "dev", "br0")
            self.ip(ns, "link", "set", "br0", "up")
            # uplink: site "uplink" <-> wan "site-X"
            self.ip(ns, "link", "add", "uplink", "type", "veth", "peer", "name",
                    "site-" + self.site_names[s], "netns", self.wan)
            self.ip(ns, "addr", "add", "10.199.%d.2/30" % (s + 1), "dev", "uplink")
            self.ip(self.wan, "addr", "add", "10.199.%d.1/30" % (s + 1), "dev",
                    "site-" + self.site_names[s])
            self.uplink(s, True)
        for n in self.nodes:
            sh(["ip", "netns", "add", n.ns])
            self.ip(n.ns, "link", "set", "lo", "up")
            self.ip(n.ns, "link", "add", "eth0", "type", "veth", "peer", "name", n.name,
                    "netns", self.site_ns(n.site))
            self.ip(self.site_ns(n.site), "link", "set", n.name, "master", "br0")
            self.ip(n.ns, "addr", "add", n.underlay + "/24", "dev", "eth0")
            # a registry binds the tailnet address whether or not tailscale0 has it yet
            self.sysctl(n.ns, "net.ipv4.ip_nonlocal_bind", 1)
            self.node_links(n, True)

    def uplink(self, s, up):
        """A site's uplink to the WAN up or down (the kernel drops the routes over a link
        that goes down, so they are put back with it)."""
        st = "up" if up else "down"
        self.ip(self.site_ns(s), "link", "set", "uplink", st)
        self.ip(self.wan, "link", "set", "site-" + self.site_names[s], st)
        if up:
            self.ip(self.site_ns(s), "route", "replace", "default", "via",
                    "10.199.%d.1" % (s + 1))
            self.ip(self.wan, "route", "replace", "10.200.%d.0/24" % (s + 1), "via",
                    "10.199.%d.2" % (s + 1))

    def node_links(self, n, up):
        st = "up" if up else "down"
        self.ip(self.site_ns(n.site), "link", "set", n.name, st)
        self.ip(n.ns, "link", "set", "eth0", st)
        if up:
            self.ip(n.ns, "route", "replace", "default", "via", "10.200.%d.1" % (n.site + 1))

    # --- per-node files -----------------------------------------------------------------------
    def write_node_files(self):
        keys = {}
        for n in self.nodes:
            priv = sh(["wg", "genkey"]).stdout.strip()
            pub = sh(["wg", "pubkey"], input=priv).stdout.strip()
            keys[n.name] = pub
            write(n.path("wg.key"), priv + "\n", 0o600)
            write(n.path("etc", "k0stoken"), "H4sIAAAAAAAC/lab-join-token\n")
        for n in self.nodes:
            n.pubkey = keys[n.name]
        for n in self.nodes:
            self.write_ts_config(n)
            write(n.path("agent.yaml"), "# k0s-tsagent lab node %s\n" % n.name
                  + to_yaml(self.agent_config(n)))
            if n.worker:
                write(n.path("containerd.toml"), self.containerd_config(n))
            if n.registry:
                write(n.path("registry.yml"), "version: 0.1\nlog:\n  level: info\nstorage:\n"
                      "  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s:%d\n"
                      % (n.path("registry-data"), n.ipv4, REG_PORT))

    def write_ts_config(self, n):
        cfg = {"name": n.name, "ipv4": n.ipv4, "ipv6": n.ipv6, "public_key": n.pubkey,
               "private_key_file": n.path("wg.key"), "listen_port": WG_PORT,
               "endpoint": "%s:%d" % (n.underlay, WG_PORT),
               # the "control server": every node's heartbeat file (tailscaled.py)
               "control_dir": os.path.join(self.dir, "control"),
               "control_offline_after": self.control_offline_after,
               "peers": [{"name": p.name, "key": p.pubkey, "ipv4": p.ipv4, "ipv6": p.ipv6,
                          "endpoint": "%s:%d" % (p.underlay, WG_PORT)}
                         for p in self.nodes if p is not n]}
        write(n.path("ts.json"), json.dumps(cfg, indent=1))

    def endpoint(self, r):
        """A registry node as a hosts.toml endpoint in the config: `peer: NAME` (the agent
        resolves the name from the LocalAPI's peers, or to itself, and orders reachable peers
        first) or a static `url:`."""
        if self.peer_endpoints:
            return {"peer": r.name, "port": REG_PORT, "scheme": "http"}
        return {"url": "http://%s:%d" % (r.ipv4, REG_PORT)}

    def registries(self):
        regs = [{"name": "reg-%s.lab:%d" % (r.site_name, REG_PORT),
                 "endpoints": [self.endpoint(r)]} for r in self.registry_nodes()]
        # The mirror: the last site's registry first, the others as fallbacks (drill 3 cuts
        # the first one's site).
        order = sorted(self.registry_nodes(), key=lambda r: -r.site)
        regs.append({"name": MIRROR, "endpoints": [self.endpoint(r) for r in order]})
        return regs

    def agent_config(self, n):
        return {
            "interface": "tailscale0",
            "role": "worker",
            "tailscale": {"socket": n.path("run", "tailscale", "tailscaled.sock"),
                          "require_running": True},
            "k0s": {"binary": self.fake_k0s, "version": "auto",
                    "token_file": n.path("etc", "k0stoken"),
                    "base_config": n.path("etc", "k0s.yaml"),
                    "config": n.path("etc", "k0s-tsagent.yaml"), "args": [],
                    "status_socket": n.path("run", "k0s-status.sock")},
            "containerd": {"dropin": n.path("etc", "containerd.d", "registry.toml"),
                           "certs_dir": n.path("etc", "certs.d")},
            "registries": self.registries(),
            "health": {"interval": "0s"},
            # the nodes share the host's clock, which is right: nothing to wait for
            "clock": {"wait_sync": False},
            "timing": {"settle": self.settle, "restart_backoff": ["500ms", "4s"],
                       "stop_timeout": "3s"},
            "state_dir": n.path("run", "k0s-tsagent"),
            "persist_dir": n.path("persist"),
            "metrics": {"textfile": n.path("run", "metrics", "k0s-tsagent.prom")},
        }

    def containerd_config(self, n):
        return ('version = 2\nroot = "%s"\nstate = "%s"\nimports = ["%s"]\n[grpc]\n'
                '  address = "%s"\n[ttrpc]\n  address = "%s.ttrpc"\n'
                '[plugins."io.containerd.internal.v1.opt"]\n  path = "%s"\n'
                % (n.path("containerd", "root"), n.path("run", "containerd", "state"),
                   n.path("etc", "containerd.d", "*.toml"), n.path("run", "containerd.sock"),
                   n.path("run", "containerd.sock"), n.path("containerd", "opt")))

    # --- power ------------------------------------------------------------------------------
    def power_off(self, n):
        n.gen += 1
        n.ctrd_ready = None
        kill_netns(n.ns)
        for p in list(n.procs.values()) + ([n.init] if n.init else []):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        n.procs = {}
        n.init = None
        n.powered = False

    def cut_site(self, s):
        """Power cut: every process of every node of the site at once, then its links."""
        t = time.time()
        nodes = self.site_nodes(s)
        threads = [threading.Thread(target=self.power_off, args=(n,)) for n in nodes]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for n in nodes:
            self.node_links(n, False)
        self.uplink(s, False)
        self.ip(self.site_ns(s), "link", "set", "br0", "down")
        self.mark(t, "site " + self.site_names[s], "power cut: %d nodes killed, links down"
                  % len(nodes))
        return t

    def restore_site_links(self, s):
        self.ip(self.site_ns(s), "link", "set", "br0", "up")
        self.uplink(s, True)
        for n in self.site_nodes(s):
            self.node_links(n, True)

    def boot(self, n, delay=0.0, ts_delay=0.0, control_unreachable=False):
        """Power on one node: its /run is empty again; after `delay` its init and the agent
        start (systemd starts k0s-tsagent early: it waits for the tailnet), tailscaled
        `ts_delay` later, the registry after tailscaled, containerd when k0s starts (k0s
        worker runs containerd; the stand-in k0s does not)."""
        if delay:
            time.sleep(delay)
        n.gen += 1
        n.ctrd_ready = None
        shutil.rmtree(n.path("run"), ignore_errors=True)
        os.makedirs(n.path("run", "tailscale"))
        t = time.time()
        n.init = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + n.ns, "unshare", "-m", "--propagation",
             "private", "sh", "-c",
             "mount -t tmpfs -o mode=0755 lab-run /run && mkdir /run/wireguard && "
             "echo up && exec sleep infinity"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True)
        if n.init.stdout.readline().strip() != b"up":
            raise Fail("%s: node init failed" % n.name)
        n.powered = True
        self.mark(t, n.name, "boot")
        self.start_agent(n)
        if ts_delay:
            time.sleep(ts_delay)
        self.start_tailscaled(n, control_unreachable)
        if n.registry:
            n.start("registry", ["docker-registry", "serve", n.path("registry.yml")])
            self.mark(time.time(), n.name, "registry started")
        if n.worker:
            threading.Thread(target=self.containerd_on_k0s, args=(n, n.gen, t),
                             daemon=True).start()
        return t

    def start_agent(self, n):
        env = dict(os.environ, FAKE_K0S_LOG=n.path("k0s.log"), FAKE_K0S_VERSION=K0S_VERSION,
                   K0S_TSAGENT_LOG_LEVEL="debug")
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM", "LISTEN_FDS"):
            env.pop(k, None)
        n.start("agent", [self.agent, "--config", n.path("agent.yaml"), "run"], env=env)
        self.mark(time.time(), n.name, "agent started")

    def start_tailscaled(self, n, control_unreachable=False):
        argv = [PY, os.path.join(HERE, "tailscaled.py"), "--config", n.path("ts.json"),
                "--socket", n.path("run", "tailscale", "tailscaled.sock"),
                "--control", n.path("run", "tailscaled.ctl"),
                "--events", n.path("ts-events.jsonl"), "--wg-log", n.path("wireguard-go.log")]
        if control_unreachable:
            argv.append("--control-unreachable")
        n.start("tailscaled", argv)
        self.mark(time.time(), n.name, "tailscaled started" + (
            " (control server unreachable)" if control_unreachable else ""))

    def containerd_on_k0s(self, n, gen, since):
        """k0s worker runs containerd itself; the stand-in k0s does not. So once the stand-in
        k0s of this boot (generation `gen`) has started, start the node's containerd."""
        while n.gen == gen and not n.k0s_events(since, "start"):
            time.sleep(0.01)
        if n.gen != gen:
            return
        n.start("containerd", ["containerd", "--config", n.path("containerd.toml")])
        sock = n.path("run", "containerd.sock")
        ready = wait_until(lambda: n.gen != gen or os.path.exists(sock) and sh(
            ["ctr", "--address", sock, "version"], check=False).returncode == 0, 30, 0.05)
        if ready and n.gen == gen:
            n.ctrd_ready = time.time()
            self.mark(n.ctrd_ready, n.name, "containerd ready")

    def wait_containerd(self, n, timeout=30):
        """The time this boot's containerd became ready, or None."""
        return wait_until(lambda: n.ctrd_ready, timeout, 0.01)

    def wait_node_up(self, n, since, timeout=20):
        """tailscale0 with the address and k0s started, both after `since`."""
        def ok():
            addr = [e for e in n.ts_events(since) if e["ev"] == "addr" and e["addrs"]]
            return addr and n.k0s_events(since, "start")
        return wait_until(ok, timeout, 0.05)

    # --- whole lab --------------------------------------------------------------------------
    def up(self):
        """Build and boot everything, push the image to every registry, pull it once on every
        worker (so the mesh and every agent's files are proven before a drill)."""
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        os.makedirs(os.path.join(self.dir, "control"))
        t0 = time.time()
        self.build_underlay()
        self.write_node_files()
        blobs = build_image(os.path.join(self.dir, "image"))
        with open(os.path.join(self.dir, "lab.json"), "w") as f:
            json.dump({"id": self.id, "nodes": [n.name for n in self.nodes]}, f)
        threads = []
        for n in self.nodes:
            threads.append(threading.Thread(target=self.boot, args=(n,)))
            threads[-1].start()
        for th in threads:
            th.join()
        for n in self.nodes:
            if not self.wait_node_up(n, t0, 30):
                raise Fail("%s did not come up: %s" % (n.name, tail(n.path("agent.log"))))
            if n.worker and not self.wait_containerd(n):
                raise Fail("%s: containerd did not come up: %s" % (
                    n.name, tail(n.path("containerd.log"))))
        for r in self.registry_nodes():
            self.push_image(r, blobs)
        self.log("lab %s up in %.1f s: %s (dir %s)" % (
            self.id, time.time() - t0, ", ".join("%s=%s@site-%s%s" % (
                n.name, n.ipv4, n.site_name, "+registry" if n.registry else "")
                for n in self.nodes), self.dir))

    def push_image(self, r, blobs):
        base = "http://%s:%d/v2/lab/tiny" % (r.ipv4, REG_PORT)
        ok = wait_until(lambda: r.http_get("http://%s:%d/v2/" % (r.ipv4, REG_PORT), 1), 15, 0.1)
        if not ok:
            raise Fail("%s: registry not answering: %s" % (r.name, tail(r.path("registry.log"))))
        for dg, path in blobs.items():
            h = sh(r.in_net(["curl", "-fsS", "--max-time", "10", "-X", "POST", "-o",
                             "/dev/null", "-D", "-", base + "/blobs/uploads/"])).stdout
            loc = [ln.split(":", 1)[1].strip() for ln in h.replace("\r", "").splitlines()
                   if ln.lower().startswith("location:")][0]
            if not loc.startswith("http"):
                loc = "http://%s:%d%s" % (r.ipv4, REG_PORT, loc)
            loc += ("&" if "?" in loc else "?") + "digest=" + dg
            sh(r.in_net(["curl", "-fsS", "--max-time", "10", "-X", "PUT", "-H",
                         "Content-Type: application/octet-stream", "--data-binary", "@" + path,
                         "-o", "/dev/null", loc]))
        sh(r.in_net(["curl", "-fsS", "--max-time", "10", "-X", "PUT", "-H",
                     "Content-Type: application/vnd.oci.image.manifest.v1+json",
                     "--data-binary", "@" + os.path.join(self.dir, "image", "manifest.json"),
                     "-o", "/dev/null", base + "/manifests/1"]))

    def down(self, keep=False):
        clean(self.id, quiet=True, remove_dirs=not keep)
        # every orphan of the lab came to us (subreaper): collect them all
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    time.sleep(0.02)
            except ChildProcessError:
                break
        if not self.netns_dir_existed:
            try:
                os.rmdir("/run/netns")  # `ip netns add` made it for us; leave no trace
            except OSError:
                pass


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no %s)" % path


def main(argv=None):
    sys.path.insert(0, HERE)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sites", type=int, default=2)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--registries-per-site", type=int, default=1)
    p.add_argument("--settle", default="2s", help="the agents' timing.settle")
    p.add_argument("--agent")
    p.add_argument("--fake-k0s")
    p.add_argument("--seed", type=int)
    p.add_argument("--id", help="the lab's id (names: tslab-ID-...; default random)")
    p.add_argument("--keep", action="store_true", help="keep the lab directory (logs)")
    p.add_argument("--control-offline-after", type=float, metavar="SECONDS",
                   help="the lab control server shows a node offline this long after its last "
                   "heartbeat (default %.1f)" % CONTROL_OFFLINE_AFTER)
    p.add_argument("--endpoints", choices=["url", "peer"], default="peer",
                   help="the registries' endpoints: peer: <hostname> (default) or static url:")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="build and boot a lab, leave it running, print its id")
    d = sub.add_parser("down", help="tear down the lab with this id")
    d.add_argument("id")
    sub.add_parser("clean", help="remove every lab leftover (by the name prefix)")
    sub.add_parser("check", help="up, HTTP between two sites over tailscale0, cut, down")
    dr = sub.add_parser("drill", help="run drills on a fresh lab, then tear it down")
    dr.add_argument("which", choices=["1", "2", "3", "4", "all"])
    dr.add_argument("--outage", type=float,
                    help="drill 2: seconds the control server is unreachable (default 60, "
                    "15 with --quick)")
    dr.add_argument("--quick", action="store_true",
                    help="tests/run: drill 2's outage 15 s instead of 60 s")
    dr.add_argument("--cut-site", default="a", help="drill 1: the site whose power is cut")
    o = p.parse_args(argv)
    if o.cmd == "clean":
        clean()
        return 0
    if o.cmd == "down":
        clean(o.id, remove_dirs=not o.keep)
        return 0
    try:
        prerequisites()
    except Skip as e:
        print("SKIP: %s" % e)
        return SKIP
    lab = Lab(o.sites, o.nodes, o.registries_per_site, o.settle, o.agent, o.fake_k0s,
              o.seed, lab_id=o.id, peer_endpoints=o.endpoints == "peer",
              control_offline_after=o.control_offline_after)
    if o.cmd == "up":
        try:
            lab.up()
        except BaseException:
            lab.down(keep=True)
            raise
        print(lab.id)
        return 0
    import drills
    if o.cmd == "drill" and o.outage is None:
        o.outage = 15.0 if o.quick else 60.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rc = 1
    try:
        lab.up()
        rc = drills.run(lab, o)
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
        rc = 1
    finally:
        lab.down(keep=o.keep)
        left = [f for f in clean(lab.id, quiet=True, remove_dirs=False)]
        if left:
            print("FAIL: leftovers after teardown: %s" % left)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
