#!/usr/bin/env python3
"""emel-load as a script would use it: exit codes, the error line, JSON, SIGINT,
and corrupt files that must end with status 1 and the named error, promptly,
in little memory, never by a signal.

  emel_load_cli.py EMEL_LOAD WORKDIR
"""
import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys

from cli_check import check, finish

EMEL_LOAD, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)


def limit_memory():
    # 1 GiB of address space: a loader that believes a 2^63 count dies here.
    if os.environ.get("EMEL_SANITIZED") != "1":
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([EMEL_LOAD] + args, capture_output=True, text=True, errors="replace", timeout=20,
                          preexec_fn=limit_memory, env=e)


# ---- a small GGUF writer, independent of the C one, so each field can be broken ----
def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def kv_u32(k, v):
    return s(k) + struct.pack("<I", 4) + struct.pack("<I", v)


def kv_str(k, v):
    return s(k) + struct.pack("<I", 8) + s(v)


def model(tensors=None, version=3, magic=b"GGUF", alignment=32, kvs=None, n_kv=None, n_tensors=None,
          data=None, extra_kv=b""):
    """tensors: list of (name, dims, type, relative offset); F32 data follows."""
    if tensors is None:
        tensors = [("a.weight", [8, 4], 0, 0), ("b.weight", [16], 0, 128)]
    kvs = kvs if kvs is not None else [kv_str("general.architecture", "llama"), kv_u32("general.alignment", alignment)]
    body = b"".join(kvs) + extra_kv
    infos = b""
    for name, dims, typ, off in tensors:
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", typ, off)
    head = magic + struct.pack("<I", version)
    head += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    meta = head + body + infos
    pad = (-len(meta)) % alignment if alignment and alignment & (alignment - 1) == 0 else 0
    if data is None:
        data = bytes(range(256)) * 2  # covers both tensors (128 + 64 bytes) with room
    return meta + b"\0" * pad + data


def write(name, blob):
    p = os.path.join(WORK, name)
    with open(p, "wb") as f:
        f.write(blob)
    return p


good = write("good.gguf", model())

# ---- success, JSON fields ----
for strategy in ("mmap", "read"):
    r = run(["--json", "--verify", "--strategy", strategy, good])
    check(f"a valid file loads with {strategy}: exit 0", r.returncode == 0, r.stderr)
    try:
        j = json.loads(r.stdout)
        fields = {"file", "strategy", "tensor_count", "total_bytes", "seconds", "tensors"}
        check(f"{strategy}: JSON has the documented fields", fields <= set(j), str(set(j)))
        t = j["tensors"][0]
        check(f"{strategy}: tensor objects have name/type/dims/offset/bytes/file_index/xxh3",
              {"name", "type", "dims", "offset", "bytes", "file_index", "xxh3"} <= set(t), str(t))
        check(f"{strategy}: xxh3 is 16 lowercase hex digits", re.fullmatch(r"[0-9a-f]{16}", t["xxh3"]) is not None)
        check(f"{strategy}: totals", j["tensor_count"] == 2 and j["total_bytes"] == 128 + 64, str(j))
    except (ValueError, KeyError, IndexError) as e:
        check(f"{strategy}: JSON parses", False, f"{e}: {r.stdout[:200]}")

r = run(["--quiet", good])
check("--quiet prints nothing", r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr)
r = run(["--strategy", "read", good])
check("the human summary names tensors, bytes, GB/s and strategy",
      r.returncode == 0 and re.search(r"2 tensors, 192 bytes in [0-9.]+ s \([0-9.]+ GB/s\), strategy read", r.stdout),
      r.stdout)
# Guards against: a plain mmap load (which reads nothing) printing a
# throughput such as 19055 GB/s.
r = run([good])
check("a plain mmap load says 'mapped, not read', not a throughput",
      r.returncode == 0 and re.search(r"2 tensors, 192 bytes in [0-9.]+ s \(mapped, not read\), strategy mmap$",
                                      r.stdout.strip()), r.stdout)
r = run(["--populate", good])
check("a populated mmap load has a throughput",
      r.returncode == 0 and re.search(r"\([0-9.]+ GB/s\), strategy mmap, populate", r.stdout), r.stdout)
r = run(["--verify", good])
check("--verify reports its own time and rate after the load's",
      r.returncode == 0 and re.search(r"\(mapped, not read\), strategy mmap, verified \(xxh3 per tensor\) in [0-9.]+ s "
                                      r"\([0-9.]+ GB/s\)", r.stdout), r.stdout)
# Guards against a read load that fell back from io_uring to pread without a
# word: read_io says how the read strategy read, and why not with the ring.
for args, env, want in ((["--strategy", "read"], {}, ("io_uring", "pread", "mixed")),
                        (["--strategy", "read", "--direct"], {}, ("io_uring", "pread", "mixed")),
                        (["--strategy", "read"], {"EMEL_LOAD_TEST_RING_ERRNO": "38"}, ("pread",))):
    r = run(["--json"] + args + [good], env=env)
    try:
        io = json.loads(r.stdout)["read_io"]
        ok = io["engine"] in want and io["reads"] >= 1 and io["ring_reads"] <= io["reads"]
        if env:
            ok = ok and io["ring_fallbacks"] >= 1 and io["ring_errno"] == 38 and io["ring_reads"] == 0
        check(f"JSON {' '.join(args)} {env}: read_io names the engine ({want})", ok, r.stdout[:400])
    except (ValueError, KeyError, TypeError) as e:
        check(f"JSON {' '.join(args)} {env}: read_io", False, f"{e}: {r.stdout[:300]}")
r = run(["--strategy", "read", good], env={"EMEL_LOAD_TEST_RING_ERRNO": "38"})
check("the summary says a read load fell back to pread, and why",
      r.returncode == 0 and re.search(r"strategy read, pread \(no io_uring: [^)]+\)$", r.stdout.strip()), r.stdout)
r = run(["--json", good])
check("read_io is null for mmap", r.returncode == 0 and json.loads(r.stdout).get("read_io", 0) is None, r.stdout[:300])
for args, mapped_only in ((["--strategy", "mmap"], True), (["--strategy", "mmap", "--populate"], False),
                          (["--strategy", "read"], False)):
    r = run(["--json", "--verify"] + args + [good])
    try:
        j = json.loads(r.stdout)
        check(f"JSON {' '.join(args)}: mapped_only {mapped_only}, verify_seconds apart from seconds",
              j["mapped_only"] is mapped_only and isinstance(j["verify_seconds"], float) and j["verify_seconds"] >= 0
              and isinstance(j["seconds"], float), r.stdout[:300])
    except (ValueError, KeyError) as e:
        check(f"JSON {' '.join(args)} parses", False, f"{e}: {r.stdout[:200]}")

