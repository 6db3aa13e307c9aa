# SPDX-License-Identifier: MIT
"""A fake tailscaled for the netns tests: the TUN device, the LocalAPI on a unix socket, and a
control socket the test drives it through. Follows shared facts tailscale.md §1-§4: the TUN is
not persistent (it dies with the process), addresses come and go with BackendState Running,
/status is tab-indented ipnstate.Status JSON, watch-ipn-bus is chunked NDJSON with integer
State values. Python stdlib only.

Used two ways: fake-tailscaled.py runs main() inside the test's network namespace, and tests
import Control (the client of the control socket).

Control socket (--control PATH, unix stream): one JSON object per connection, ended by "\n";
the fake applies it, then answers {"ok": true, "state", "ipv4", "ipv6", "ifindex",
"watchers", "pid", "requests"} (or {"ok": false, "error"}). Commands:
  {"cmd":"state","state":"Running"}     BackendState; addresses follow it; a State bus line
  {"cmd":"ips","ipv4":..,"ipv6":..}     new self addresses (on the TUN if Running); SelfChange
  {"cmd":"peers","peers":[{"name","ipv4","ipv6","online", "active", "last_handshake",
        "cur_addr", "relay", "key_expiry"}]}   the /status Peer map (data-plane fields optional:
        last_handshake/key_expiry are RFC 3339 strings or numbers = seconds from now, e.g. -30)
  {"cmd":"peer","name":N, <fields as above>}   change one peer at runtime and tell the watchers
        the way the --daemon-version would: v1.100+ a PeersChanged delta to watchers with
        NotifyPeerChanges (4096), nothing to others; v1.98 a PeerChanges delta to watchers with
        4096, a full NetMap to others; older: a full NetMap to everybody
  {"cmd":"gen-peers","count":5000}      that many synthetic peers (peer0..), for benchmarks
  {"cmd":"online","online":false}       Self.Online (control-plane poll up or not); with
        state Running this is "Running but not online" (a control-server outage)
  {"cmd":"self","key_expiry":..}        Self.KeyExpiry (as for peers; null: none)
  {"cmd":"watch-mode","mode":"normal"|"close"|"silent"}   close: 200, the first line, then a
        clean end (a LocalAPI that answers 200 and closes); silent: accept and never answer
        watch-ipn-bus (as "hang", for the stream only)
  {"cmd":"huge-line","bytes":N}         push one NetMap line of about N bytes of tiny elements
  {"cmd":"huge-status","bytes":N}       pad /status to about N bytes of tiny elements (0: off)
  {"cmd":"lag"}                         v1.102 "fell behind" ErrMessage, then watchers end
  {"cmd":"close-watchers"}              clean end of every watch-ipn-bus stream
  {"cmd":"hang","hang":true}            LocalAPI requests are read but never answered (--hang)
  {"cmd":"get"}                         just the answer
  {"cmd":"quit"}                        like SIGTERM: link down, socket removed, exit
SIGTERM/SIGINT: link down, LocalAPI socket unlinked, exit (the kernel deletes the TUN)."""

import fcntl
import http.server
import json
import os
import queue
import secrets
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

VERSION = "1.102.3-t9c1f2a3b4-g5d6e7f8a9"
LOCALAPI_HOST = "local-tailscaled.sock"
STATES = ["NoState", "InUseOtherUser", "NeedsLogin", "NeedsMachineAuth", "Stopped",
          "Starting", "Running"]
# States in which tailscaled has a netmap (so TailscaleIPs, Self.TailscaleIPs and
# CurrentTailnet are filled) and the states in which the router puts addresses on the TUN.
NETMAP_STATES = ("Stopped", "Starting", "Running")
ADDR_STATES = ("Running",)
SELF_KEY = "nodekey:3f0c5a1e9b7d42c8a6e1f0b2d4c6e8a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1"
USER_ID = 4567890123456789
ZERO_TIME = "0001-01-01T00:00:00Z"
LAG_MESSAGE = "IPN bus consumer fell behind; closing watch"

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

