#!/usr/bin/env python3
"""tools/bench/side_by_side.py - our initiator (nvmf-perf) and SPDK's (spdk_nvme_perf) side by side,
against the same target: ours (tools/nvmf-target) or SPDK's nvmf_tgt.

The target runs on --target-cpu (1), the initiators on --init-cpu (0), over loopback, one I/O queue.
Each row (workload) runs --rounds times per initiator, interleaved (the order alternates per round),
and every run is tagged with this machine's CPU placement measured just before and after it by
`pingpong` (a cache-line round trip between the two CPUs: ~60 ns "fast", ~330 ns "slow"; loopback
figures move 1.6-1.8x with it). The table gives, per row, each initiator's median IOPS with min..max,
the ratio of the medians and the median of the per-round ratios, mean latency and its ratio, our
p99.99/p50, and IOPS per CPU-second (ours: the process's user+sys CPU time while measuring; SPDK
busy-polls its core, so its CPU-seconds are the run's seconds). Then the idle cost: ours connected
and idle (wakeups and CPU per second); SPDK polls a whole core whether or not there is I/O.

SPDK is not a dependency: point --spdk at an SPDK build (build/bin/spdk_nvme_perf, build/bin/nvmf_tgt,
scripts/rpc.py; how it builds here: the repository's README, Benchmarks). Without --spdk only our
columns are printed. SPDK's programs need hugepages: this script reserves them (--hugepages, 2 MiB
pages) while it runs and gives them back at the end.

Usage: tools/bench/side_by_side.py [--spdk DIR] [--target ours|spdk] [-t SECONDS] [-r ROUNDS]
                                   [--rows NAME,...] [--build DIR] [--json FILE]
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

NQN = "nqn.2026-01.io.nvmf-ublk:side-by-side"
ROWS = {
    "randread-4k-qd1": ("randread", 4096, 1),
    "randread-4k-qd32": ("randread", 4096, 32),
    "randread-4k-qd128": ("randread", 4096, 128),
    "randwrite-4k-qd32": ("randwrite", 4096, 32),
    "read-128k-qd32": ("read", 131072, 32),
    "write-128k-qd32": ("write", 131072, 32),
}


def die(msg):
    print(f"side_by_side: {msg}", file=sys.stderr)
    sys.exit(1)


def run_timed(cmd, timeout):
    """Runs cmd; returns (rc or None when it hung, stdout, stderr, child CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        rc = None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, out, err, cpu


class Placement:
    def __init__(self, exe, cpus):
        self.exe, self.cpus = exe, cpus

    def ns(self):
        out = subprocess.run([self.exe, "--cpus", self.cpus], capture_output=True, text=True,
                             check=True).stdout
        return float(out.strip())


def tag(before, after):
    lo, hi = min(before, after), max(before, after)
    if hi < 150:
        return "fast"
    if lo >= 150:
        return "slow"
    return "mixed"


class OurTarget:
    def __init__(self, build, cpu, tmp):
        exe = os.path.join(build, "tools/nvmf-target/nvmf-target")
        if not os.access(exe, os.X_OK):
            die(f"{exe}: build it first (cmake --build {build})")
        self.log = os.path.join(tmp, "target.log")
        self.p = subprocess.Popen(
            ["taskset", "-c", str(cpu), exe, "--listen", "127.0.0.1:0", "--subsystem", NQN,
             "--ns", "ram:1G", "--queue-size", "256", "--log-level", "warning"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        self.port = None
        for _ in range(100):
            m = re.search(r"^listening on 127\.0\.0\.1:(\d+)$", open(self.log).read(), re.M)
            if m:
                self.port = m.group(1)
                break
            time.sleep(0.1)
        if not self.port:
            self.stop()
            die("nvmf-target did not start: " + open(self.log).read())
        self.name = "nvmf-target"

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()


class SpdkTarget:
    def __init__(self, spdk, cpu, tmp):
        exe = os.path.join(spdk, "build/bin/nvmf_tgt")
        self.rpc = [sys.executable, os.path.join(spdk, "scripts/rpc.py"), "-s",
                    os.path.join(tmp, "spdk.sock")]
        self.log = os.path.join(tmp, "nvmf_tgt.log")
        self.p = subprocess.Popen([exe, "-m", hex(1 << cpu), "-r", self.rpc[-1]],
                                  stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        for _ in range(300):
            if os.path.exists(self.rpc[-1]):
                break
            time.sleep(0.1)
        self.port = "4420"
        for args in (["nvmf_create_transport", "-t", "TCP", "-q", "256"],
                     ["bdev_malloc_create", "-b", "Malloc0", "1024", "4096"],
                     ["nvmf_create_subsystem", NQN, "-a", "-s", "SPDK00000000000001"],
                     ["nvmf_subsystem_add_ns", NQN, "Malloc0"],
                     ["nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s",
                      self.port]):
            r = subprocess.run(self.rpc + args, capture_output=True, text=True)
            if r.returncode != 0:
                self.stop()
                die(f"rpc {args[0]}: {r.stderr.strip()} (log: {open(self.log).read()[-2000:]})")
        self.name = "SPDK nvmf_tgt"

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def run_ours(a, build, port, row, poll_us=0):
    pattern, size, qd = row
    exe = os.path.join(build, "tools/bench/nvmf-perf")
    cmd = ["taskset", "-c", str(a.init_cpu), exe, "-a", "127.0.0.1", "-s", port, "-n", NQN,
           "-w", pattern, "-o", str(size), "-Q", str(qd), "-t", str(a.time), "--warmup", "1",
           "--json", "--poll-us", str(poll_us)]
    rc, out, err, _ = run_timed(cmd, a.time + 40)
    if rc is None:
        return {"hung": True}
    if rc != 0:
        return {"failed": err.strip()[-300:] or f"exit {rc}"}
    j = json.loads(out.strip().splitlines()[-1])
    return {"iops": j["iops"], "lat_mean_us": j["lat_mean_us"], "lat_p50_us": j["lat_p50_us"],
            "lat_p9999_us": j["lat_p9999_us"], "cpu_s": j["cpu_s"], "ios": j["ios"],
            "errors": j["errors"]}


def parse_spdk(out):
    total = re.search(r"^Total\s*:\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out,
                      re.M)
    if not total:
        return None
    pct = {float(p): float(v) for p, v in re.findall(r"^\s*([\d.]+)%\s*:\s*([\d.]+)us", out, re.M)}
    return {"iops": float(total.group(1)), "lat_mean_us": float(total.group(3)),
            "lat_p50_us": pct.get(50.0), "lat_p9999_us": pct.get(99.99)}


def run_spdk(a, port, row, tmp):
    pattern, size, qd = row
    exe = os.path.join(a.spdk, "build/bin/spdk_nvme_perf")
    trid = f"trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN}"
    cmd = [exe, "-c", hex(1 << a.init_cpu), "-r", trid, "-q", str(qd), "-o", str(size), "-w",
           pattern, "-t", str(a.time), "-L"]
    rc, out, err, _ = run_timed(cmd, a.time + 40)
    for f in os.listdir("/var/run/dpdk") if os.path.isdir("/var/run/dpdk") else []:
        if f.startswith("spdk_pid"):
            shutil.rmtree(os.path.join("/var/run/dpdk", f), ignore_errors=True)
    if rc is None:
        return {"hung": True}
    r = parse_spdk(out)
    if rc != 0 or r is None:
        return {"failed": (err or out).strip()[-300:] or f"exit {rc}"}
    r["cpu_s"] = float(a.time)  # it busy-polls its core for the whole run
    r["ios"] = r["iops"] * a.time
    return r


def idle_ours(a, build, port):
    exe = os.path.join(build, "tools/bench/nvmf-perf")
    cmd = ["taskset", "-c", str(a.init_cpu), exe, "-a", "127.0.0.1", "-s", port, "-n", NQN,
           "-w", "randread", "-o", "4096", "-Q", "1", "-t", "1", "--warmup", "0", "--idle",
           str(a.idle), "--json"]
    rc, out, err, _ = run_timed(cmd, a.idle + 30)
    if rc != 0:
        return None
    j = json.loads(out.strip().splitlines()[-1])
    return j["idle_wakeups"] / a.idle, j["idle_cpu_s"] * 1e3 / a.idle


def hugepages(n):
    path = "/proc/sys/vm/nr_hugepages"
    old = int(open(path).read())
    with open(path, "w") as f:
        f.write(str(n))
    if not os.path.ismount("/dev/hugepages"):
        os.makedirs("/dev/hugepages", exist_ok=True)
        subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "nodev",
                        "/dev/hugepages"], check=True)
    return old


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spdk", help="an SPDK build tree (spdk_nvme_perf, nvmf_tgt, rpc.py)")
    ap.add_argument("--target", choices=["ours", "spdk"], default="ours")
    ap.add_argument("-t", "--time", type=int, default=10, help="seconds per run")
    ap.add_argument("-r", "--rounds", type=int, default=4)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated: " + ", ".join(ROWS))
    ap.add_argument("--build", default="build")
    ap.add_argument("--init-cpu", type=int, default=0)
    ap.add_argument("--target-cpu", type=int, default=1)
    ap.add_argument("--idle", type=float, default=5, help="seconds of the idle measurement")
    ap.add_argument("--hugepages", type=int, default=2048)
    ap.add_argument("--json", help="write every run here")
    ap.add_argument("--poll-us", type=int, default=0,
                    help="also run ours with nvmf-perf --poll-us N (column 'poll')")
    a = ap.parse_args()
    if a.spdk:
        # An SPDK build with shared libraries (configure's default with a packaged DPDK).
        lib = os.path.join(os.path.abspath(a.spdk), "build/lib")
        os.environ["LD_LIBRARY_PATH"] = lib + (":" + os.environ["LD_LIBRARY_PATH"]
                                               if os.environ.get("LD_LIBRARY_PATH") else "")
    rows = a.rows.split(",")
    for r in rows:
        if r not in ROWS:
            die(f"unknown row {r} (rows: {', '.join(ROWS)})")
    if a.target == "spdk" and not a.spdk:
        die("--target spdk needs --spdk DIR")
    pp_exe = os.path.join(a.build, "tools/bench/pingpong")
    for exe in (pp_exe, os.path.join(a.build, "tools/bench/nvmf-perf")):
        if not os.access(exe, os.X_OK):
            die(f"{exe}: build it first (cmake --build {a.build})")
    place = Placement(pp_exe, f"{a.init_cpu},{a.target_cpu}")
    tmp = tempfile.mkdtemp(prefix="side-by-side.")
    old_huge = hugepages(a.hugepages) if a.spdk else None
    target = None
    runs = []
    try:
        target = SpdkTarget(a.spdk, a.target_cpu, tmp) if a.target == "spdk" else \
            OurTarget(a.build, a.target_cpu, tmp)
        inits = ["ours"] + (["poll"] if a.poll_us else []) + (["spdk"] if a.spdk else [])
        print(f"target: {target.name} on CPU {a.target_cpu}; initiators on CPU {a.init_cpu}: "
              f"{', '.join(inits)}; {a.rounds} round(s) x {a.time} s per row and initiator",
              flush=True)
        for rnd in range(a.rounds):
            order = inits if rnd % 2 == 0 else list(reversed(inits))
            for name in rows:
                for who in order:
                    before = place.ns()
                    if who == "spdk":
                        r = run_spdk(a, target.port, ROWS[name], tmp)
                    else:
                        r = run_ours(a, a.build, target.port, ROWS[name],
                                     a.poll_us if who == "poll" else 0)
                    after = place.ns()
                    r.update({"row": name, "who": who, "round": rnd, "pp_before": before,
                              "pp_after": after, "placement": tag(before, after)})
                    runs.append(r)
                    state = "hung" if r.get("hung") else "failed: " + r["failed"] if \
                        "failed" in r else f"{r['iops']:.0f} IOPS"
                    print(f"  round {rnd + 1} {name:<18} {who:<5} {state} "
                          f"[{r['placement']}, {before:.0f}/{after:.0f} ns]", flush=True)
        idle = idle_ours(a, a.build, target.port)
    finally:
        if target:
            target.stop()
        if old_huge is not None:
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(old_huge))
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)

    def ok(who, name):
        return [r for r in runs if r["who"] == who and r["row"] == name and "iops" in r]

    print()
    hdr = f"{'row':<19}{'ours IOPS':>10}{'(min..max)':>17}"
    if a.spdk:
        hdr += f"{'SPDK IOPS':>10}{'(min..max)':>17}{'ratio':>7}{'rnd':>6}{'lat':>7}"
    hdr += f"{'p9999/p50':>10}{'IOPS/CPU-s':>11}"
    if a.spdk:
        hdr += f"{'SPDK':>9}{'x':>6}"
    hdr += f"{'  placements':<12}"
    print(hdr)
    for name in rows:
        o = ok("ours", name)
        line = f"{name:<19}"
        oi = [r["iops"] for r in o]
        line += f"{med(oi):>10.0f}{(f'{min(oi):.0f}..{max(oi):.0f}' if oi else '-'):>17}"
        s = ok("spdk", name) if a.spdk else []
        if a.spdk:
            si = [r["iops"] for r in s]
            per_round = [ro["iops"] / rs["iops"] for ro in o for rs in s if ro["round"] == rs["round"]]
            lat = med([r["lat_mean_us"] for r in o]) / med([r["lat_mean_us"] for r in s]) if s and o \
                else float("nan")
            line += (f"{med(si):>10.0f}{(f'{min(si):.0f}..{max(si):.0f}' if si else '-'):>17}"
                     f"{med(oi) / med(si) if si and oi else float('nan'):>7.2f}{med(per_round):>6.2f}"
                     f"{lat:>7.2f}")
        tail = med([r["lat_p9999_us"] / r["lat_p50_us"] for r in o if r["lat_p50_us"]])
        ours_eff = med([r["ios"] / r["cpu_s"] for r in o if r["cpu_s"] > 0])
        line += f"{tail:>10.1f}{ours_eff:>11.0f}"
        if a.spdk:
            spdk_eff = med([r["ios"] / r["cpu_s"] for r in s])
            line += f"{spdk_eff:>9.0f}{ours_eff / spdk_eff if s else float('nan'):>6.2f}"
        tags = [r["placement"] for r in runs if r["row"] == name]
        line += "  " + " ".join(f"{t}:{tags.count(t)}" for t in ("fast", "slow", "mixed")
                                if tags.count(t))
        bad = [r for r in runs if r["row"] == name and ("hung" in r or "failed" in r)]
        if bad:
            line += f"  ({len(bad)} run(s) hung or failed)"
        print(line)
    print("ratio: median ours / median SPDK; rnd: median of the per-round ratios; lat: mean latency "
          "ours / SPDK" if a.spdk else "")
    if a.poll_us:
        print(f"\nours with --poll-us {a.poll_us}:")
        for name in rows:
            p, o = ok("poll", name), ok("ours", name)
            s = ok("spdk", name) if a.spdk else []
            pi = [r["iops"] for r in p]
            if not pi:
                print(f"{name:<19} no run")
                continue
            line = (f"{name:<19}{med(pi):>10.0f}{f'{min(pi):.0f}..{max(pi):.0f}':>17}"
                    f"  vs ours {med(pi) / med([r['iops'] for r in o]) if o else float('nan'):.2f}"
                    f"  mean latency {med([r['lat_mean_us'] for r in p]):.1f} us")
            if s:
                line += (f"  vs SPDK IOPS {med(pi) / med([r['iops'] for r in s]):.2f}, latency "
                         f"{med([r['lat_mean_us'] for r in p]) / med([r['lat_mean_us'] for r in s]):.2f}")
            line += f"  IOPS/CPU-s {med([r['ios'] / r['cpu_s'] for r in p if r['cpu_s'] > 0]):.0f}"
            print(line)
    if idle:
        print(f"idle, connected: ours {idle[0]:.2f} wakeups/s, {idle[1]:.3f} ms CPU per s"
              + ("; SPDK polls its core: 1000 ms CPU per s" if a.spdk else ""))
    errors = sum(r.get("errors", 0) for r in runs)
    if errors:
        print(f"I/O errors: {errors}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