# ---- a file truncated under a mapped load: FILE_CHANGED, never SIGBUS (exit 135) ----
# Guards against: --verify hashing mapped pages the file no longer has and
# dying of SIGBUS. Tensor b lies past the cut; the hook cuts the file after
# the load, before the hashing.
big_tensors = [("a.weight", [1024], 0, 0), ("b.weight", [4096], 0, 16384)]
for extra in ([], ["--populate"]):
    cut_file = write("cut.gguf", model(tensors=big_tensors, data=bytes(range(256)) * 128))
    r = run(["--strategy", "mmap", "--verify"] + extra + [cut_file],
            env={"EMEL_LOAD_TEST_TRUNCATE_BEFORE_VERIFY": "8192"})
    check(f"mmap --verify {' '.join(extra)} of a file truncated under the load: exit 1 with FILE_CHANGED",
          r.returncode == 1 and re.search(r"^emel-load: .*cut\.gguf: FILE_CHANGED: .*tensor b\.weight", r.stderr, re.M),
          f"exit {r.returncode}: {r.stderr}")

# ---- --expect MANIFEST: every tensor's hash compared ----
r = run(["--json", "--verify", good])
manifest_path = write("manifest.json", r.stdout.encode())
r = run(["--expect", manifest_path, good])
check("--expect with emel-load's own --json --verify output: exit 0",
      r.returncode == 0 and "matches the manifest" in r.stdout, f"{r.returncode} {r.stdout} {r.stderr}")
r = run(["--expect", manifest_path, "--strategy", "read", good])
check("--expect: the read strategy's hashes match the mmap manifest", r.returncode == 0, r.stderr)
mine = json.loads(open(manifest_path).read())
a_hash = mine["tensors"][0]["xxh3"]
# Guards against: --verify computing hashes and comparing them with nothing.
damaged = {"tensors": [{"name": "a.weight", "xxh3": "0000000000000000"}, mine["tensors"][1]]}
r = run(["--expect", write("damaged.json", json.dumps(damaged).encode()), good])
check("--expect: a different hash exits 1 with one TENSOR_HASH_MISMATCH line and a summary",
      r.returncode == 1 and re.search(r"^emel-load: .*good\.gguf: TENSOR_HASH_MISMATCH: tensor a\.weight: "
                                      r"expected 0000000000000000, got " + a_hash + "$", r.stderr, re.M)
      and len(re.findall("TENSOR_HASH_MISMATCH", r.stderr)) == 1 and "1 of 2 tensors differ" in r.stderr
      and r.stdout == "", r.stderr)
listed = {"tensors": [{"name": "a.weight", "xxh3": a_hash.upper()}, {"name": "c.weight", "xxh3": a_hash}],
          "other": [1, 2.5e3, None, True, {"x": "\u00e9"}]}
r = run(["--expect", write("partial.json", json.dumps(listed).encode()), good])
check("--expect: a tensor missing from the manifest and one only in it are both errors",
      r.returncode == 1 and re.search(r"TENSOR_HASH_MISMATCH: tensor b\.weight: not in the manifest", r.stderr)
      and re.search(r"TENSOR_UNKNOWN: tensor c\.weight: in the manifest, not in the file", r.stderr)
      and "1 not in the manifest, 1 only in the manifest" in r.stderr, r.stderr)
bad_manifests = {
    "not JSON": b"tensors: a",
    "truncated": open(manifest_path, "rb").read()[:40],
    "no tensors": b'{"file": "x"}',
    "tensors not an array": b'{"tensors": {}}',
    "entry without xxh3": b'{"tensors": [{"name": "a.weight"}]}',
    "short hash": b'{"tensors": [{"name": "a.weight", "xxh3": "12"}]}',
    "hash as a number": b'{"tensors": [{"name": "a.weight", "xxh3": 12}]}',
    "listed twice": b'{"tensors": [{"name": "a.weight", "xxh3": "0000000000000000"},'
                    b'{"name": "a.weight", "xxh3": "0000000000000000"}]}',
    "trailing comma": b'{"tensors": [],}',
    "text after": b'{"tensors": []} x',
    "deep": b'{"x": ' + b"[" * 100000 + b"]" * 100000 + b', "tensors": []}',
    "long name": b'{"tensors": [{"name": "' + b"n" * 300 + b'", "xxh3": "0000000000000000"}]}',
    "bad escape": b'{"tensors": [{"name": "a\\q", "xxh3": "0000000000000000"}]}',
    "lone surrogate": b'{"tensors": [{"name": "a\\udc00", "xxh3": "0000000000000000"}]}',
    "control byte": b'{"tensors": [{"name": "a\x01", "xxh3": "0000000000000000"}]}',
    "empty": b"",
}
for why, blob in bad_manifests.items():
    r = run(["--expect", write("bad-manifest.json", blob), good])
    check(f"a damaged manifest ({why}): exit 2 with one --expect line",
          r.returncode == 2 and r.stderr.startswith("emel-load: --expect ") and r.stderr.count("\n") == 1
          and r.stdout == "", f"{r.returncode} {r.stderr[:200]}")
r = run(["--expect", os.path.join(WORK, "no-such-manifest.json"), good])
check("a missing manifest: exit 2", r.returncode == 2 and "--expect" in r.stderr, r.stderr)
rng_m = __import__("random").Random(13)
base_m = open(manifest_path, "rb").read()
signals_m = 0
for n in range(150):
    blob = bytearray(base_m)
    for _ in range(rng_m.randint(1, 6)):
        at = rng_m.randrange(len(blob))
        blob[at:at + rng_m.randint(0, 3)] = bytes(rng_m.randrange(256) for _ in range(rng_m.randint(0, 3)))
    r = run(["--expect", write("mutant-manifest.json", bytes(blob)), good])
    if r.returncode not in (0, 1, 2):
        signals_m += 1
        print(f"FAIL manifest mutant {n}: exit {r.returncode}: {r.stderr[:200]}")
check("150 randomly damaged manifests: every exit is 0, 1 or 2, none by a signal", signals_m == 0)

