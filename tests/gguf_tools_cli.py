#!/usr/bin/env python3
"""emel-gguf-write and emel-gguf-dump as scripts use them: exit codes, --help,
--bytes as a maximum, output that cannot be written, dump's JSON and error line
(emel-load's field names and format), names that are not UTF-8.

  gguf_tools_cli.py EMEL_GGUF_WRITE EMEL_GGUF_DUMP WORKDIR
"""
import json
import os
import re
import struct
import subprocess
import sys

from cli_check import check, finish

WRITE, DUMP, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(WORK, exist_ok=True)


def run(tool, args, stdout=subprocess.PIPE, close_stdout=False):
    pre = (lambda: os.close(1)) if close_stdout else None
    return subprocess.run([tool] + args, stdout=stdout, stderr=subprocess.PIPE, timeout=60, preexec_fn=pre)


def dump_json(path):
    r = run(DUMP, ["--json", path])
    return r, (json.loads(r.stdout.decode("utf-8")) if r.returncode == 0 else None)


# ---- emel-gguf-write ----
# Guards: --help was an unknown option (exit 2, no type list).
r = run(WRITE, ["--help"])
out = r.stdout.decode()
check("write --help: exit 0, usage and every --type on stdout",
      r.returncode == 0 and out.startswith("usage: emel-gguf-write") and all(t in out for t in ("F16", "Q4_K", "MXFP4", "mixed")),
      f"{r.returncode} {r.stderr}")
# Guards: an unknown type exited 1, as if writing had failed.
r = run(WRITE, ["--type", "q9_9", os.path.join(WORK, "never.gguf")])
check("write --type unknown: usage error (exit 2) naming the type", r.returncode == 2 and b"q9_9" in r.stderr,
      f"{r.returncode} {r.stderr}")
check("write --type unknown: nothing written", not os.path.exists(os.path.join(WORK, "never.gguf")))
# Guards: --bytes 1K wrote 8448 bytes of tensors and exited 0.
small = os.path.join(WORK, "small.gguf")
r = run(WRITE, ["--tensors", "4", "--bytes", "1K", small])
check("write --bytes that cannot be met: refused (exit 2), saying why", r.returncode == 2 and b"--bytes" in r.stderr,
      f"{r.returncode} {r.stderr}")
for tensors, limit, typ in ((8, 100 << 10, "f16"), (40, 3 << 20, "mixed"), (12, 2 << 20, "q4_0")):
    path = os.path.join(WORK, f"max-{tensors}.gguf")
    r = run(WRITE, ["--tensors", str(tensors), "--bytes", str(limit), "--type", typ, path])
    d, j = dump_json(path) if r.returncode == 0 else (r, None)
    total = sum(t["nbytes"] for t in j["tensors"]) if j else None
    check(f"write --tensors {tensors} --bytes {limit} --type {typ}: honoured (tensor bytes {total} <= {limit})",
          r.returncode == 0 and j is not None and len(j["tensors"]) == tensors and total <= limit, f"{r.stderr} {d.stderr}")
# A failed write of the model file must not exit 0.
r = run(WRITE, ["--tensors", "4", "--bytes", "1M", "/dev/full"])
check("write to a full device: exit 1 with the reason", r.returncode == 1 and b"No space left" in r.stderr,
      f"{r.returncode} {r.stderr}")
# Guards: with stdout closed the model file took descriptor 1 (and the path list).
r = run(WRITE, ["--tensors", "4", "--bytes", "1M", os.path.join(WORK, "closed.gguf")], close_stdout=True)
check("write with stdout closed: exit 1 with a write error", r.returncode == 1 and b"write error" in r.stderr,
      f"{r.returncode} {r.stderr}")
with open("/dev/full", "wb") as full:
    r = run(WRITE, ["--tensors", "4", "--bytes", "1M", os.path.join(WORK, "full.gguf")], stdout=full)
check("write with stdout on a full device: exit 1 with a write error",
      r.returncode == 1 and r.stderr.startswith(b"emel-gguf-write: write error: "), f"{r.returncode} {r.stderr}")

# ---- emel-gguf-dump ----
model = os.path.join(WORK, "max-40.gguf")
r, j = dump_json(model)
# Guards: dump's tensors had only ne/nbytes, not emel-load's dims/bytes.
ok = j is not None and all(t.get("dims") == t["ne"] and t.get("bytes") == t["nbytes"] for t in j["tensors"])
check("dump --json: tensors carry dims and bytes (as emel-load) beside ne and nbytes", ok, r.stderr)
r = run(DUMP, ["-h"])
check("dump -h: usage on stdout, exit 0", r.returncode == 0 and r.stdout.startswith(b"usage: emel-gguf-dump"),
      f"{r.returncode} {r.stderr}")
r = run(DUMP, [""])
check("dump of an empty FILE: usage error that says so", r.returncode == 2 and b"empty" in r.stderr,
      f"{r.returncode} {r.stderr}")
