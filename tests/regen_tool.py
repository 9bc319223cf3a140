#!/usr/bin/env python3
"""tools/regen --check where the toolchain differs from the pinned one.

  regen_tool.py REPO

Runs the check with a PATH holding only what each case needs (python runs
regen directly):
- no ragel: exit 77 (CTest: skipped) and the reason, never a failure or a
  silent pass;
- another Ragel version: exit 77, naming the pinned version and the one found
  (its output would differ byte for byte from gen/);
- the pinned Ragel without graphviz: the check passes and says the diagrams
  were checked by their dot source's digest only;
- a spec where a state is entered both with and without an outcome pending,
  or an action body of another form, is refused by name.
Guards against the check needing graphviz, and against a missing or other
Ragel going unnoticed (the test was once simply not registered). Exits 77
itself when the pinned Ragel is not installed here (the last case needs it).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def run(repo, path_dir):
    env = dict(os.environ, PATH=path_dir)
    return subprocess.run([sys.executable, os.path.join(repo, "tools", "regen"), "--check"],
                          capture_output=True, text=True, env=env)


def main():
    repo = sys.argv[1]
    pin = re.search(r'^RAGEL_VERSION = "([^"]+)"', open(os.path.join(repo, "tools", "regen")).read(), re.M)
    if not pin:
        print("FAIL: tools/regen pins no Ragel version (RAGEL_VERSION)")
        return 1
    pinned = pin.group(1)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        r = run(repo, empty)
        if r.returncode != 77 or "ragel is not installed" not in r.stderr or pinned not in r.stderr:
            failures.append(f"no ragel: exit {r.returncode}, stderr {r.stderr!r}")

        other = os.path.join(tmp, "other")
        os.mkdir(other)
        fake = os.path.join(other, "ragel")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho 'Ragel State Machine Compiler version 7.0.4 May 2020'\n")
        os.chmod(fake, 0o755)
        r = run(repo, other)
        if r.returncode != 77 or "Ragel 7.0.4" not in r.stderr or f"Ragel {pinned}" not in r.stderr:
            failures.append(f"other ragel: exit {r.returncode}, stderr {r.stderr!r}")

        real = shutil.which("ragel")
        version = subprocess.run([real, "--version"], capture_output=True, text=True).stdout if real else ""
        if f"version {pinned} " not in version:
            for f in failures:
                print("FAIL:", f)
            print(f"skipped: the pinned Ragel {pinned} is not installed; the no-graphviz case needs it")
            return 1 if failures else 77
        only = os.path.join(tmp, "only-ragel")
        os.mkdir(only)
        os.symlink(real, os.path.join(only, "ragel"))
        r = run(repo, only)
        if r.returncode != 0 or "dot is not installed" not in r.stdout:
            failures.append(f"no dot: exit {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}")

        # Specs regen must refuse, on a copy of the repository's specs.
        copy = os.path.join(tmp, "copy")
        os.makedirs(os.path.join(copy, "tools"))
        shutil.copy(os.path.join(repo, "tools", "regen"), os.path.join(copy, "tools", "regen"))
        shutil.copytree(os.path.join(repo, "statecharts"), os.path.join(copy, "statecharts"))
        shutil.copytree(os.path.join(repo, "gen"), os.path.join(copy, "gen"))
        spec = os.path.join(copy, "statecharts", "io_mmap.rl")
        original = open(spec).read()
        cases = [
            # `ready` would be entered with an outcome pending: it could not rest
            ("REFERENCE_KEPT -> ready", "REFERENCE_KEPT @check_request -> ready", "cannot both rest and wait"),
            # an action body the prototypes cannot be read from
            ("action free_slot { emel_mmap_free_slot(m); }", "action free_slot { emel_mmap_free_slot(m, 3); }",
             "is none of"),
        ]
        for old, new, want in cases:
            assert old in original, old
            open(spec, "w").write(original.replace(old, new))
            r = subprocess.run([sys.executable, os.path.join(copy, "tools", "regen"), "--check", "io_mmap"],
                               capture_output=True, text=True, env=dict(os.environ, PATH=only))
            if r.returncode != 1 or want not in r.stderr:
                failures.append(f"spec with {new!r}: exit {r.returncode}, stderr {r.stderr!r}")
    for f in failures:
        print("FAIL:", f)
    print("regen_tool:", "failed" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