# ---- usage errors: exit 2 ----
for args, why in ((["--strategy", "tape", good], "unknown strategy"), (["--bogus"], "unknown option"),
                  ([good, good], "two files"), (["--populate", "--strategy", "read", good], "populate with read"),
                  (["--direct", good], "direct with mmap"), (["--expect"], "--expect without a manifest")):
    r = run(args)
    check(f"usage error ({why}): exit 2", r.returncode == 2, f"{r.returncode} {r.stderr}")

# ---- SIGINT releases everything and exits 130 ----
r = run(["--strategy", "read", good], env={"EMEL_LOAD_TEST_SIGINT_AFTER": "1"})
check("SIGINT during a load: exit 130 after releasing", r.returncode == 130 and "interrupted" in r.stderr,
      f"{r.returncode} {r.stderr}")

# ---- corrupt files: exit 1, one line "emel-load: FILE: NAME: message" ----
big = 1 << 63
corrupt = {
    "BAD_MAGIC": model(magic=b"GGUX"),
    "GGUF_BIG_ENDIAN": model()[:4] + struct.pack(">I", 3) + model()[8:],
    "GGUF_BAD_VERSION": model(version=1),
    "GGUF_BAD_VERSION#4": model(version=4),
    "GGUF_COUNT_TOO_LARGE": model(n_kv=big),
    "GGUF_COUNT_TOO_LARGE#tensors": model(n_tensors=big),
    "GGUF_STRING_TOO_LONG": model(kvs=[struct.pack("<Q", big - 1) + b"k"]),
    "GGUF_BAD_KEY_TYPE": model(kvs=[s("k") + struct.pack("<I", 13) + b"\0" * 8]),
    "GGUF_ARRAY_TOO_LONG": model(kvs=[s("k") + struct.pack("<II", 9, 4) + struct.pack("<Q", big)]),
    "GGUF_BAD_DIMS": model(tensors=[("a", [1, 1, 1, 1, 1], 0, 0)]),
    "GGUF_BAD_DIMS#0": model(tensors=[("a", [], 0, 0)]),
    "GGUF_SIZE_OVERFLOW": model(tensors=[("a", [1 << 40, 1 << 40], 0, 0)]),
    "GGUF_BAD_TENSOR_TYPE": model(tensors=[("a", [8], 77, 0)]),
    "GGUF_BAD_ALIGNMENT": model(alignment=48),
    "GGUF_MISALIGNED_OFFSET": model(tensors=[("a", [8], 0, 8)]),
    "GGUF_SPAN_OUTSIDE_FILE": model(tensors=[("a", [8], 0, 1 << 20)]),
    "GGUF_SPAN_OUTSIDE_FILE#wrap": model(tensors=[("a", [8], 0, (1 << 64) - 32)]),
    "GGUF_OVERLAPPING_SPANS": model(tensors=[("a", [32], 0, 0), ("b", [8], 0, 64)]),
    "GGUF_DUPLICATE_NAME": model(tensors=[("a", [8], 0, 0), ("a", [8], 0, 32)]),
    "GGUF_DUPLICATE_KEY": model(kvs=[kv_u32("k", 1), kv_u32("k", 2)]),
    "GGUF_BAD_BLOCK_SIZE": model(tensors=[("a", [33], 2, 0)]),
}
full = model()
for cut in (0, 3, 4, 7, 8, 16, 23, 24, 40, 60, 90, 120):
    corrupt[f"GGUF_TRUNCATED#{cut}"] = full[:cut]
corrupt["GGUF_SPAN_OUTSIDE_FILE#data-cut"] = full[:len(full) - 400]

line_re = re.compile(r"^emel-load: (.+): ([A-Z0-9_]+): (.+)$")
for key, blob in corrupt.items():
    want = key.split("#")[0]
    if want == "BAD_MAGIC":
        want = "GGUF_BAD_MAGIC"
    path = write(f"corrupt-{key.replace('#', '-')}.gguf", blob)
    for strategy in ("mmap", "read"):
        try:
            r = run(["--strategy", strategy, path])
        except subprocess.TimeoutExpired:
            check(f"{key} ({strategy}) ends promptly", False, "timed out")
            continue
        lines = r.stderr.strip().splitlines()
        m = line_re.match(lines[0]) if len(lines) == 1 else None
        ok = r.returncode == 1 and m is not None and m.group(2) == want and m.group(1) == path
        if want == "GGUF_TRUNCATED" and m and r.returncode == 1:
            ok = m.group(2).startswith("GGUF_")  # where the cut falls decides which check sees it first
        sig = f" (killed by {signal.Signals(-r.returncode).name})" if r.returncode < 0 else ""
        check(f"{key} ({strategy}): exit 1 with {want}", ok, f"exit {r.returncode}{sig}: {r.stderr.strip()[:200]}")

# ---- random damage: whatever the bytes, emel-load exits 0 or 1, never by a signal ----
import random
rng = random.Random(20261122)
base = model(tensors=[("a.weight", [8, 4], 0, 0), ("b.weight", [16], 0, 128), ("c.weight", [64], 2, 192)],
             data=bytes(range(256)) * 3)
signals = 0
runs = int(os.environ.get("EMEL_CLI_MUTATIONS", "150"))
for n in range(runs):
    blob = bytearray(base)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(blob))
        kind = rng.random()
        if kind < 0.5:
            blob[at] = rng.randrange(256)
        elif kind < 0.8:  # a length or count field turned huge or negative
            blob[at:at + 8] = struct.pack("<Q", rng.choice([1 << 63, (1 << 64) - 1, 1 << 32, rng.randrange(1 << 40)]))
        else:
            del blob[at:]
            break
    path = write("mutant.gguf", bytes(blob))
    r = run(["--verify", "--strategy", rng.choice(["mmap", "read"]), path])
    if r.returncode not in (0, 1):
        signals += 1
        keep = write(f"mutant-{n}.gguf", bytes(blob))
        print(f"FAIL mutant {n} ({keep}): exit {r.returncode}: {r.stderr[:200]}")
check(f"{runs} randomly damaged files: every exit is 0 or 1, none by a signal", signals == 0)

r = run([os.path.join(WORK, "no-such-file.gguf")])
check("a missing file: exit 1 with OPEN_FAILED", r.returncode == 1 and ": OPEN_FAILED: " in r.stderr, r.stderr)


# ---- split sets: the error names the part at fault and the check that failed ----
def kv_u16(k, v):
    return s(k) + struct.pack("<I", 2) + struct.pack("<H", v)


def kv_i32(k, v):
    return s(k) + struct.pack("<I", 5) + struct.pack("<i", v)


