# SPDX-License-Identifier: MIT
"""The lab's tailscaled: one per node, run inside the node's network and mount namespaces.

It does what tailscaled does that the agent can see, with a real data path:
  - listens on its LocalAPI socket first (shared facts tailscale.md §1), then starts
    `wireguard-go tailscale0` (the engine tailscaled embeds; a TUN that dies with the process,
    so a restart gives a new ifindex), configures the full mesh with `wg set` (keys, endpoints
    on the underlay, persistent keepalive 1 s), sets MTU 1280 and the link up, adds one /32 per
    peer and fd7a:115c:a1e0::/48 as routes, then the node's 100.64/10 /32 and fd7a::/128
    addresses, and only then says BackendState Running (tailscale.md §4: addresses come with
    the netmap);
  - serves GET /localapi/v0/status (?peers=false honoured) and /localapi/v0/watch-ipn-bus
    (chunked NDJSON, integer State, masks 2 / 4096 / 16384) as tailscale.md §2-§3 describe;
  - derives every Peer's data-path fields from `wg show tailscale0 dump`, sampled every 0.5 s,
    as tailscale's wgengine/magicsock/endpoint.go populatePeerStatus fills them:
    LastHandshake; RxBytes/TxBytes; LastWrite and Active from the last time we sent to the
    peer (lastSendExt; Active: within sessionActiveTimeout, 45 s; all empty if we never sent);
    CurAddr only while the direct path is trusted (addrForSendLocked: bestAddr and now before
    trustBestAddrUntil, which a pong pushes trustUDPAddrDuration = 6.5 s ahead,
    magicsock.go): here, the peer's rx bytes grew within the last 6.5 s (keepalive 1 s makes
    them grow while the peer lives); InEngine (a handshake happened);
  - Online is the control server's view, not the data path's: every stand-in touches
    CONTROL_DIR/<its name> every 0.5 s while its "control connection" is up (the map
    long-poll); control shows a peer online while that file is fresher than
    CONTROL_OFFLINE_AFTER (8.5 s: see there), and pushes PeersChanged when that flips;
  - "control server unreachable" (control socket {"cmd":"control","reachable":false}):
    BackendState stays Running, Self.Online is false, this node stops heartbeating (control
    sees its long-poll drop), the peers' Online is frozen at its last value (stale), while the
    data path keeps working.
Events (start, tun, addr, running, ...) go as JSON lines with wall-clock times to --events.

Control socket (--control, unix stream, one JSON object per connection, answered with one):
  {"cmd":"get"}
  {"cmd":"control","reachable":bool}
  {"cmd":"ips","ipv4":..,"ipv6":..}             the node's own addresses move (SelfChange)
  {"cmd":"peer","key":..,"ipv4":..,"ipv6":..}   a peer's addresses moved (allowed-ips, route)
  {"cmd":"state","state":"Stopped"|...}         BackendState (addresses follow it)
Python stdlib only. SIGTERM: link down, socket removed, wireguard-go stopped, exit."""

import argparse
import base64
import datetime
import http.server
import json
import os
import queue
import secrets
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import tsfake  # noqa: E402 -- the control-socket protocol is the fake tailscaled's

VERSION = "1.102.3-tlab-gwireguardgo"
HOST = "local-tailscaled.sock"
STATES = ["NoState", "InUseOtherUser", "NeedsLogin", "NeedsMachineAuth", "Stopped",
          "Starting", "Running"]
