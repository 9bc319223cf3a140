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
import signal
import struct
import subprocess
import sys

EMEL_LOAD, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
passed = failed = 0


def check(label, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {label}")
    else:
        failed += 1
        print(f"FAIL {label} {detail}")


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

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
