#!/usr/bin/env python3
"""A/B of produce throughput and broker CPU between two `strom` binaries, alternating builds on
the same machine (issue 7: the cost of validating records on produce).

    bench/produce_ab.py --a OLD_STROM --b NEW_STROM [--rounds 3] [--out FILE.json]

Each run starts a fresh broker (its own data directory and port) from one binary, runs
`strom perf produce` (from the same binary) against it once, and stops it. acks=1 runs use
Kafka's relaxed flush (log.flush.interval.messages=Long.MAX), acks=all Strom's default
(fdatasync before every acknowledgement), as bench/run does. The order of A and B alternates
per round (A B, B A, ...). Prints one line per run and a summary table (median and range per
workload and build); --out writes every run as JSON.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
RELAXED_FLUSH = 9223372036854775807

# (record size, records, acks, compression)
WORKLOADS = [
    (1024, 500_000, "1", "none"),
    (1024, 500_000, "all", "none"),
    (1024, 500_000, "1", "lz4"),
    (1024, 500_000, "all", "lz4"),
    (100, 2_000_000, "1", "none"),
    (100, 2_000_000, "all", "none"),
    (100, 2_000_000, "1", "lz4"),
    (100, 2_000_000, "all", "lz4"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_one(strom, workload, workdir):
    size, records, acks, compression = workload
    port = free_port()
    data = tempfile.mkdtemp(prefix="ab-", dir=workdir)
    cmd = [strom, "broker", "--set", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
           "--set", "log.dirs=" + os.path.join(data, "data"),
           "--set", "strom.metrics.listener=127.0.0.1:0"]
    if acks == "1":
        cmd += ["--set", "log.flush.interval.messages=%d" % RELAXED_FLUSH]
    log = open(os.path.join(data, "broker.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if not wait_listening(port, proc):
            raise RuntimeError("broker did not start: %s" % " ".join(cmd))
        args = [strom, "-b", "127.0.0.1:%d" % port, "--json", "perf", "produce", "--topic", "t",
                "--num-records", str(records), "--record-size", str(size), "--acks", acks,
                "--compression", compression, "--partitions", "1"]
        c0 = cpu_s(proc.pid)
        r = subprocess.run(args, capture_output=True, text=True, timeout=600)
        c1 = cpu_s(proc.pid)
        out = json.loads(r.stdout[r.stdout.index("{"):])
        if out.get("errors"):
            raise RuntimeError("%d produce errors" % out["errors"])
        nbytes = records * size
        return {"mb_s": nbytes / out["elapsed_s"] / 1e6,
                "cpu_s_per_gb": (c1 - c0) / (nbytes / 1e9)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="the baseline strom binary")
    p.add_argument("--b", required=True, help="the changed strom binary")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args()
    builds = {"A": args.a, "B": args.b}
    workdir = tempfile.mkdtemp(prefix="produce-ab-")
    runs = []
    try:
        for rnd in range(args.rounds):
            order = ["A", "B"] if rnd % 2 == 0 else ["B", "A"]
            for wl in WORKLOADS:
                for build in order:
                    res = run_one(builds[build], wl, workdir)
                    row = {"round": rnd, "build": build, "workload": list(wl), **res}
                    runs.append(row)
                    print("round %d %s %5d B acks=%-3s %-4s %8.1f MB/s %6.3f CPU-s/GB" % (
                        rnd, build, wl[0], wl[2], wl[3], res["mb_s"], res["cpu_s_per_gb"]),
                        flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("| workload | A MB/s median (range) | B MB/s median (range) | B/A | "
          "A CPU-s/GB | B CPU-s/GB |")
    print("|---|---|---|---|---|---|")
    for wl in WORKLOADS:
        cell = {}
        for build in "AB":
            rows = [r for r in runs if r["build"] == build and r["workload"] == list(wl)]
            mb = [r["mb_s"] for r in rows]
            cpu = [r["cpu_s_per_gb"] for r in rows]
            cell[build] = (statistics.median(mb), min(mb), max(mb), statistics.median(cpu),
                           min(cpu), max(cpu))
        a, b = cell["A"], cell["B"]
        print("| %s B, acks=%s, %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.2f | "
              "%.3f (%.3f–%.3f) | %.3f (%.3f–%.3f) |" % (
                  wl[0], wl[2], wl[3], a[0], a[1], a[2], b[0], b[1], b[2], b[0] / a[0],
                  a[3], a[4], a[5], b[3], b[4], b[5]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"a": args.a, "b": args.b, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