# Guards: dump's error line was "FILE: message (NAME)", not emel-load's "FILE: NAME: message".
bad = os.path.join(WORK, "bad.gguf")
with open(bad, "wb") as f:
    f.write(b"GGUX" + bytes(60))
r = run(DUMP, [bad])
m = re.fullmatch(rb"emel-gguf-dump: (.+): ([A-Z0-9_]+): (.+)\n", r.stderr)
check("dump error line: 'emel-gguf-dump: FILE: NAME: message'",
      r.returncode == 1 and m is not None and m.group(1) == bad.encode() and m.group(2) == b"GGUF_BAD_MAGIC", r.stderr)
r = run(DUMP, [os.path.join(WORK, "missing.gguf")])
check("dump error line keeps the errno", r.returncode == 1 and r.stderr.endswith(b": OPEN_FAILED: opening the model file failed (No such file or directory)\n"), r.stderr)
# Guards: a missing middle part of a split set was reported as part 1's OPEN_FAILED.
split = os.path.join(WORK, "split.gguf")
r = run(WRITE, ["--tensors", "6", "--bytes", "64K", "--splits", "3", split])
second = os.path.join(WORK, "split-00002-of-00003.gguf")
os.unlink(second)
first = os.path.join(WORK, "split-00001-of-00003.gguf")
r = run(DUMP, [first])
check("dump error line names the missing part of a split set",
      r.returncode == 1 and r.stderr == (f"emel-gguf-dump: {first}: OPEN_FAILED: opening the model file failed "
                                         f"(No such file or directory): part 2 of 3 ({second})\n").encode(), r.stderr)
# Guards: a dump to a full device or a closed stdout exited 0.
with open("/dev/full", "wb") as full:
    for args in (["--json", model], [model]):
        r = run(DUMP, args, stdout=full)
        check(f"dump {' '.join(args[:-1])} to a full device: exit 1 with a write error",
              r.returncode == 1 and r.stderr.startswith(b"emel-gguf-dump: write error: "), f"{r.returncode} {r.stderr}")
r = run(DUMP, ["--json", model], close_stdout=True)
check("dump with stdout closed: exit 1 with a write error", r.returncode == 1 and b"write error" in r.stderr,
      f"{r.returncode} {r.stderr}")


# ---- names that are not UTF-8, with control characters, quotes, backslashes ----
def s(b):
    return struct.pack("<Q", len(b)) + b


names = [b"plain", "ünï€".encode(), b"bad\xff", b"ctl\n\x01", b'q"uo\\te', b"surr\xed\xa0\x80"]
kvs = [s(b"general.architecture") + struct.pack("<I", 8) + s(b"llama"),
       s(b"key\xfe\n") + struct.pack("<I", 8) + s(b"value\xff\"\\\x02")]
infos = b"".join(s(n) + struct.pack("<I", 1) + struct.pack("<Q", 8) + struct.pack("<IQ", 0, 32 * i)
                 for i, n in enumerate(names))
meta = b"GGUF" + struct.pack("<IQQ", 3, len(names), len(kvs)) + b"".join(kvs) + infos
blob = meta + b"\0" * ((-len(meta)) % 32) + bytes(32 * len(names))
odd = os.path.join(WORK.encode(), b"odd-\xff\n.gguf")
with open(odd, "wb") as f:
    f.write(blob)
r = subprocess.run([DUMP.encode(), b"--json", odd], capture_output=True, timeout=60)
try:
    j = json.loads(r.stdout.decode("utf-8"))  # strict UTF-8 and strict JSON
    ok = r.returncode == 0
    for want, t in zip(names, j["tensors"]):
        try:
            ok = ok and t["name"] == want.decode() and "name_hex" not in t
        except UnicodeDecodeError:
            ok = ok and "\ufffd" in t["name"] and bytes.fromhex(t["name_hex"]) == want
    kv = j["kv"][1]
    ok = ok and bytes.fromhex(kv["key_hex"]) == b"key\xfe\n" and kv["value"] == 'value\ufffd"\\\x02'
    ok = ok and bytes.fromhex(j["files"][0]["path_hex"]) == odd
    check("dump --json: valid UTF-8 whatever names hold; invalid bytes U+FFFD with exact *_hex", ok, str(j["tensors"]))
except (ValueError, KeyError, IndexError) as e:
    check("dump --json: valid UTF-8 whatever names hold", False, f"{e}: {r.stdout[:300]!r}")
r = subprocess.run([DUMP.encode(), odd], capture_output=True, timeout=60)
tensor_lines = [l for l in r.stdout.split(b"\n") if l.startswith(b"  ") and b" offset " in l]
check("dump text: one line per tensor, valid UTF-8", r.returncode == 0 and len(tensor_lines) == len(names)
      and r.stdout.decode("utf-8", errors="strict") is not None, repr(r.stdout[-400:]))

finish()