def part_path(prefix, i, n):
    return f"{prefix}-{i + 1:05d}-of-{n:05d}.gguf"


def split_set(name, n=3, keys=None, tensors=None):
    """Writes a set of n parts, one F32 tensor each, as gguf-split does: split.no, split.count and
    split.tensors.count in every part. keys[i] overrides part i's (None leaves the key out);
    tensors[i] overrides its tensor count. Returns (first path, prefix)."""
    prefix = os.path.join(WORK, name)
    for i in range(n):
        k = {"split.no": i, "split.count": n, "split.tensors.count": n}
        k.update((keys or {}).get(i, {}))
        kvs = [kv_str("general.architecture", "llama")] if i == 0 else []
        kvs += [kv_u16(key, k[key]) for key in ("split.no", "split.count") if k[key] is not None]
        if k["split.tensors.count"] is not None:
            kvs.append(kv_i32("split.tensors.count", k["split.tensors.count"]))
        count = (tensors or {}).get(i, 1)
        ts = [(f"p{i}.t{j}.weight", [8], 0, 32 * j) for j in range(count)]
        with open(part_path(prefix, i, n), "wb") as f:
            f.write(model(tensors=ts, kvs=kvs))
    return part_path(prefix, 0, n), prefix


first, prefix = split_set("split-good")
for strategy in ("mmap", "read"):
    r = run(["--json", "--strategy", strategy, first])
    ok = r.returncode == 0 and [t["file_index"] for t in json.loads(r.stdout or "{}").get("tensors", [])] == [0, 1, 2]
    check(f"a valid split set loads with {strategy}: a tensor in each part", ok, r.stderr)

# Guards against a missing middle part reported as OPEN_FAILED on part 1, and
# GGUF_SPLIT_INVALID that says neither the part nor the check (issue 13).
split_cases = [
    ("missing middle part", {}, {}, "OPEN_FAILED", 2, None),
    ("bad numbering", {1: {"split.no": 2}}, {}, "GGUF_SPLIT_INVALID", 2, "split.no is not this part's place"),
    ("split.count disagrees", {2: {"split.count": 4}}, {}, "GGUF_SPLIT_INVALID", 3,
     "split.count differs from the first part's"),
    ("split.tensors.count disagrees", {2: {"split.tensors.count": 4}}, {}, "GGUF_SPLIT_INVALID", 3,
     "split.tensors.count differs from the first part's"),
    ("tensor counts do not add up", {}, {1: 2}, "GGUF_SPLIT_INVALID", 0,
     "the parts' tensor counts do not add up to split.tensors.count"),
]
for n, (why, keys, tensors, code, part, detail) in enumerate(split_cases):
    first, prefix = split_set(f"split-bad{n}", keys=keys, tensors=tensors)
    if why == "missing middle part":
        os.unlink(part_path(prefix, 1, 3))
    r = run(["--strategy", "read", first])
    lines = r.stderr.strip().splitlines()
    m = line_re.match(lines[0]) if len(lines) == 1 else None
    tail = m.group(3) if m else ""
    ok = r.returncode == 1 and m is not None and m.group(1) == first and m.group(2) == code
    if part:
        ok = ok and f": part {part} of 3 ({part_path(prefix, part - 1, 3)})" in tail
    else:
        ok = ok and ": part " not in tail
    if detail:
        ok = ok and f": {detail}" in tail
    if why == "missing middle part":
        ok = ok and tail.startswith("opening the model file failed (No such file or directory): part 2 of 3 (")
    check(f"split set, {why}: exit 1, {code}, part {part or 'none'} named", ok, r.stderr.strip()[:300])


# ---- SIGINT ends every phase, not only the gaps between load batches ----
# Guards: the handler only set a flag read between batches, so a SIGINT while
# indexing, inside a batch, while hashing or while printing was ignored until
# that phase ended. EMEL_LOAD_TEST_PAUSE stops emel-load at the first check of
# a phase (inside a library call for index and load) until a signal arrives:
# the test then sends a real SIGINT at that known moment.
import select
import time


