#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake-tailscaled.py for the doctor tests, with two additions the shared fake does not have
(tsfake.py is left as it is): the router's policy routing (ip rules 5210-5270 and table 52,
as tailscaled's linux router adds them once the TUN is up) and per-request /status overrides
read from $DOCTOR_TS_EXTRA (a JSON file: {"Self": {...}, "Peers": {"HostName": {...}}}), e.g.
Self.KeyExpiry or a peer's CurAddr/LastHandshake. Same arguments as fake-tailscaled.py."""

import json
import os
import sys

sys.path.insert(0, os.environ.get("TSFAKE_DIR", ""))

import tsfake  # noqa: E402

_status_object = tsfake.status_object
_create_tun = tsfake.FakeTailscaled.create_tun
_sync_addrs = tsfake.FakeTailscaled.sync_addrs


def status_object(node, peers=True):
    d = _status_object(node, peers)
    path = os.environ.get("DOCTOR_TS_EXTRA")
    try:
        with open(path) as f:
            extra = json.load(f)
    except (OSError, TypeError, ValueError):
        return d
    if isinstance(d.get("Self"), dict):
        d["Self"].update(extra.get("Self", {}))
    for p in (d.get("Peer") or {}).values():
        p.update(extra.get("Peers", {}).get(p.get("HostName"), {}))
    for k, v in extra.get("Top", {}).items():
        d[k] = v
    return d


def create_tun(self):
    _create_tun(self)
    if not self.tun:
        return
    # net/router/router_linux.go baseIPRules: 5210/5230/5250 fwmark 0x80000/0xff0000 to
    # main/default/unreachable, 5270 to table 52; routes live in table 52.
    for pref, rest in ((5210, ["fwmark", "0x80000/0xff0000", "table", "main"]),
                       (5230, ["fwmark", "0x80000/0xff0000", "table", "default"]),
                       (5250, ["fwmark", "0x80000/0xff0000", "type", "unreachable"]),
                       (5270, ["table", "52"])):
        tsfake.ip("rule", "add", "pref", str(pref), *rest, check=False)


def sync_addrs(self):
    _sync_addrs(self)
    # the kernel drops table 52's routes with the link's last address; the router's Set()
    # puts them back once the netmap has addresses again
    if self.tun and self.addrs_on_tun:
        tsfake.ip("route", "replace", "100.100.100.100/32", "dev", self.tun, "table", "52",
                  check=False)


tsfake.status_object = status_object
tsfake.FakeTailscaled.create_tun = create_tun
tsfake.FakeTailscaled.sync_addrs = sync_addrs

if __name__ == "__main__":
    tsfake.main()