ZERO_TIME = "0001-01-01T00:00:00Z"
USER_ID = 4567890123456789
IFNAME = "tailscale0"
ULA = "fd7a:115c:a1e0::/48"
ACTIVE_WINDOW = 45.0    # tailscale's Active: we sent to it within sessionActiveTimeout (45 s)
TRUST_UDP_ADDR = 6.5    # magicsock.go trustUDPAddrDuration: CurAddr lasts 6.5 s past a pong
HEARTBEAT = 0.5         # a stand-in's "map long-poll": it touches its control file this often
# Control's view: a node whose heartbeat is older than this is offline. Longer than the
# CurAddr trust (6.5 s after the last packet, +0.5 s sampling): real control servers notice a
# dead map long-poll much later still, so a peer's CurAddr is gone before control's offline
# PeersChanged arrives, and the agent's /status fetch on that event sees both.
# (ts.json "control_offline_after" overrides it: lab.py --control-offline-after)
CONTROL_OFFLINE_AFTER = 8.5
NOTIFY_INITIAL_STATE = 2
NOTIFY_PEER_CHANGES = 4096
NOTIFY_INITIAL_STATUS = 16384


def rfc3339(t):
    if not t:
        return ZERO_TIME
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_key(wg_key):
    """tailscale's node key is the WireGuard public key: "nodekey:" + its 32 bytes in hex."""
    return "nodekey:" + base64.b64decode(wg_key).hex()


