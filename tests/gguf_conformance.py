#!/usr/bin/env python3
"""Compares emel-gguf-dump --json with the gguf-py manifests of real GGUF files.

usage: gguf_conformance.py DUMP_TOOL FIXTURES_DIR
Exit 0 when every file matches, 1 on a mismatch, 77 (skipped) without fixtures.
"""
import json
import math
import os
import struct
import subprocess
import sys

SCALARS = ("file_size", "gguf_version", "n_kv", "n_tensors", "alignment", "data_offset")


def same_number(a, b, typ):
    if typ in ("FLOAT32", "FLOAT64"):
        if typ == "FLOAT32":  # compare as float32: the dump prints 9 digits
            a, b = (struct.unpack("<f", struct.pack("<f", float(x)))[0] for x in (a, b))
        return a == b or math.isclose(float(a), float(b), rel_tol=1e-12)
    return a == b


def same_value(a, b, typ):
    if isinstance(b, list):
        return isinstance(a, list) and len(a) == len(b) and all(same_value(x, y, typ) for x, y in zip(a, b))
    if typ in ("STRING", "BOOL"):
        return a == b
    return same_number(a, b, typ)


def compare_kv(got, want, errors):
    if len(got) != len(want):
        errors.append("kv count %d != %d" % (len(got), len(want)))
    for g, w in zip(got, want):
        key = w["key"]
        if g["key"] != key or g["type"] != w["type"]:
            errors.append("kv %s/%s != %s/%s" % (g["key"], g["type"], key, w["type"]))
            continue
        if w["type"] == "ARRAY":
            for field in ("elem_type", "count"):
                if g.get(field) != w.get(field):
                    errors.append("%s.%s %r != %r" % (key, field, g.get(field), w.get(field)))
            head = w.get("head", [])
            if not same_value(g.get("head", [])[: len(head)], head, w.get("elem_type")):
                errors.append("%s.head differs" % key)
        elif not same_value(g.get("value"), w.get("value"), w["type"]):
            errors.append("%s value %r != %r" % (key, g.get("value"), w.get("value")))


def compare_tensors(got, want, errors):
    if len(got) != len(want):
        errors.append("tensor count %d != %d" % (len(got), len(want)))
    for g, w in zip(got, want):
        for field in ("name", "type", "ne", "offset", "nbytes"):
            if field in w and g.get(field) != w[field]:
                errors.append("tensor %s.%s %r != %r" % (w.get("name"), field, g.get(field), w[field]))


def check(tool, path):
    with open(path + ".json", encoding="utf-8") as f:
        want = json.load(f)
    proc = subprocess.run([tool, "--json", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        return ["dump failed: " + proc.stderr.decode(errors="replace").strip()]
    got = json.loads(proc.stdout.decode("utf-8", errors="surrogateescape"))
    errors = ["%s %r != %r" % (k, got.get(k), want[k]) for k in SCALARS if k in want and got.get(k) != want[k]]
    compare_kv(got.get("kv", []), want.get("kv", []), errors)
    compare_tensors(got.get("tensors", []), want.get("tensors", []), errors)
    return errors


def main():
    if len(sys.argv) != 3:
        print("usage: gguf_conformance.py DUMP_TOOL FIXTURES_DIR", file=sys.stderr)
        return 2
    tool, fixtures = sys.argv[1], sys.argv[2]
    if not os.path.isdir(fixtures):
        print("skipped: fixtures folder %s is absent" % fixtures)
        return 77
    files = sorted(f for f in os.listdir(fixtures) if f.endswith(".gguf") and os.path.exists(os.path.join(fixtures, f + ".json")))
    if not files:
        print("skipped: no *.gguf with a manifest in %s" % fixtures)
        return 77
    passed = failed = 0
    for name in files:
        errors = check(tool, os.path.join(fixtures, name))
        if errors:
            failed += 1
            print("FAIL %s: %s" % (name, "; ".join(errors[:10])))
        else:
            passed += 1
            print("ok   %s" % name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
