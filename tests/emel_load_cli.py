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
    return subprocess.run([EMEL_LOAD] + args, capture_output=True, text=True, timeout=20,
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
r = run([good])
check("the human summary names tensors, bytes, GB/s and strategy",
      r.returncode == 0 and re.search(r"2 tensors, 192 bytes in [0-9.]+ s \([0-9.]+ GB/s\), strategy mmap", r.stdout),
      r.stdout)

# ---- usage errors: exit 2 ----
for args, why in ((["--strategy", "tape", good], "unknown strategy"), (["--bogus"], "unknown option"),
                  ([good, good], "two files"), (["--populate", "--strategy", "read", good], "populate with read"),
                  (["--direct", good], "direct with mmap")):
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
broken = odd_path + b".broken"
with open(broken, "wb") as f:
    f.write(model(magic=b"GGUX"))
r = subprocess.run([EMEL_LOAD.encode(), broken], capture_output=True, timeout=20)
lines = r.stderr.splitlines()
check("an error line stays one line (control bytes escaped) and valid UTF-8 whatever the file name holds",
      r.returncode == 1 and len(lines) == 1 and is_utf8(r.stderr) and b"\\x0a" in lines[0] and b"\\x1b" in lines[0]
      and b"\\xff" in lines[0] and b": GGUF_BAD_MAGIC: " in lines[0], repr(r.stderr))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
