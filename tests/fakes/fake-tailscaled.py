#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fake tailscaled for the netns tests; the implementation and its contract are in tsfake.py.
Run it inside the test's network namespace:
  fake-tailscaled.py --socket PATH --control PATH [--tun NAME|--no-tun] [--state Running]
                     [--ipv4 100.64.0.10] [--ipv6 fd7a:115c:a1e0::a] [--dns-name NAME.]"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tsfake  # noqa: E402

if __name__ == "__main__":
    tsfake.main()