# Mask bits (ipn/backend.go).
NOTIFY_ENGINE_UPDATES = 1
NOTIFY_INITIAL_STATE = 2
NOTIFY_RATE_LIMIT = 256
NOTIFY_IN_PROCESS_NO_DISCONNECT = 65536
NOTIFY_INITIAL_STATUS = 16384
NOTIFY_PEER_CHANGES = 4096


def version_minor():
    """1.102.3-t.. -> 102 (major 1); how the fake decides what a watcher gets."""
    try:
        major, minor = VERSION.split("-")[0].split(".")[:2]
        return 1000 if int(major) > 1 else int(minor)
    except ValueError:
        return 102


def rfc3339(v, now=None):
    """An RFC 3339 string as given, or a number of seconds from now; None/0: Go's zero time."""
    if v is None or v == 0 or v == "":
        return ZERO_TIME
    if isinstance(v, str):
        return v
    t = (now or time.time()) + float(v)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "Z"


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def notify_line(**fields):
    """An ipn.Notify as json.Encoder.Encode writes it: compact, untagged fields always present
    (null when unset), omitzero fields only when set, then a newline."""
    d = {"Version": VERSION}
    if "SessionID" in fields:
        d["SessionID"] = fields.pop("SessionID")
    for k in ("ErrMessage", "LoginFinished", "State", "Prefs"):
        d[k] = fields.pop(k, None)
    for k in ("SelfChange", "InitialStatus"):
        if k in fields:
            d[k] = fields.pop(k)
    for k in ("NetMap", "Engine", "BrowseToURL", "DriveShares"):
        d[k] = fields.pop(k, None)
    d.update(fields)
    return (json.dumps(d, separators=(",", ":")) + "\n").encode()


class Node:
    """What the fake knows about itself; changed only under FakeTailscaled.lock."""

    def __init__(self, state, ipv4, ipv6, dns_name, online=True):
        self.state = state
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.dns_name = dns_name
        self.online = online
        self.key_expiry = None
        self.peers = []  # dicts: name, ipv4, ipv6, online, [key], data-plane fields
        self.pad = 0  # huge-status: bytes of padding

    def host_name(self):
        return self.dns_name.split(".")[0] if self.dns_name else "node"

    def suffix(self):
        parts = self.dns_name.rstrip(".").split(".", 1)
        return parts[1] if len(parts) == 2 else ""

    def ips(self):
        return [a for a in (self.ipv4, self.ipv6) if a]

    def has_netmap(self):
        return self.state in NETMAP_STATES and bool(self.ips())


def _peer_status(node_id, key, host, dns, ips, online, is_self, allowed_extra=(), p=None):
    """ipnstate.PeerStatus in field order (shared facts tailscale.md §2)."""
    allowed = ["%s/%d" % (a, 128 if ":" in a else 32) for a in ips] + list(allowed_extra)
    d = {
        "ID": "n%013dCNTRL" % (node_id % 10**13),
        "NodeID": node_id,
        "PublicKey": key,
        "HostName": host,
        "DNSName": dns,
        "OS": "linux",
        "UserID": USER_ID,
        "TailscaleIPs": list(ips) if ips else None,
    }
    if ips:
        d["AllowedIPs"] = allowed
        d["Tags"] = ["tag:k0s"]
    d["Addrs"] = ["198.51.100.7:41641", "10.0.0.21:41641"] if is_self and ips else None
    d.update({
        "CurAddr": "" if is_self else ("203.0.113.10:41641" if online else ""),
        "Relay": "fra" if ips else "",
        "PeerRelay": "",
        "RxBytes": 0,
        "TxBytes": 0,
        "Created": "2026-03-01T09:00:00.123456789Z" if ips else ZERO_TIME,
        "LastWrite": ZERO_TIME,
        "LastSeen": ZERO_TIME,
        "LastHandshake": ZERO_TIME,
        "Online": bool(online),
        "ExitNode": False,
        "ExitNodeOption": False,
        "Active": False,
        "PeerAPIURL": ["http://%s:48231" % (a if ":" not in a else "[%s]" % a) for a in ips]
        if ips else None,
        "TaildropTarget": 0 if is_self else 4,
        "NoFileSharingReason": "",
    })
    if is_self and ips:
        d["Capabilities"] = ["https://tailscale.com/cap/ssh"]
        d["CapMap"] = {"https://tailscale.com/cap/ssh": None}
    d.update({"InNetworkMap": bool(ips), "InMagicSock": not is_self and bool(ips),
              "InEngine": not is_self and bool(online)})
    if p:
        # Data-plane fields as the test set them (shared facts tailscale.md §2).
        if "cur_addr" in p:
            d["CurAddr"] = p["cur_addr"] or ""
        if "relay" in p:
            d["Relay"] = p["relay"] or ""
        if "active" in p:
            d["Active"] = bool(p["active"])
        if "last_handshake" in p:
            d["LastHandshake"] = rfc3339(p["last_handshake"])
        if p.get("key_expiry") is not None:
            d["KeyExpiry"] = rfc3339(p["key_expiry"])
    return d