def interrupt_in(phase, args):
    e = dict(os.environ, EMEL_LOAD_TEST_PAUSE=phase)
    p = subprocess.Popen([EMEL_LOAD] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    deadline, err = time.time() + 10, b""
    while b"paused in " + phase.encode() not in err and time.time() < deadline and p.poll() is None:
        if select.select([p.stderr], [], [], 0.2)[0]:
            err += os.read(p.stderr.fileno(), 4096)
    if b"paused in " + phase.encode() not in err:
        p.kill()
        out, rest = p.communicate()
        return None, (err + rest).decode(errors="replace"), 0
    sent = time.time()
    p.send_signal(signal.SIGINT)
    try:
        out, rest = p.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        out, rest = p.communicate()
        return "hung", (err + rest).decode(errors="replace"), 0
    return p.returncode, (err + rest).decode(errors="replace"), time.time() - sent


for phase, args in (("index", [good]), ("load", ["--strategy", "read", good]), ("load", ["--strategy", "mmap", good]),
                    ("load", ["--strategy", "staged", good]),
                    ("verify", ["--verify", good]), ("output", ["--json", good])):
    code, err, took = interrupt_in(phase, args)
    check(f"SIGINT while in {phase} ({' '.join(args[:-1]) or 'defaults'}): exit 130 promptly, everything released",
          code == 130 and "everything released" in err and took < 2, f"exit {code} after {took:.2f} s: {err[-300:]}")

# ---- output that cannot be written is an error, not a silent exit 0 ----
# Guards: `--json FILE >&-` and `> /dev/full` exited 0 with nothing written.
def run_out(args, stdout=None, close_stdout=False):
    def pre():
        limit_memory()
        if close_stdout:
            os.close(1)
    return subprocess.run([EMEL_LOAD] + args, stdout=stdout, stderr=subprocess.PIPE, timeout=20, preexec_fn=pre)


with open("/dev/full", "wb") as full:
    for args in (["--json", good], [good]):
        r = run_out(args, stdout=full)
        check(f"{' '.join(args[:-1]) or 'summary'} to /dev/full: exit 1 with a write error",
              r.returncode == 1 and r.stderr.decode().startswith("emel-load: write error: "), f"{r.returncode} {r.stderr}")
r = run_out(["--json", good], close_stdout=True)
check("--json with stdout closed: exit 1 with a write error",
      r.returncode == 1 and r.stderr.decode().startswith("emel-load: write error: "), f"{r.returncode} {r.stderr}")
r = run_out(["--quiet", good], close_stdout=True)
check("--quiet with stdout closed: nothing to write, exit 0", r.returncode == 0, f"{r.returncode} {r.stderr}")

# ---- CLI details ----
# Guards: -h was an unknown option; an empty FILE was reported as "no bundled sample".
r = run(["-h"])
check("-h works like --help", r.returncode == 0 and r.stdout.startswith("usage: emel-load"), f"{r.returncode} {r.stderr}")
# Guards: emel-load had no --version (an unknown option, exit 2); it prints the
# library's emel_version(), which is the project's version (CMake passes it).
r = run(["--version"])
want = f"emel-load {os.environ.get('EMEL_IO_VERSION', '?')}\n"
check("--version prints 'emel-load VERSION', exit 0", r.returncode == 0 and r.stdout == want and r.stderr == "",
      f"{r.returncode} {r.stdout!r} (want {want!r}) {r.stderr!r}")
with open("/dev/full", "wb") as full:
    r = run_out(["--version"], stdout=full)
check("--version to /dev/full: exit 1 with a write error",
      r.returncode == 1 and r.stderr.decode().startswith("emel-load: write error: "), f"{r.returncode} {r.stderr}")
r = run([""])
check("an empty FILE is a usage error that says so", r.returncode == 2 and "FILE is empty" in r.stderr,
      f"{r.returncode} {r.stderr}")
# Guards: the Limits table says INVALID_PATH for paths over 4095 bytes; emel-load said OPEN_FAILED.
r = run([os.path.join(WORK, "x" * 5000)])
check("a path over 4095 bytes: exit 1 with INVALID_PATH", r.returncode == 1 and ": INVALID_PATH: " in r.stderr,
      r.stderr)
# Guards: a count over the index's cap (2^20 tensors) was "larger than the file can hold" about a file that holds it.
capped = write("capped.gguf", model()[:16])  # magic, version, tensor count (patched below)
with open(capped, "r+b") as f:
    f.seek(8)
    f.write(struct.pack("<QQ", (1 << 20) + 1, 0))
    f.truncate(64 << 20)  # sparse: room for every tensor info, so only the cap refuses it
r = run([capped])
check("more tensors than the index's default cap: GGUF_LIMIT_EXCEEDED",
      r.returncode == 1 and ": GGUF_LIMIT_EXCEEDED: " in r.stderr and "emel_gguf_config" in r.stderr, r.stderr)

# ---- names are bytes: JSON stays valid UTF-8, error lines stay one line ----
# Guards: names were copied byte for byte into the JSON (invalid UTF-8 made the
# document unreadable) and into error lines (a newline split the line).
odd_names = [b"plain.weight", "ünï€😀".encode(), b"bad\xff\xfe", b"ctl\n\t\x01\x7f", b'q"uote\\back',
             b"overlong\xc0\xaf", b"surrogate\xed\xa0\x80", b"cut\xe2\x82"]
odd = model(tensors=[(n, [8], 0, 32 * i) for i, n in enumerate(odd_names)], data=bytes(32 * len(odd_names)))
odd_path = os.path.join(WORK.encode(), b'odd-\xff"\\\n\x1b[31m.gguf')
with open(odd_path, "wb") as f:
    f.write(odd)


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


r = subprocess.run([EMEL_LOAD.encode(), b"--json", odd_path], capture_output=True, timeout=20)
try:
    j = json.loads(r.stdout.decode("utf-8"))  # strict: invalid UTF-8 or raw control characters fail here
    names = [t["name"] for t in j["tensors"]]
    ok = r.returncode == 0 and len(names) == len(odd_names)
    for want, t in zip(odd_names, j["tensors"]):
        if is_utf8(want):
            ok = ok and t["name"] == want.decode() and "name_hex" not in t
        else:
            ok = ok and "\ufffd" in t["name"] and bytes.fromhex(t["name_hex"]) == want
    ok = ok and bytes.fromhex(j["file_hex"]) == odd_path and "\ufffd" in j["file"]
    check("JSON is valid UTF-8 whatever names hold; invalid bytes are U+FFFD with exact *_hex", ok, str(names))
except (ValueError, KeyError) as e:
    check("JSON is valid UTF-8 whatever names hold", False, f"{e}: {r.stdout[:300]!r}")
# Guards: the human summary printed the file name raw, so a newline in it split the line.
r = subprocess.run([EMEL_LOAD.encode(), odd_path], capture_output=True, timeout=20)
check("the human summary stays one line whatever the file name holds",
      r.returncode == 0 and len(r.stdout.splitlines()) == 1 and b"\\x0a" in r.stdout and b"\\x1b" in r.stdout,
      repr(r.stdout))
broken = odd_path + b".broken"
with open(broken, "wb") as f:
    f.write(model(magic=b"GGUX"))
r = subprocess.run([EMEL_LOAD.encode(), broken], capture_output=True, timeout=20)
lines = r.stderr.splitlines()
check("an error line stays one line (control bytes escaped) and valid UTF-8 whatever the file name holds",
      r.returncode == 1 and len(lines) == 1 and is_utf8(r.stderr) and b"\\x0a" in lines[0] and b"\\x1b" in lines[0]
      and b"\\xff" in lines[0] and b": GGUF_BAD_MAGIC: " in lines[0], repr(r.stderr))

# ---- --shard K/N: rank K's rows [K*R//N, (K+1)*R//N) of every tensor's outermost dimension ----
# Guards against slices from the wrong rows (an off-by-one in the row formula, a
# row size that ignores Q4_0's blocks), JSON bytes that are the whole tensor's, and
# --verify hashing the whole tensor: every figure is recomputed here from the file.
XXHSUM = shutil.which("xxhsum")


def xxh3(data):
    r = subprocess.run([XXHSUM, "-H3"], input=data, capture_output=True, timeout=20)
    return r.stdout.split()[-1].decode() if r.returncode == 0 else None


# name, dims, ggml type, relative offset, rows, bytes per row (worked out by hand)
shard_tensors = [("a.weight", [8, 7], 0, 0, 7, 32),      # F32, 7 rows: uneven for every N > 1
                 ("q.weight", [64, 5], 2, 224, 5, 36),   # Q4_0: a row is 2 blocks of 18 bytes
                 ("n.weight", [13], 1, 416, 13, 2),      # F16, 1-D: a row is one element
                 ("t.weight", [4, 2], 0, 448, 2, 16)]    # 2 rows: N > 2 gives empty slices
shard_data = bytes((i * 131 + 7) % 251 for i in range(512))
shard_path = write("shard.gguf", model(tensors=[t[:4] for t in shard_tensors], data=shard_data))
with open(shard_path, "rb") as f:
    shard_file = f.read()
if XXHSUM is None:
    print("note: xxhsum not found: --shard hashes are not compared with an independent XXH3")
for strategy in ("mmap", "read", "staged"):
    for n in (1, 2, 3, 5):
        for k in range(n):
            r = run(["--strategy", strategy, "--shard", f"{k}/{n}", "--json", "--verify", shard_path])
            what = f"--shard {k}/{n} ({strategy})"
            if r.returncode != 0:
                check(f"{what}: exit 0", False, r.stderr.strip()[:300])
                continue
            d = json.loads(r.stdout)
            check(f"{what}: JSON shard is rank and count", d.get("shard") == {"rank": k, "count": n}, str(d.get("shard")))
            total = 0
            for t, (name, dims, typ, off, rows, row_bytes) in zip(d["tensors"], shard_tensors):
                begin, end = k * rows // n, (k + 1) * rows // n
                size = (end - begin) * row_bytes
                total += size
                check(f"{what}: {name}: shard_rows [{begin}, {end}) and bytes {size}",
                      t["name"] == name and t["shard_rows"] == [begin, end] and t["bytes"] == size,
                      f"{t['name']} shard_rows {t['shard_rows']} bytes {t['bytes']}")
                start = t["offset"] + begin * row_bytes
                want = xxh3(shard_file[start:start + size]) if XXHSUM else None
                if want is not None:
                    check(f"{what}: {name}: xxh3 is the slice's bytes' ({want})", t["xxh3"] == want, t["xxh3"])
                if size == 0:
                    check(f"{what}: {name}: an empty slice hashes as no bytes", t["xxh3"] == "2d06800538d394c2", t["xxh3"])
            check(f"{what}: total_bytes is the slices' sum", d["total_bytes"] == total, str(d["total_bytes"]))

r = run(["--json", shard_path])
d = json.loads(r.stdout) if r.returncode == 0 else {"tensors": []}
check("without --shard: shard null and every tensor's rows",
      r.returncode == 0 and d["shard"] is None
      and [t["shard_rows"] for t in d["tensors"]] == [[0, t[4]] for t in shard_tensors], r.stdout[:300])
r = run(["--shard", "1/3", shard_path])
check("--shard in the summary line", r.returncode == 0 and ", shard 1/3" in r.stdout, r.stdout)
for bad in ("2/2", "1/0", "0/0", "3", "a/2", "1/", "/2", "-1/2", "1/4294967296", "1/2/3"):
    r = run(["--shard", bad, shard_path])
    check(f"--shard {bad}: usage error (exit 2), nothing on stdout, one line naming it",
          r.returncode == 2 and r.stdout == "" and f"--shard '{bad}'" in r.stderr and len(r.stderr.splitlines()) == 1,
          f"exit {r.returncode}: {r.stderr.strip()}")
r = run(["--shard", "2/2", shard_path])
check("--shard K/N with K >= N names INVALID_SHARD", "INVALID_SHARD" in r.stderr, r.stderr)

# --expect compares slices' hashes: a manifest of the same shard matches, the whole tensors' does not.
same = write("shard-1of2.json", run(["--shard", "1/2", "--json", "--verify", shard_path]).stdout.encode())
whole = write("shard-whole.json", run(["--json", "--verify", shard_path]).stdout.encode())
r = run(["--shard", "1/2", "--expect", same, shard_path])
check("--shard --expect with the same shard's manifest: exit 0", r.returncode == 0, r.stderr)
r = run(["--shard", "1/2", "--expect", whole, shard_path])
check("--shard --expect with a whole-tensor manifest: exit 1, the summary says the manifest needs the same --shard",
      r.returncode == 1 and "TENSOR_HASH_MISMATCH" in r.stderr and "the same --shard" in r.stderr, r.stderr)

# ---- --strategy staged: the consumer's streamed hashes, the budget, the memory bound ----
# Guards: a streamed XXH3 that differs from the resident bytes' (a window hashed
# twice, out of order, or the ring's slack), --budget taken by other strategies
# or silently ignored, and a ring that grows with the model.
def hashes_of(args):
    r = run(args + ["--json", "--verify"])
    return (r.returncode, {t["name"]: (t["bytes"], t["xxh3"]) for t in json.loads(r.stdout)["tensors"]}
            if r.returncode == 0 else r.stderr)


for path in (good, shard_path):
    base = hashes_of(["--strategy", "read", path])
    for extra in ([], ["--budget", "32K"], ["--direct", "--budget", "1M"], ["--budget", "64MiB"]):
        got = hashes_of(["--strategy", "staged"] + extra + [path])
        check(f"staged {' '.join(extra)} on {os.path.basename(path)}: the same bytes and XXH3 as read",
              got[0] == 0 and got == base, str(got)[:300])
r = run(["--strategy", "staged", "--json", "--budget", "2M", good])
d = json.loads(r.stdout) if r.returncode == 0 else {}
check("staged: JSON says the strategy and options.budget in bytes",
      d.get("strategy") == "staged" and d.get("options", {}).get("budget") == 2 << 20, str(d.get("options")))
r = run(["--strategy", "read", "--json", good])
check("other strategies: options.budget is null", r.returncode == 0 and json.loads(r.stdout)["options"]["budget"] is None,
      r.stdout[:200])
# Guards against a staged load that read through io_uring or fell back to
# pread without a word: read_io and the summary say which, as for read.
for env, want in (({}, ("io_uring", "pread", "mixed")), ({"EMEL_LOAD_TEST_RING_ERRNO": "38"}, ("pread",))):
    r = run(["--strategy", "staged", "--json", good], env=env)
    try:
        io = json.loads(r.stdout)["read_io"]
        ok = io["engine"] in want and io["reads"] >= 1 and io["ring_reads"] <= io["reads"]
        if env:
            ok = ok and io["ring_fallbacks"] == 1 and io["ring_errno"] == 38 and io["ring_reads"] == 0
        check(f"staged JSON {env}: read_io names the engine ({want})", ok, r.stdout[:400])
    except (ValueError, KeyError, TypeError) as e:
        check(f"staged JSON {env}: read_io", False, f"{e}: {r.stdout[:300]}")
r = run(["--strategy", "staged", good], env={"EMEL_LOAD_TEST_RING_ERRNO": "38"})
check("the summary says a staged load fell back to pread, and why",
      r.returncode == 0 and re.search(r"strategy staged, budget 64 MiB, pread \(no io_uring: [^)]+\)$", r.stdout.strip()),
      r.stdout)
r = run(["--strategy", "staged", good])
check("staged: the summary names the strategy and the default budget",
      r.returncode == 0 and "strategy staged, budget 64 MiB" in r.stdout, r.stdout)
for bad in ("0", "x", "1T", "-1", "18446744073709551616", "99999999999G", ""):
    r = run(["--strategy", "staged", "--budget", bad, good])
    check(f"--budget '{bad}': usage error (exit 2) naming it", r.returncode == 2 and "--budget" in r.stderr, r.stderr)
r = run(["--strategy", "read", "--budget", "8M", good])
check("--budget without --strategy staged: usage error", r.returncode == 2 and "goes with --strategy staged" in r.stderr,
      r.stderr)
r = run(["--strategy", "staged", "--budget", "4K", good])
check("a budget too small for the ring: exit 1 with INVALID_ARGUMENT",
      r.returncode == 1 and "INVALID_ARGUMENT" in r.stderr and "--budget" in r.stderr, r.stderr)

# Peak RSS of a staged load of 256 MiB with an 8 MiB ring stays near the ring,
# where read holds the whole model (measured as the child's own ru_maxrss).
big = os.path.join(WORK, "staged-256m.gguf")
with open(big, "wb") as f:
    f.write(model(tensors=[(f"blk.{i}.weight", [1 << 20], 0, i << 22) for i in range(64)], data=b""))
    f.truncate(f.tell() + (64 << 22))
RSS = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True);"
       "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss_mib(args):
    r = subprocess.run([sys.executable, "-c", RSS, EMEL_LOAD] + args + [big], capture_output=True, text=True,
                       timeout=60)
    code, kib = r.stdout.split()
    return int(code), int(kib) / 1024


