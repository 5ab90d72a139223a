#!/usr/bin/env python3
"""Abuse one rsm-kv-server's client port the way issue 10 found it abused, and measure.

1. 200 connections each send a 5-byte header announcing a 16 MiB frame, then nothing:
   the server's resident memory before and after, and its own count of buffered bytes.
2. 1,100 idle connections (over the default limit of 1,024), then one `rsm-kv put`: how
   long it takes, and how many idle connections the server shed for it.

Usage: examples/kv/bench/client_abuse.py [BIN_DIR] (default target/debug; it needs
rsm-kv-server and rsm-kv). Needs `ulimit -n` above 1,400. Prints one line per figure.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/debug"
PEER, CLIENT = 47311, 47312
ADDR = ("127.0.0.1", CLIENT)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def kv(*args):
    out = subprocess.run(
        [f"{BIN}/rsm-kv", "--servers", f"1=127.0.0.1:{CLIENT}", *args],
        check=True, capture_output=True, text=True,
    )
    return out.stdout


def port_status():
    return json.loads(kv("--output", "json", "status"))["servers"][0]["client_port"]


def main():
    data = tempfile.mkdtemp(prefix="rsm-abuse-")
    server = subprocess.Popen(
        [f"{BIN}/rsm-kv-server", "--id", "1", "--peers", f"1=127.0.0.1:{PEER}",
         "--client-listen", f"127.0.0.1:{CLIENT}", "--data-dir", f"{data}/n1",
         "--bootstrap", "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=open(f"{data}/n1.log", "w"),
    )
    try:
        for _ in range(200):
            try:
                kv("put", "warm", "up")
                break
            except subprocess.CalledProcessError:
                time.sleep(0.05)
        time.sleep(0.5)
        before = rss_kib(server.pid)
        header = bytes([1]) + struct.pack("<I", 16 << 20)
        announcers = []
        for _ in range(200):
            s = socket.create_connection(ADDR)
            s.sendall(header)
            announcers.append(s)
        time.sleep(2)
        after = rss_kib(server.pid)
        status = port_status()
        print(f"200 connections announcing 16 MiB each: RSS {before} KiB -> {after} KiB; "
              f"buffered_bytes {status['buffered_bytes']}, connections {status['connections']}")
        for s in announcers:
            s.close()
        time.sleep(0.5)

        idle = [socket.create_connection(ADDR) for _ in range(1100)]
        time.sleep(1)
        started = time.monotonic()
        kv("put", "colour", "blue")
        took = time.monotonic() - started
        status = port_status()
        print(f"1100 idle connections open: one rsm-kv put took {took * 1000:.0f} ms; "
              f"shed_idle {status['shed_idle']}, connections {status['connections']}, "
              f"refused_connection_limit {status['refused_connection_limit']}")
        for s in idle:
            s.close()
    finally:
        server.kill()
        server.wait()
        subprocess.run(["rm", "-rf", data], check=False)


if __name__ == "__main__":
    main()