def status_object(node, peers=True):
    """ipnstate.Status for the node, shaped like the shared sample."""
    nm = node.has_netmap()
    ips = node.ips() if nm else None
    self_st = _peer_status(1837265409182736, SELF_KEY, node.host_name(),
                           node.dns_name if nm else "", ips or [],
                           nm and node.online and node.state == "Running", True)
    if not nm:
        self_st["TailscaleIPs"] = None
    if node.key_expiry is not None:
        self_st["KeyExpiry"] = rfc3339(node.key_expiry)
    d = {
        "Version": VERSION,
        "TUN": True,
        "BackendState": node.state,
        "HaveNodeKey": True,
        "AuthURL": "https://login.tailscale.com/a/1a2b3c4d5e6f"
        if node.state == "NeedsLogin" else "",
        "TailscaleIPs": ips,
        "Self": self_st,
        "Health": [],
        "MagicDNSSuffix": node.suffix() if nm else "",
        "CurrentTailnet": {"Name": "example.com", "MagicDNSSuffix": node.suffix(),
                           "MagicDNSEnabled": True} if nm else None,
        "CertDomains": None,
        "ExtraRecords": None,
        "Peer": None,
        "User": {str(USER_ID): {"ID": USER_ID, "LoginName": "tagged-devices",
                                "DisplayName": "Tagged Devices"}} if nm else None,
        "ClientVersion": None,
    }
    if peers and nm:
        d["Peer"] = {}
        for i, p in enumerate(node.peers):
            key, ps = peer_entry(node, i, p)
            d["Peer"][key] = ps
    if node.pad:
        # huge-status: tiny elements in a key the agent ignores (issue 8, item 8).
        d["ExtraRecords"] = [1] * (node.pad // 2)
    return d


def peer_entry(node, i, p):
    key = p.get("key") or "nodekey:%064x" % (0x8a2b0000 + i)
    name = p.get("name", "peer%d" % i)
    dns = name if name.endswith(".") else "%s.%s." % (name, node.suffix())
    pips = [a for a in (p.get("ipv4"), p.get("ipv6")) if a]
    return key, _peer_status(1837265409182001 + i, key, name.split(".")[0], dns, pips,
                             p.get("online", True), False, p=p)


def peer_node(node, i, p):
    """tailcfg.Node of a peer, as PeersChanged and NetMap.Peers carry it (trimmed)."""
    name = p.get("name", "peer%d" % i)
    addrs = ["%s/%d" % (a, 128 if ":" in a else 32) for a in (p.get("ipv4"), p.get("ipv6"))
             if a]
    return {
        "ID": 1837265409182001 + i, "StableID": "n%dCNTRL" % (1837265409182001 + i),
        "Name": "%s.%s." % (name, node.suffix()), "User": USER_ID,
        "Key": p.get("key") or "nodekey:%064x" % (0x8a2b0000 + i),
        "DiscoKey": "discokey:%064x" % (0x5c0000 + i), "Addresses": addrs,
        "AllowedIPs": addrs, "Endpoints": ["203.0.113.10:41641", "10.0.0.%d:41641" % (i % 250)],
        "HomeDERP": 4, "Hostinfo": {"OS": "linux", "Hostname": name},
        "Created": "2026-03-01T09:00:00.123456789Z", "Cap": 142, "Tags": ["tag:k0s"],
        "Online": bool(p.get("online", True)), "MachineAuthorized": True,
        "ComputedName": name, "ComputedNameWithHost": name,
    }


def netmap_object(node, cache=None):
    """A trimmed netmap.NetworkMap with every peer (what v1.98 and older push per change)."""
    peers = []
    for i, p in enumerate(node.peers):
        s = cache.get(i) if cache is not None else None
        if s is None:
            s = json.dumps(peer_node(node, i, p), separators=(",", ":"))
            if cache is not None:
                cache[i] = s
        peers.append(s)
    head = json.dumps({"SelfNode": self_change(node), "Domain": node.suffix()},
                      separators=(",", ":"))[:-1]
    return head + ',"Peers":[' + ",".join(peers) + "]}"


def self_change(node):
    """tailcfg.Node for a SelfChange line (sample line 5)."""
    addrs = ["%s/%d" % (a, 128 if ":" in a else 32) for a in node.ips()]
    return {
        "ID": 1837265409182736, "StableID": "n1837265409182CNTRL", "Name": node.dns_name,
        "User": USER_ID, "Key": SELF_KEY,
        "Machine": "mkey:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "DiscoKey": "discokey:f9e8d7c6b5a4938271605f4e3d2c1b0af9e8d7c6b5a4938271605f4e3d2c1b0a",
        "Addresses": addrs, "AllowedIPs": addrs, "HomeDERP": 4,
        "Hostinfo": {"IPNVersion": VERSION, "OS": "linux", "Hostname": node.host_name()},
        "Created": "2026-03-01T09:00:00.123456789Z", "Cap": 142, "Tags": ["tag:k0s"],
        "MachineAuthorized": True, "ComputedName": node.host_name(),
        "ComputedNameWithHost": node.host_name(),
    }


class Watcher:
    def __init__(self, mask):
        self.mask = mask
        self.q = queue.Queue()


class LocalAPIServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False


class LocalAPIHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-tailscaled"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            sys.stderr.write("fake-tailscaled: %s\n" % (fmt % args))

    def address_string(self):
        return "unix"

    def _common_headers(self):
        self.send_header("Tailscale-Version", VERSION)
        self.send_header("Tailscale-Cap", "142")
        self.send_header("Content-Security-Policy",
                         "default-src 'none'; frame-ancestors 'none'; script-src 'none'; "
                         "script-src-elem 'none'; script-src-attr 'none'")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("X-Content-Type-Options", "nosniff")

    def _error(self, code, text, common=True):
        # Go's http.Error: text/plain, nosniff, the message plus "\n".
        body = (text + "\n").encode()
        self.send_response(code)
        if common:
            self._common_headers()
        else:
            self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        fake = self.server.fake
        fake.requests.append((self.command, self.path))
        url = urllib.parse.urlsplit(self.path)
        if fake.hang_requests or (fake.watch_mode == "silent"
                                  and url.path == "/localapi/v0/watch-ipn-bus"):
            while fake.hang_requests or fake.watch_mode == "silent":
                time.sleep(0.1)
            self.close_connection = True
            return
        if not url.path.startswith("/localapi/"):
            return self._error(404, "404 page not found", common=False)
        host = self.headers.get("Host", "")
        if (self.headers.get("Referer") is not None or self.headers.get("Origin") is not None
                or host not in ("", LOCALAPI_HOST)):
            return self._error(403, "invalid localapi request", common=False)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path == "/localapi/v0/status":
            return self._status(q)
        if url.path == "/localapi/v0/watch-ipn-bus":
            return self._watch(q)
        return self._error(404, "404 page not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def _status(self, q):
        peers = True
        v = q.get("peers", [""])[-1]
        # def.Bool(strconv.ParseBool): unparsable means the default (true).
        if v in ("0", "f", "F", "false", "FALSE", "False"):
            peers = False
        fake = self.server.fake
        with fake.lock:
            obj = status_object(fake.node, peers)
        body = (json.dumps(obj, indent="\t") + "\n").encode()
        self.send_response(200)
        self._common_headers()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, q):
        fake = self.server.fake
        raw = q.get("mask", ["0"])[-1] or "0"
        try:
            mask = int(raw, 10)
            if mask < 0 or mask >= 1 << 64 or not raw.isdigit():
                raise ValueError
        except ValueError:
            return self._error(400, "bad mask")
        if mask & NOTIFY_IN_PROCESS_NO_DISCONNECT:
            return self._error(400, "NotifyInProcessNoDisconnect is not allowed over LocalAPI")
        if mask & NOTIFY_RATE_LIMIT and mask & 0xF000:
            return self._error(400, "NotifyRateLimit cannot be combined with bits 12-15")
        w = Watcher(mask)
        with fake.lock:
            fake.watchers.append(w)
            first = None
            if mask & (NOTIFY_INITIAL_STATE | NOTIFY_INITIAL_STATUS):
                f = {"SessionID": secrets.token_hex(16)}
                if mask & NOTIFY_INITIAL_STATE:
                    f["State"] = STATES.index(fake.node.state)
                    if fake.node.state == "NeedsLogin":
                        f["BrowseToURL"] = "https://login.tailscale.com/a/1a2b3c4d5e6f"
                if mask & NOTIFY_INITIAL_STATUS:
                    f["InitialStatus"] = status_object(fake.node, False)
                first = notify_line(**f)
        try:
            self.send_response(200)
            self._common_headers()
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()  # onWatchAdded: headers go out at once
            if first:
                self._chunk(first)
            if fake.watch_mode == "close":
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True
                return
            while True:
                timeout = 2.0 if mask & NOTIFY_ENGINE_UPDATES else None
                try:
                    item = w.q.get(timeout=timeout)
                except queue.Empty:
                    self._chunk(notify_line(Engine={"RBytes": 0, "WBytes": 0, "NumLive": 0,
                                                    "LiveDERPs": 1, "LivePeers": {}}))
                    continue
                if item is None:  # clean end of the stream
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if callable(item):  # depends on the watcher's mask
                    item = item(w.mask)
                    if not item:
                        continue
                self._chunk(item)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with fake.lock:
                if w in fake.watchers:
                    fake.watchers.remove(w)


class FakeTailscaled:
    def __init__(self, opts):
        self.opts = opts
        self.verbose = opts.verbose
        self.lock = threading.RLock()
        self.node = Node(opts.state, opts.ipv4, opts.ipv6, opts.dns_name,
                         online=not opts.offline)
        self.watchers = []
        self.requests = []
        self.hang_requests = bool(getattr(opts, "hang", False))
        self.watch_mode = "normal"
        self.netmap_cache = {}
        self.tun_fd = None
        self.tun = None if opts.no_tun else opts.tun
        self.addrs_on_tun = []
        self.server = None

    # --- TUN ------------------------------------------------------------------------------
    def create_tun(self):
        if not self.tun:
            return
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        ifr = struct.pack("16sH", self.tun.encode(), IFF_TUN | IFF_NO_PI).ljust(40, b"\0")
        fcntl.ioctl(fd, TUNSETIFF, ifr)  # no TUNSETPERSIST: the link dies with this fd
        self.tun_fd = fd
        if not self.opts.linklocal:
            ip("link", "set", self.tun, "addrgenmode", "none")
        ip("link", "set", self.tun, "mtu", "1280")
        ip("link", "set", self.tun, "up")

    def ifindex(self):
        if not self.tun:
            return 0
        try:
            return socket.if_nametoindex(self.tun)
        except OSError:
            return 0

    def sync_addrs(self):
        """The router's Set(): the netmap's addresses while Running, none otherwise. Adds
        before it deletes, like cidrDiff, so a change never leaves the link bare."""
        if not self.tun:
            return
        want = self.node.ips() if self.node.state in ADDR_STATES else []
        for a in want:
            if a not in self.addrs_on_tun:
                if ":" in a:
                    ip("-6", "addr", "replace", a + "/128", "dev", self.tun, "nodad")
                else:
                    ip("addr", "replace", a + "/32", "dev", self.tun)
        for a in self.addrs_on_tun:
            if a not in want:
                ip("addr", "del", a + ("/128" if ":" in a else "/32"), "dev", self.tun,
                   check=False)
        self.addrs_on_tun = list(want)

    # --- bus ------------------------------------------------------------------------------
    def update_peer(self, c):
        name = c["name"]
        for i, p in enumerate(self.node.peers):
            if p.get("name") == name:
                break
        else:
            raise ValueError("no peer %r" % name)
        for k in ("online", "active", "last_handshake", "cur_addr", "relay", "key_expiry",
                  "ipv4", "ipv6"):
            if k in c:
                p[k] = c[k]
        self.netmap_cache.pop(i, None)
        minor = version_minor()
        node = self.node
        lines = {}

        def full_netmap():
            if "netmap" not in lines:
                lines["netmap"] = self._netmap_line()
            return lines["netmap"]

        def for_mask(mask):
            with self.lock:
                return for_mask_locked(mask)

        def for_mask_locked(mask):
            if minor >= 100:  # ipn/ipnlocal/bus.go: no NetMap after the initial one on Linux
                if mask & NOTIFY_PEER_CHANGES:
                    return notify_line(PeersChanged=[peer_node(node, i, p)])
                return None
            if minor >= 98 and mask & NOTIFY_PEER_CHANGES:  # v1.98 local.go: PeerChanges
                return notify_line(PeerChanges=[{"NodeID": 1837265409182001 + i,
                                                 "Online": bool(p.get("online", True))}])
            return full_netmap()

        self.broadcast(for_mask)

    def _netmap_line(self):
        """notify_line(NetMap=...) without re-encoding every peer each time."""
        nm = netmap_object(self.node, self.netmap_cache)
        line = notify_line(NetMap="@@NETMAP@@")
        return line.replace(b'"@@NETMAP@@"', nm.encode())

    def broadcast(self, line):
        for w in self.watchers:
            w.q.put(line)

    def close_watchers(self):
        for w in self.watchers:
            w.q.put(None)

    # --- control --------------------------------------------------------------------------
    def command(self, c):
        cmd = c.get("cmd")
        with self.lock:
            if cmd == "state":
                st = c["state"]
                if st not in STATES:
                    raise ValueError("unknown state %r" % st)
                changed = st != self.node.state
                self.node.state = st
                self.sync_addrs()
                if changed or c.get("force"):
                    self.broadcast(notify_line(State=STATES.index(st)))
            elif cmd == "ips":
                if "ipv4" in c:
                    self.node.ipv4 = c["ipv4"]
                if "ipv6" in c:
                    self.node.ipv6 = c["ipv6"]
                self.sync_addrs()
                self.broadcast(notify_line(SelfChange=self_change(self.node)))
            elif cmd == "online":
                self.node.online = bool(c.get("online", True))
            elif cmd == "peers":
                self.node.peers = list(c.get("peers", []))
                self.netmap_cache.clear()
            elif cmd == "gen-peers":
                n = int(c.get("count", 0))
                self.node.peers = [{"name": "peer%d" % i,
                                    "ipv4": "100.%d.%d.%d" % (80 + (i + 1) // 65536,
                                                              ((i + 1) // 256) % 256,
                                                              (i + 1) % 256),
                                    "ipv6": "fd7a:115c:a1e0::%x" % (0x1000 + i),
                                    "online": True, "active": False,
                                    "last_handshake": None, "cur_addr": ""}
                                   for i in range(n)]
                self.netmap_cache.clear()
            elif cmd == "peer":
                self.update_peer(c)
            elif cmd == "self":
                self.node.key_expiry = c.get("key_expiry")
                self.broadcast(notify_line(SelfChange=self_change(self.node)))
            elif cmd == "watch-mode":
                if c.get("mode") not in ("normal", "close", "silent"):
                    raise ValueError("unknown watch mode %r" % c.get("mode"))
                self.watch_mode = c["mode"]
            elif cmd == "huge-line":
                n = int(c.get("bytes", 40 * 1000 * 1000))
                line = (b'{"Version":"' + VERSION.encode() + b'","State":null,"NetMap":{"X":['
                        + b"1," * (n // 2) + b'1]}}\n')
                self.broadcast(line)
            elif cmd == "huge-status":
                self.node.pad = int(c.get("bytes", 0))
            elif cmd == "lag":
                self.broadcast(notify_line(ErrMessage=LAG_MESSAGE))
                self.close_watchers()
            elif cmd == "close-watchers":
                self.close_watchers()
            elif cmd == "hang":
                self.hang_requests = bool(c.get("hang", True))
            elif cmd == "get":
                pass
            elif cmd == "quit":
                self.quit = True
            else:
                raise ValueError("unknown cmd %r" % cmd)
            return {"ok": True, "state": self.node.state, "ipv4": self.node.ipv4,
                    "ipv6": self.node.ipv6, "ifindex": self.ifindex(),
                    "watchers": len(self.watchers), "pid": os.getpid(),
                    "requests": len(self.requests)}

    def serve_control(self, path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.bind(path)
        s.listen(8)
        s.settimeout(0.2)
        return s

    def shutdown(self, *_):
        """SIGTERM: like linuxRouter.Close(), the link goes down, then the process exits and
        the kernel deletes the link. Go's listener unlinks its socket file on Close."""
        if self.tun:
            ip("link", "set", self.tun, "down", check=False)
        if self.opts.socket:
            try:
                os.unlink(self.opts.socket)
            except OSError:
                pass
        try:
            os.unlink(self.opts.control)
        except OSError:
            pass
        os._exit(0)

    def start_localapi(self):
        path = self.opts.socket
        if not path:
            return
        # safesocket: a file nobody answers on is stale and replaced.
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                raise SystemExit("fake-tailscaled: %s is in use" % path)
            except (ConnectionRefusedError, FileNotFoundError, OSError):
                os.unlink(path)
            finally:
                probe.close()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.server = LocalAPIServer(path, LocalAPIHandler)
        self.server.fake = self
        os.chmod(path, 0o666)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def run(self):
        self.quit = False
        signal.signal(signal.SIGTERM, self.shutdown)
        signal.signal(signal.SIGINT, self.shutdown)
        # tailscaled listens on its socket first (requests wait for the backend), then builds
        # the engine and its TUN.
        with self.lock:
            self.start_localapi()
            self.create_tun()
            self.sync_addrs()
        ctl = self.serve_control(self.opts.control)
        while not self.quit:
            try:
                conn, _ = ctl.accept()
            except socket.timeout:
                continue
            answer_control(conn, self.command)
        self.shutdown()


def main(argv=None):
    global VERSION
    import argparse
    p = argparse.ArgumentParser(description="fake tailscaled for k0s-tsagent tests")
    p.add_argument("--socket", help="LocalAPI socket path (none: no LocalAPI)")
    p.add_argument("--control", required=True, help="control socket path")
    p.add_argument("--tun", default="tailscale0")
    p.add_argument("--no-tun", action="store_true", help="userspace networking: no TUN")
    p.add_argument("--linklocal", action="store_true",
                   help="keep the kernel's fe80:: address (default: addrgenmode none)")
    p.add_argument("--state", default="Running", choices=STATES)
    p.add_argument("--ipv4", default="100.64.0.10")
    p.add_argument("--ipv6", default="fd7a:115c:a1e0::a")
    p.add_argument("--dns-name", default="node1.tail1234.ts.net.")
    p.add_argument("--offline", action="store_true",
                   help="Self.Online false (with --state Running: Running but not online)")
    p.add_argument("--daemon-version", default=VERSION,
                   help="the Version tailscaled reports; decides what watchers get "
                        "(v1.100+: deltas on request; 1.98: deltas or NetMaps; older: NetMaps)")
    p.add_argument("--peers", type=int, default=0, help="that many synthetic peers")
    p.add_argument("--hang", action="store_true", help="never answer any LocalAPI request")
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    VERSION = opts.daemon_version
    fake = FakeTailscaled(opts)
    if opts.peers:
        fake.command({"cmd": "gen-peers", "count": opts.peers})
    fake.run()


def answer_control(conn, command):
    """One request on a control socket: a JSON line in, command(request)'s JSON line out (an
    exception goes back as {"ok": false, "error": ...}). Closes conn. Shared with the lab's
    LocalAPI stand-in (tests/lab/tailscaled.py)."""
    with conn:
        conn.settimeout(5)
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            try:
                reply = command(json.loads(data))
            except Exception as e:  # noqa: BLE001 -- report any bad command back
                reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            conn.sendall((json.dumps(reply) + "\n").encode())
        except OSError:
            pass


class Control:
    """Client of a running fake's control socket. Each call waits for the fake to have applied
    the command (addresses on the TUN, lines queued to watchers) before it returns."""

    def __init__(self, path):
        self.path = path

    def send(self, cmd, timeout=5.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(timeout)
        try:
            s.connect(self.path)
            s.sendall((json.dumps(cmd) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        reply = json.loads(data)
        if not reply.get("ok"):
            raise RuntimeError("fake-tailscaled: %s" % reply.get("error"))
        return reply

    def wait_ready(self, timeout=5.0):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                return self.send({"cmd": "get"}, timeout=1.0)
            except (OSError, ValueError) as e:
                last = e
                time.sleep(0.02)
        raise RuntimeError("fake-tailscaled did not come up at %s: %s" % (self.path, last))

    def state(self, state):
        return self.send({"cmd": "state", "state": state})

    def ips(self, ipv4=None, ipv6=None):
        c = {"cmd": "ips"}
        if ipv4 is not None:
            c["ipv4"] = ipv4
        if ipv6 is not None:
            c["ipv6"] = ipv6
        return self.send(c)

    def peers(self, peers):
        return self.send({"cmd": "peers", "peers": peers})

    def online(self, online):
        return self.send({"cmd": "online", "online": online})

    def lag(self):
        return self.send({"cmd": "lag"})

    def close_watchers(self):
        return self.send({"cmd": "close-watchers"})

    def peer(self, name, **fields):
        return self.send(dict(cmd="peer", name=name, **fields))

    def gen_peers(self, count):
        return self.send({"cmd": "gen-peers", "count": count}, timeout=30.0)

    def self_key_expiry(self, key_expiry):
        return self.send({"cmd": "self", "key_expiry": key_expiry})

    def watch_mode(self, mode):
        return self.send({"cmd": "watch-mode", "mode": mode})

    def hang(self, hang=True):
        return self.send({"cmd": "hang", "hang": hang})

    def huge_line(self, nbytes):
        return self.send({"cmd": "huge-line", "bytes": nbytes}, timeout=60.0)

    def huge_status(self, nbytes):
        return self.send({"cmd": "huge-status", "bytes": nbytes})

    def get(self):
        return self.send({"cmd": "get"})

    def quit(self):
        try:
            return self.send({"cmd": "quit"})
        except (OSError, ValueError):
            return None
