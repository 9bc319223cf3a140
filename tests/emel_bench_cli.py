#!/usr/bin/env python3
"""emel-bench's output as tools/bench and its readers use it: the keys of every
reference, and fio's JSON parsed with the engine fallback (a stand-in fio on
PATH). No figure is judged: benchmarks print, tests never time.

Usage: emel_bench_cli.py EMEL_BENCH EMEL_GGUF_WRITE WORKDIR
"""
import json
import os
import stat
import subprocess
import sys

bench, write, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
model = os.path.join(work, "model.gguf")
subprocess.run([write, "--tensors", "12", "--bytes", "2M", "--type", "f16", model], check=True,
               stdout=subprocess.DEVNULL)
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def keys(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            out[k] = v
    return out


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fake_fio(engines_that_work, bw_bytes=3_000_000_000):
    """A stand-in fio: fails for engines not listed, else prints fio-shaped JSON."""
    d = os.path.join(work, "fio-" + "-".join(engines_that_work or ["none"]))
    os.makedirs(d, exist_ok=True)
    doc = {"fio version": "fio-3.33", "jobs": [{"jobname": "x", "job options": {"rw": "read", "bs": "4M"}, "read": {
        "io_bytes": 2097152, "io_kbytes": 2048, "bw_bytes": bw_bytes, "bw": bw_bytes // 1024, "runtime": 1},
        "write": {"io_bytes": 0, "bw_bytes": 0}}]}
    script = ("#!/bin/sh\n"
              "for a in \"$@\"; do case \"$a\" in --ioengine=*) e=\"${a#--ioengine=}\" ;; esac; done\n"
              "case \" %s \" in *\" $e \"*) ;; *) echo \"fio: engine $e not loadable\" >&2; exit 1 ;; esac\n"
              "cat <<'JSON'\n%s\nJSON\n") % (" ".join(engines_that_work), json.dumps(doc, indent=2))
    path = os.path.join(d, "fio")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    env = dict(os.environ)
    env["PATH"] = d + os.pathsep + env.get("PATH", "")
    return env


# 1. The warm references next to the emel-io contenders (issue 14): the naive
#    read and first touch exist, and every cold line is there even when not
#    asked (tools/bench greps each ratio: a missing one ends the script).
#    Guards against the references or their ratios going missing.
r = subprocess.run([bench, "--smoke", model], capture_output=True, text=True, timeout=300)
check(r.returncode == 0, "--smoke exits 0: %r" % r.stderr)
k = keys(r.stdout)
for key in ("naive_read_gbps", "naive_read_ms", "first_touch_gbps", "memcpy_gbps", "read_gbps", "read_vs_naive",
            "read_vs_memcpy", "read_vs_cat", "memcpy_lanes"):
    check(number(k.get(key)) is not None and number(k.get(key)) > 0, "%s is a positive number: %r" % (key, k.get(key)))
for key in ("fio_cold_gbps", "read_direct_cold_gbps", "read_buffered_cold_gbps", "mmap_cold_gbps", "cat_cold_gbps",
            "read_cold_vs_fio", "read_buffered_cold_vs_fio", "mmap_cold_vs_fio", "read_cold_vs_cat_cold"):
    check(k.get(key, "").startswith("skipped (not asked"), "%s says skipped when --cold is not given: %r"
          % (key, k.get(key)))

# 1b. The staged strategy's figures (issue 12), its own run: the three ratios
#     tools/bench greps, the peak memory of the default 64 MiB ring, and cold
#     lines that say why they are skipped. Guards against a figure missing
#     (tools/bench would end) or the ring's peak reading as the model's.
r = subprocess.run([bench, "--staged", "--runs", "1", model], capture_output=True, text=True, timeout=300)
check(r.returncode == 0, "--staged exits 0: %r" % r.stderr)
k = keys(r.stdout)
for key in ("staged_vs_read", "staged_gbps", "staged_read_gbps", "staged_peak_rss_mib"):
    check(number(k.get(key)) is not None and number(k.get(key)) > 0, "%s is a positive number: %r" % (key, k.get(key)))
check(number(k.get("staged_ring_mib")) == 64, "staged_ring_mib: %r" % k.get("staged_ring_mib"))
for key in ("staged_cold_vs_direct", "staged_cold_vs_fio", "staged_direct_cold_gbps"):
    check(k.get(key, "").startswith("skipped (not asked"), "%s says skipped without --cold: %r" % (key, k.get(key)))
env = fake_fio(["libaio"])
drop = os.path.join(work, "drop_caches")
open(drop, "w").close()
env["EMEL_BENCH_DROP_CACHES"] = drop
r = subprocess.run([bench, "--staged", "--runs", "2", "--cold", model], capture_output=True, text=True, env=env, timeout=300)
k = keys(r.stdout)
for key in ("staged_cold_vs_direct", "staged_cold_vs_fio", "staged_direct_cold_gbps", "staged_read_direct_cold_gbps"):
    check(number(k.get(key)) is not None and number(k.get(key)) > 0, "--staged --cold: %s is a number: %r" % (key, k.get(key)))

# 1c. Settled fresh memory (issue 14; README "Fresh memory"): both contenders'
#     figures and the ratio tools/bench greps, and whether this kernel hands
#     freed memory back. Guards against a missing line ending tools/bench.
env = dict(os.environ, EMEL_BENCH_SETTLE_SECONDS="0")
r = subprocess.run([bench, "--settled", "--runs", "1", model], capture_output=True, text=True, env=env, timeout=300)
check(r.returncode == 0, "--settled exits 0: %r" % r.stderr)
k = keys(r.stdout)
for key in ("naive_read_settled_gbps", "read_settled_gbps", "read_vs_naive_settled"):
    check(number(k.get(key)) is not None and number(k.get(key)) > 0, "%s is a positive number: %r" % (key, k.get(key)))
check("page_reporting_order" in k, "page_reporting_order is said: %r" % r.stdout)

# 2. fio's figure is its JSON's read bw_bytes, from the first engine that runs:
#    io_uring, else libaio, else psync (said to be synchronous). Guards against
#    a parse of the wrong section (write) or a silent fall to no reference.
for works, engine in ((["io_uring", "libaio", "psync"], "io_uring"), (["libaio", "psync"], "libaio"),
                      (["psync"], "psync")):
    r = subprocess.run([bench, "--fio", model], capture_output=True, text=True, env=fake_fio(works), timeout=60)
    k = keys(r.stdout)
    check(r.returncode == 0, "--fio with %s exits 0: %r" % (works, r.stdout + r.stderr))
    check(k.get("fio_engine", "").split(" ")[0] == engine, "engine %s chosen from %s: %r" % (engine, works, k.get("fio_engine")))
    check(k.get("fio_gbps") == "3.00", "fio_gbps from bw_bytes: %r" % k.get("fio_gbps"))
    check(k.get("fio_bytes") == "2097152", "fio_bytes from io_bytes: %r" % k.get("fio_bytes"))
check("synchronous" in k.get("fio_engine", ""), "psync is said to be synchronous: %r" % k.get("fio_engine"))
r = subprocess.run([bench, "--fio", model], capture_output=True, text=True, env=fake_fio([]), timeout=60)
k = keys(r.stdout)
check(r.returncode != 0 and k.get("fio_engine") == "none" and k.get("fio_gbps", "").startswith("skipped"),
      "no engine works: said, not a figure: %r" % r.stdout)

# 3. Cold: without permission to drop caches every cold line says so (never a
#    figure of a warm cache passed off as cold); with it (here a plain file
#    stands in for /proc/sys/vm/drop_caches, so no one's cache is dropped) fio
#    runs in the rotation and every ratio is a number. Guards against a cold
#    line missing or a cold figure printed when the cache could not be dropped.
env = fake_fio(["libaio"])
env["EMEL_BENCH_DROP_CACHES"] = os.path.join(work, "no-such-dir", "drop_caches")
r = subprocess.run([bench, "--smoke", "--cold", model], capture_output=True, text=True, env=env, timeout=300)
k = keys(r.stdout)
check(r.returncode == 0, "--cold without permission exits 0: %r" % r.stderr)
cold = ("fio_cold_gbps", "cat_cold_gbps", "read_direct_cold_gbps", "read_buffered_cold_gbps", "mmap_cold_gbps",
        "read_cold_vs_fio", "read_buffered_cold_vs_fio", "mmap_cold_vs_fio", "read_cold_vs_cat_cold")
for key in cold:
    check(k.get(key, "").startswith("skipped (drop_caches not permitted"), "%s skipped: %r" % (key, k.get(key)))
drop = os.path.join(work, "drop_caches")
open(drop, "w").close()
env["EMEL_BENCH_DROP_CACHES"] = drop
r = subprocess.run([bench, "--runs", "5", "--cold", model], capture_output=True, text=True, env=env, timeout=300)
k = keys(r.stdout)
check(r.returncode == 0, "--cold exits 0: %r" % r.stderr)
for key in cold:
    check(number(k.get(key)) is not None and number(k.get(key)) > 0, "%s is a number: %r" % (key, k.get(key)))
check(k.get("fio_cold_gbps") == "3.00", "fio_cold_gbps is fio's bw_bytes: %r" % k.get("fio_cold_gbps"))
check(k.get("fio_engine", "").startswith("libaio"), "fio_engine: %r" % k.get("fio_engine"))
with open(drop) as f:
    check(f.read() == "3\n", "the caches were asked to drop (3: page cache, dentries and inodes)")

for f in failures:
    print("FAIL:", f)
print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