def run(argv, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r


def notify_line(**f):
    """ipn.Notify as json.Encoder writes it: untagged fields always present (null when
    unset), omitzero ones only when set (tailscale.md §3)."""
    d = {"Version": VERSION}
    if "SessionID" in f:
        d["SessionID"] = f.pop("SessionID")
    for k in ("ErrMessage", "LoginFinished", "State", "Prefs"):
        d[k] = f.pop(k, None)
    for k in ("SelfChange", "InitialStatus", "PeersChanged"):
        if k in f:
            d[k] = f.pop(k)
    for k in ("NetMap", "Engine", "BrowseToURL", "DriveShares"):
        d[k] = f.pop(k, None)
    return (json.dumps(d, separators=(",", ":")) + "\n").encode()


class Peer:
    def __init__(self, i, p):
        self.i = i
        self.name = p["name"]
        self.key = p["key"]            # WireGuard public key (base64)
        self.endpoint = p["endpoint"]  # underlay ip:port
        self.ipv4 = p["ipv4"]
        self.ipv6 = p.get("ipv6")
        self.rx = self.tx = 0
        self.handshake = 0
        self.rx_changed = 0.0          # wall-clock time the rx counter last moved
        self.tx_changed = 0.0          # ... and the tx counter (magicsock's lastSendExt)
        self.online = False            # what control says (frozen while control is away)
        self.seen = 0.0                # control's last heartbeat of the peer (LastSeen)
        self.node_key = node_key(self.key)

    def ips(self):
        return [a for a in (self.ipv4, self.ipv6) if a]

    def allowed(self):
        return ",".join("%s/%d" % (a, 128 if ":" in a else 32) for a in self.ips())


class Tailscaled:
    def __init__(self, opts, cfg):
        self.opts = opts
        self.cfg = cfg
        self.lock = threading.RLock()
        self.state = "NoState"
        self.ipv4 = cfg["ipv4"]
        self.ipv6 = cfg.get("ipv6")
        self.control_ok = not opts.control_unreachable
        self.offline_after = float(cfg.get("control_offline_after", CONTROL_OFFLINE_AFTER))
        self.peers = [Peer(i, p) for i, p in enumerate(cfg["peers"])]
        self.watchers = []
        self.addrs_on_tun = []
        self.wg = None
        self.events = open(opts.events, "a", buffering=1) if opts.events else None

    def event(self, ev, **kw):
        if self.events:
            kw.update({"t": time.time(), "ev": ev, "pid": os.getpid()})
            self.events.write(json.dumps(kw) + "\n")

    def ip(self, *args, check=True):
        return run(["ip", *args], check=check)

    # --- wireguard-go -------------------------------------------------------------------
    def start_engine(self):
        sock = "/run/wireguard/%s.sock" % IFNAME
        try:
            os.unlink(sock)  # left by a SIGKILLed wireguard-go (this node's own /run)
        except FileNotFoundError:
            pass
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1",
                   WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1", LOG_LEVEL="error")
        log = open(self.opts.wg_log, "a") if self.opts.wg_log else subprocess.DEVNULL
        self.wg = subprocess.Popen(["wireguard-go", "-f", IFNAME], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while not os.path.exists(sock):
            if self.wg.poll() is not None or time.monotonic() > end:
                raise RuntimeError("wireguard-go did not come up (rc %s)" % self.wg.poll())
            time.sleep(0.01)
        argv = ["wg", "set", IFNAME, "private-key", self.cfg["private_key_file"],
                "listen-port", str(self.cfg["listen_port"])]
        for p in self.peers:
            argv += ["peer", p.key, "allowed-ips", p.allowed(), "endpoint", p.endpoint,
                     "persistent-keepalive", "1"]
        run(argv)
        self.ip("link", "set", IFNAME, "mtu", "1280", "up")
        self.event("tun", ifindex=socket.if_nametoindex(IFNAME))
        for p in self.peers:
            self.ip("route", "replace", p.ipv4 + "/32", "dev", IFNAME)
        self.ip("-6", "route", "replace", ULA, "dev", IFNAME, check=False)

    def sync_addrs(self):
        """The router's Set(): the netmap's addresses while Running. Adds before it deletes."""
        want = [a for a in (self.ipv4, self.ipv6) if a] if self.state == "Running" else []
        for a in want:
            if a not in self.addrs_on_tun:
                if ":" in a:
                    self.ip("-6", "addr", "replace", a + "/128", "dev", IFNAME, "nodad")
                else:
                    self.ip("addr", "replace", a + "/32", "dev", IFNAME)
        for a in self.addrs_on_tun:
            if a not in want:
                self.ip("addr", "del", a + ("/128" if ":" in a else "/32"), "dev", IFNAME,
                        check=False)
        if want != self.addrs_on_tun:
            self.event("addr", addrs=want)
        self.addrs_on_tun = list(want)

    # --- peers from `wg show dump` ------------------------------------------------------
    def sample(self):
        r = run(["wg", "show", IFNAME, "dump"], check=False)
        if r.returncode != 0:
            return
        now = time.time()
        by_key = {p.key: p for p in self.peers}
        changed = []
        with self.lock:
            for line in r.stdout.splitlines()[1:]:
                f = line.split("\t")
                if len(f) < 8 or f[0] not in by_key:
                    continue
                p = by_key[f[0]]
                rx, tx = int(f[5]), int(f[6])
                if rx != p.rx:
                    p.rx_changed = now
                if int(f[6]) != p.tx:
                    p.tx_changed = now
                p.rx, p.tx, p.handshake = rx, tx, int(f[4])
                if f[2] != "(none)":
                    p.endpoint = f[2]
            changed = self.control_view(now)
            for p in changed:
                self.event("peer-online" if p.online else "peer-offline", peer=p.name)
            if changed:
                self.broadcast(notify_line(PeersChanged=[self.node_json(p) for p in changed]),
                               NOTIFY_PEER_CHANGES)

    # --- the control server's view ------------------------------------------------------
    def heartbeat_path(self, name):
        return os.path.join(self.cfg["control_dir"], name)

    def control_view(self, now):
        """While control is reachable: each peer's Online from its heartbeat. Returns the
        peers whose Online flipped (control would push them as PeersChanged)."""
        changed = []
        if not self.control_ok or not self.cfg.get("control_dir"):
            return changed
        for p in self.peers:
            try:
                p.seen = os.stat(self.heartbeat_path(p.name)).st_mtime
            except OSError:
                p.seen = 0.0
            online = now - p.seen < self.offline_after
            if online != p.online:
                p.online = online
                changed.append(p)
        return changed

    def heartbeat(self):
        """This node's map long-poll: control sees the node online while it runs."""
        path = self.heartbeat_path(self.cfg["name"])
        while True:
            if self.control_ok:
                try:
                    with open(path, "a"):
                        pass
                    os.utime(path)
                except OSError as e:
                    sys.stderr.write("tailscaled: heartbeat: %s\n" % e)
            time.sleep(HEARTBEAT)

    def sampler(self):
        while True:
            try:
                self.sample()
            except Exception as e:  # noqa: BLE001 -- keep sampling through a wg hiccup
                sys.stderr.write("tailscaled: sample: %s\n" % e)
            time.sleep(0.5)

    # --- status -------------------------------------------------------------------------
    def suffix(self):
        return self.cfg.get("suffix", "lab.ts.net")

    def node_json(self, p):
        """A trimmed tailcfg.Node for PeersChanged."""
        return {"ID": 1837265409182001 + p.i, "StableID": "n%05dLABCNTRL" % p.i,
                "Name": "%s.%s." % (p.name, self.suffix()), "User": USER_ID, "Key": p.node_key,
                "Addresses": p.allowed().split(","), "AllowedIPs": p.allowed().split(","),
                "Online": p.online, "ComputedName": p.name}

    def peer_status(self, p, now):
        # populatePeerStatus: nothing from magicsock until we have sent to the peer
        sent = p.tx_changed > 0
        trusted = sent and p.rx_changed > 0 and now - p.rx_changed < TRUST_UDP_ADDR
        return {
            "ID": "n%05dLABCNTRL" % p.i, "NodeID": 1837265409182001 + p.i,
            "PublicKey": p.node_key, "HostName": p.name,
            "DNSName": "%s.%s." % (p.name, self.suffix()), "OS": "linux", "UserID": USER_ID,
            "TailscaleIPs": p.ips(), "AllowedIPs": p.allowed().split(","), "Tags": ["tag:k0s"],
            "Addrs": None, "CurAddr": p.endpoint if trusted else "", "Relay": "", "PeerRelay": "",
            "RxBytes": p.rx, "TxBytes": p.tx, "Created": "2026-03-01T09:00:00Z",
            "LastWrite": rfc3339(p.tx_changed), "LastSeen": rfc3339(0 if p.online else p.seen),
            "LastHandshake": rfc3339(p.handshake), "Online": p.online, "ExitNode": False,
            "ExitNodeOption": False, "Active": sent and now - p.tx_changed < ACTIVE_WINDOW,
            "PeerAPIURL": ["http://%s:48231" % p.ipv4], "TaildropTarget": 4,
            "NoFileSharingReason": "", "InNetworkMap": True, "InMagicSock": True,
            "InEngine": p.handshake > 0,
        }

    def status(self, peers=True):
        now = time.time()
        with self.lock:
            nm = self.state in ("Stopped", "Starting", "Running")
            ips = [a for a in (self.ipv4, self.ipv6) if a] if nm else None
            name = self.cfg["name"]
            st = {
                "ID": "nSELFLABCNTRL", "NodeID": 1837265409182736,
                "PublicKey": node_key(self.cfg["public_key"]),
                "HostName": name, "DNSName": "%s.%s." % (name, self.suffix()) if nm else "",
                "OS": "linux", "UserID": USER_ID, "TailscaleIPs": ips,
                "Addrs": ["%s" % self.cfg["endpoint"]] if nm else None, "CurAddr": "",
                "Relay": "", "PeerRelay": "", "RxBytes": 0, "TxBytes": 0,
                "Created": "2026-03-01T09:00:00Z", "LastWrite": ZERO_TIME,
                "LastSeen": ZERO_TIME, "LastHandshake": ZERO_TIME,
                "Online": bool(nm and self.state == "Running" and self.control_ok),
                "ExitNode": False, "ExitNodeOption": False, "Active": False,
                "PeerAPIURL": None, "TaildropTarget": 0, "NoFileSharingReason": "",
                "InNetworkMap": nm, "InMagicSock": False, "InEngine": False,
            }
            d = {
                "Version": VERSION, "TUN": True, "BackendState": self.state,
                "HaveNodeKey": True, "AuthURL": "", "TailscaleIPs": ips, "Self": st,
                "Health": [] if self.control_ok else
                ["not connected to the coordination server"],
                "MagicDNSSuffix": self.suffix() if nm else "",
                "CurrentTailnet": {"Name": "lab", "MagicDNSSuffix": self.suffix(),
                                   "MagicDNSEnabled": True} if nm else None,
                "CertDomains": None, "ExtraRecords": None, "Peer": None,
                "User": {str(USER_ID): {"ID": USER_ID, "LoginName": "tagged-devices",
                                        "DisplayName": "Tagged Devices"}} if nm else None,
                "ClientVersion": None,
            }
            if peers and nm:
                d["Peer"] = {p.node_key: self.peer_status(p, now) for p in self.peers}
            return d

    def self_change(self):
        addrs = ["%s/%d" % (a, 128 if ":" in a else 32) for a in (self.ipv4, self.ipv6) if a]
        n = self.cfg["name"]
        return {"ID": 1837265409182736, "StableID": "nSELFLABCNTRL",
                "Name": "%s.%s." % (n, self.suffix()), "User": USER_ID,
                "Addresses": addrs, "AllowedIPs": addrs, "MachineAuthorized": True,
                "ComputedName": n, "ComputedNameWithHost": n}

    # --- bus ----------------------------------------------------------------------------
    def broadcast(self, line, need_mask=0):
        for w in self.watchers:
            if not need_mask or w[0] & need_mask:
                w[1].put(line)

    def set_state(self, st):
        with self.lock:
            changed = st != self.state
            self.state = st
            self.sync_addrs()
            if changed:
                self.event("state", state=st)
                self.broadcast(notify_line(State=STATES.index(st)))

    def command(self, c):
        cmd = c.get("cmd")
        with self.lock:
            if cmd == "control":
                self.control_ok = bool(c.get("reachable", True))
                self.event("control", reachable=self.control_ok)
            elif cmd == "ips":
                self.ipv4 = c.get("ipv4", self.ipv4)
                self.ipv6 = c.get("ipv6", self.ipv6)
                self.sync_addrs()
                self.broadcast(notify_line(SelfChange=self.self_change()))
            elif cmd == "peer":
                p = next(p for p in self.peers if p.key == c["key"])
                old = p.ipv4
                p.ipv4 = c.get("ipv4", p.ipv4)
                p.ipv6 = c.get("ipv6", p.ipv6)
                run(["wg", "set", IFNAME, "peer", p.key, "allowed-ips", p.allowed()])
                self.ip("route", "del", old + "/32", "dev", IFNAME, check=False)
                self.ip("route", "replace", p.ipv4 + "/32", "dev", IFNAME)
                self.broadcast(notify_line(PeersChanged=[self.node_json(p)]),
                               NOTIFY_PEER_CHANGES)
            elif cmd == "state":
                self.set_state(c["state"])
            elif cmd != "get":
                raise ValueError("unknown cmd %r" % cmd)
            return {"ok": True, "state": self.state, "ipv4": self.ipv4, "ipv6": self.ipv6,
                    "control": self.control_ok, "pid": os.getpid(),
                    "peers": {p.name: {"online": p.online, "handshake": p.handshake,
                                       "rx": p.rx} for p in self.peers}}

    def serve_control(self):
        path = self.opts.control
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.bind(path)
        s.listen(8)
        while True:
            conn, _ = s.accept()
            tsfake.answer_control(conn, self.command)

    def shutdown(self, *_):
        self.event("stop")
        run(["ip", "link", "set", IFNAME, "down"], check=False)
        for path in (self.opts.socket, self.opts.control):
            try:
                os.unlink(path)
            except OSError:
                pass
        if self.wg and self.wg.poll() is None:
            self.wg.terminate()
            try:
                self.wg.wait(3)
            except subprocess.TimeoutExpired:
                self.wg.kill()
        os._exit(0)

    def main(self):
        signal.signal(signal.SIGTERM, self.shutdown)
        signal.signal(signal.SIGINT, self.shutdown)
        self.event("start")
        if os.path.exists(self.opts.socket):
            os.unlink(self.opts.socket)  # safesocket: nobody answers a file left by a cut
        os.makedirs(os.path.dirname(self.opts.socket), exist_ok=True)
        srv = Server(self.opts.socket, Handler)
        srv.ts = self
        os.chmod(self.opts.socket, 0o666)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.set_state("Starting")
        self.start_engine()
        if self.cfg.get("control_dir"):
            threading.Thread(target=self.heartbeat, daemon=True).start()
            with self.lock:
                self.control_view(time.time())  # the netmap comes with control's view
        self.set_state(self.opts.state)
        threading.Thread(target=self.sampler, daemon=True).start()
        threading.Thread(target=self.watch_engine, daemon=True).start()
        self.serve_control()

    def watch_engine(self):
        self.wg.wait()
        sys.stderr.write("tailscaled: wireguard-go exited (%s)\n" % self.wg.returncode)
        self.shutdown()


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lab-tailscaled"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def address_string(self):
        return "unix"

    def headers_common(self):
        self.send_header("Tailscale-Version", VERSION)
        self.send_header("Tailscale-Cap", "142")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("X-Content-Type-Options", "nosniff")

    def error(self, code, text):
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        if not url.path.startswith("/localapi/"):
            return self.error(404, "404 page not found")
        if (self.headers.get("Referer") is not None or self.headers.get("Origin") is not None
                or self.headers.get("Host", "") not in ("", HOST)):
            return self.error(403, "invalid localapi request")
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path == "/localapi/v0/status":
            # def.Bool(strconv.ParseBool(...), true): only a false value drops the peers
            v = q.get("peers", [""])[-1]
            peers = v not in ("0", "f", "F", "false", "FALSE", "False")
            body = (json.dumps(self.server.ts.status(peers), indent="\t") + "\n").encode()
            self.send_response(200)
            self.headers_common()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        if url.path == "/localapi/v0/watch-ipn-bus":
            return self.watch(q)
        return self.error(404, "404 page not found")

    do_GET = do_POST = handle_any

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, q):
        ts = self.server.ts
        raw = q.get("mask", ["0"])[-1] or "0"
        if not raw.isdigit():
            return self.error(400, "bad mask")
        mask = int(raw)
        w = (mask, queue.Queue())
        with ts.lock:
            ts.watchers.append(w)
            first = None
            if mask & (NOTIFY_INITIAL_STATE | NOTIFY_INITIAL_STATUS):
                f = {"SessionID": secrets.token_hex(16)}
                if mask & NOTIFY_INITIAL_STATE:
                    f["State"] = STATES.index(ts.state)
                if mask & NOTIFY_INITIAL_STATUS:
                    f["InitialStatus"] = ts.status(False)
                first = notify_line(**f)
        try:
            self.send_response(200)
            self.headers_common()
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            if first:
                self.chunk(first)
            while True:
                self.chunk(w[1].get())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with ts.lock:
                if w in ts.watchers:
                    ts.watchers.remove(w)
        return None


def main():
    p = argparse.ArgumentParser(description="the lab's tailscaled (wireguard-go + LocalAPI)")
    p.add_argument("--config", required=True, help="node JSON written by lab.py")
    p.add_argument("--socket", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--events")
    p.add_argument("--wg-log")
    p.add_argument("--state", default="Running", choices=STATES)
    p.add_argument("--control-unreachable", action="store_true")
    opts = p.parse_args()
    with open(opts.config) as f:
        cfg = json.load(f)
    Tailscaled(opts, cfg).main()


if __name__ == "__main__":
    main()