code, staged_mib = peak_rss_mib(["--strategy", "staged", "--budget", "8M", "--verify"])
code_read, read_mib = peak_rss_mib(["--strategy", "read"])
print(f"peak RSS, 256 MiB model: staged --budget 8M {staged_mib:.1f} MiB, read {read_mib:.1f} MiB")
if os.environ.get("EMEL_SANITIZED") != "1":  # sanitizers' shadow memory is not the loader's
    check(f"staged --budget 8M on 256 MiB: peak RSS {staged_mib:.1f} MiB <= 8 + 24 MiB (read: {read_mib:.1f} MiB)",
          code == 0 and code_read == 0 and staged_mib <= 32 and read_mib > 200, f"exit {code}/{code_read}")

# ---- not a regular file: refused at once by name (a FIFO used to block the open forever) ----
fifo = os.path.join(WORK, "fifo.gguf")
if os.path.exists(fifo):
    os.unlink(fifo)
os.mkfifo(fifo)
specials = {"a FIFO without a writer": fifo, "a directory": WORK, "a character device": "/dev/zero"}
for what, path in specials.items():
    for strategy in ("mmap", "read", "staged"):
        try:
            r = subprocess.run([EMEL_LOAD, "--strategy", strategy, path], capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            check(f"{what} ({strategy}) ends within 5 s", False, "timed out: the open blocked")
            continue
        m = line_re.match(r.stderr.strip())
        check(f"{what} ({strategy}): exit 1 with NOT_A_REGULAR_FILE",
              r.returncode == 1 and m is not None and m.group(1) == path and m.group(2) == "NOT_A_REGULAR_FILE",
              f"exit {r.returncode}: {r.stderr.strip()[:200]}")
os.unlink(fifo)

# ---- progress through a load job: JSON lines, a smooth bar, a prompt cancel ----
# A 256 MiB model, sparse (no disk used), slowed by EMEL_LOAD_TEST_SLOW_MS (each
# read, map or advice of the load phase waits that long first), so the load
# takes a second or more whatever the machine.
SLOW = {"EMEL_LOAD_TEST_SLOW_MS": "10"}
slow_model = os.path.join(WORK, "slow-256m.gguf")
with open(slow_model, "wb") as f:
    f.write(model(tensors=[(f"blk.{i}.weight", [1 << 20], 0, i << 22) for i in range(64)], data=b""))
    f.truncate(f.tell() + (64 << 22))


def progress_lines(text):
    objs = []
    for line in text.splitlines():
        try:
            objs.append(json.loads(line))
        except ValueError:
            pass
    return [o for o in objs if isinstance(o, dict) and "done_bytes" in o]


# Guards: emel-load had no --progress: scripts could not follow a load.
# With --shard the load went in batches of 512 MiB (jobs took no shards): one
# update at the end, and a SIGINT seen only between batches. It is a job now:
# the slices' bytes (half of each tensor here), updated as the others are.
SHARD_HALF = ["--strategy", "read", "--shard", "1/2"]
for strategy in (["--strategy", "read"], ["--strategy", "mmap", "--populate"], SHARD_HALF):
    r = run(strategy + ["--progress=json", "--quiet", slow_model], env=SLOW)
    lines = progress_lines(r.stderr)
    fields = {"done_bytes", "total_bytes", "done_tensors", "total_tensors", "seconds"}
    ok = r.returncode == 0 and len(lines) >= 5 and all(set(o) == fields for o in lines)
    ok = ok and all(a["done_bytes"] <= b["done_bytes"] and a["seconds"] <= b["seconds"] for a, b in zip(lines, lines[1:]))
    ok = ok and lines[-1]["done_bytes"] == lines[-1]["total_bytes"] == 64 << (21 if strategy == SHARD_HALF else 22)
    ok = ok and lines[-1]["done_tensors"] == lines[-1]["total_tensors"] == 64
    ok = ok and len(lines) == len([x for x in r.stderr.splitlines() if x.strip()])  # nothing else on stderr
    check(f"--progress=json ({' '.join(strategy)}): one object per update on stderr (not a terminal), the last complete",
          ok, f"exit {r.returncode}, {len(lines)} lines: {r.stderr[-400:]}")
r = run(["--progress=json", good])
check("--progress=json on a quick load: at least the final object", r.returncode == 0 and len(progress_lines(r.stderr)) >= 1
      and progress_lines(r.stderr)[-1]["done_tensors"] == 2, r.stderr)
r = run(["--progress=none", "--json", slow_model], env=SLOW)
check("--progress=none: nothing on stderr", r.returncode == 0 and r.stderr == "", r.stderr[-300:])
r = run(["--progress=dots", good])
check("--progress=dots: usage error (exit 2)", r.returncode == 2 and "unknown progress" in r.stderr, r.stderr)
r = run(["--shard", "0/2", "--progress=json", good])
check("--shard --progress=json: the job reports too", r.returncode == 0 and len(progress_lines(r.stderr)) >= 1
      and progress_lines(r.stderr)[-1]["done_tensors"] == 2, r.stderr)

# Guards: the bar was redrawn at most 10 times a second with a percentage
# only; it now shows bytes, rate and ETA at least 10 times a second.
import pty
master, slave = pty.openpty()
p = subprocess.Popen([EMEL_LOAD, "--strategy", "read", "--json", slow_model], stdout=subprocess.PIPE, stderr=slave,
                     env=dict(os.environ, **SLOW))
os.close(slave)
tty = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    tty += chunk
out, _ = p.communicate(timeout=20)
os.close(master)
text = tty.decode(errors="replace")
draws = [d for d in text.split("\r") if "ETA" in d]
seconds = json.loads(out)["seconds"] if p.returncode == 0 else 0
ok = p.returncode == 0 and seconds > 0.8 and len(draws) >= 10 * (seconds - 0.5) - 2
ok = ok and all(re.search(r"\] +\d+\.\d% [\d.]+ [MG]B / [\d.]+ [MG]B, [\d.]+ [MG]B/s, ETA ([\d.]+ s|-)", d) for d in draws)
check(f"the bar on a terminal: bytes, rate and ETA, >= 10 updates a second ({len(draws)} in {seconds:.2f} s)", ok,
      repr(text[-300:]))

# Guards: during the load SIGINT was seen only when a platform op refused the
# next read; it now cancels the job (emel_job_cancel from the handler). The
# 100 ms target is a benchmark figure: the test requires well under 1 s and
# prints what it measured.
def interrupt_when(args, env, started_when, settle=0.0, timeout=5):
    """Runs emel-load ARGS with --progress=json lines read until started_when(lines) holds
    (10 s at most), sleeps `settle`, sends SIGINT: (process, stdout, stderr text, seconds
    from the signal to exit (inf when it had to be killed), started)."""
    p = subprocess.Popen([EMEL_LOAD] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    err, started, deadline = b"", False, time.time() + 10
    while not started and time.time() < deadline and p.poll() is None:
        if select.select([p.stderr], [], [], 0.2)[0]:
            err += os.read(p.stderr.fileno(), 4096)
            started = started_when(progress_lines(err.decode(errors="replace")))
    time.sleep(settle)
    sent = time.time()
    p.send_signal(signal.SIGINT)
    try:
        out, rest = p.communicate(timeout=timeout)
        took = time.time() - sent
    except subprocess.TimeoutExpired:
        p.kill()
        out, rest = p.communicate()
        took = float("inf")
    return p, out, (err + rest).decode(errors="replace"), took, started


for strategy in (["--strategy", "read"], ["--strategy", "mmap", "--populate"], ["--strategy", "staged"], SHARD_HALF):
    p, out, text, took, started = interrupt_when(
        strategy + ["--progress=json", slow_model], dict(os.environ, **SLOW),
        lambda lines: any(0 < o["done_bytes"] < o["total_bytes"] for o in lines))
    print(f"cancel latency ({' '.join(strategy)}): {took * 1e3:.1f} ms from SIGINT to exit")
    check(f"SIGINT in the middle of a job ({' '.join(strategy)}): exit 130 in {took * 1e3:.0f} ms (< 1 s), released",
          started and p.returncode == 130 and took < 1.0 and "everything released" in text and out == b"",
          f"started {started}, exit {p.returncode} after {took:.3f} s: {text[-300:]}")

# Guards: a staged job saw emel_job_cancel only between tensors, so Ctrl-C
# during a big tensor waited for the rest of its delivery (seconds for a 500
# MiB token embedding) wherever the I/O itself was not refused. With
# EMEL_LOAD_TEST_CANCEL_ONLY an interruption refuses no I/O and the slowed
# reads stay slow, so only the job's cancel can stop the load; the ring is
# refused (pread: one slowed read per 16 MiB window, whatever the kernel). A
# 1 GiB tensor takes about 2 s here; the cancel must cut it within a window
# (the one being consumed, and the one the reader is reading: 30 ms each).
# Measured on an idle run: about 40 ms; the bound is generous for a loaded
# machine and sanitizers, and still far below the 1.5 s the rest would take.
big_model = os.path.join(WORK, "one-big-tensor.gguf")
with open(big_model, "wb") as f:
    f.write(model(tensors=[("small.weight", [1024], 0, 0), ("token_embd.weight", [1 << 28], 0, 1 << 12)], data=b""))
    f.truncate(f.tell() + (1 << 12) + (1 << 30))
p, out, text, took, started = interrupt_when(
    ["--strategy", "staged", "--progress=json", big_model],
    dict(os.environ, EMEL_LOAD_TEST_SLOW_MS="30", EMEL_LOAD_TEST_CANCEL_ONLY="1", EMEL_LOAD_TEST_RING_ERRNO="38"),
    lambda lines: any(o["done_tensors"] == 1 for o in lines), settle=0.3, timeout=10)  # settle: inside the big tensor
last = progress_lines(text)[-1] if progress_lines(text) else {}
# Guards: a staged job's bytes moved only as whole tensors completed, so the
# bar stood still for the big tensor's whole delivery; they move per window
# now, and the cut tensor's windows leave at the cancel (4096: small.weight).
inside = [o for o in progress_lines(text) if o["done_tensors"] == 1 and 4096 < o["done_bytes"] < o["total_bytes"]]
check("staged --progress=json: done_bytes moves inside a big tensor's delivery, and its windows leave at the cancel",
      len(inside) >= 2 and last.get("done_bytes") == 4096, f"{len(inside)} lines inside, last {last}")
print(f"cancel latency (staged, inside a 1 GiB tensor, cancel only): {took * 1e3:.1f} ms from SIGINT to exit")
check(f"SIGINT inside a big tensor's staged delivery: the job's cancel cuts it, exit 130 in {took * 1e3:.0f} ms "
      "(< 500 ms), released", started and p.returncode == 130 and took < 0.5 and "everything released" in text
      and out == b"" and last.get("done_tensors") == 1,
      f"started {started}, exit {p.returncode} after {took:.3f} s: {text[-300:]}")

finish()
