#!/usr/bin/env python3
"""The library's ABI, as a linker and a loader see it.

  abi_check.py LIBEMEL-IO.SO LIBEMEL-IO.A VERSION INCLUDE_DIR...

- every function a public header (INCLUDE_DIR/emel/*.h) declares carries
  EMEL_API (the build hides everything else, so a forgotten mark would be a
  function missing from the .so);
- the .so exports exactly those functions (nm -D --defined-only): nothing
  internal, nothing outside the emel_ prefix;
- every defined global symbol of the static archive starts with emel_, so a
  runtime linking libemel-io.a meets no generic name (read_chunk, gguf_hash);
- the SONAME is libemel-io.so.MAJOR (readelf -d).
"""
import glob
import os
import re
import subprocess
import sys

so, archive, version, *include_dirs = sys.argv[1:]
failures = []


def check(label, ok, detail=""):
    print(("ok: " if ok else "FAIL: ") + label + ("" if ok else f"\n    {detail}"))
    if not ok:
        failures.append(label)


def defined_globals(args):
    out = subprocess.run(["nm", *args], capture_output=True, text=True, check=True).stdout
    # "ADDRESS TYPE NAME" lines; archive member headers ("x.o:") and blanks have other shapes
    return {f[2] for f in (line.split() for line in out.splitlines()) if len(f) == 3}


headers = sorted(h for d in include_dirs for h in glob.glob(os.path.join(d, "emel", "*.h")))
check("public headers found", len(headers) > 0, f"none under {include_dirs}")
declared, unmarked = set(), []
for h in headers:
    text = re.sub(r"/\*.*?\*/", "", open(h).read(), flags=re.S)  # comments hold example calls
    # A declaration at file scope starts in column 0 with its type; its name is the
    # first emel_ identifier followed by "(" (typedefs and macros are not functions).
    for m in re.finditer(r"^(?!typedef\b|#|\s)([^;{}()\n]*?)\b(emel_\w+)\s*\(", text, re.M):
        if re.match(r"EMEL_API\b", m.group(1)):
            declared.add(m.group(2))
        else:
            unmarked.append(f"{os.path.basename(h)}: {m.group(2)}")
check("every function the public headers declare is marked EMEL_API", not unmarked, ", ".join(unmarked))
check("the headers declare the version API", {"emel_version", "emel_version_number"} <= declared,
      sorted(declared)[:5])

exported = defined_globals(["-D", "--defined-only", so])
foreign = sorted(s for s in exported if not s.startswith("emel_"))
check("the .so exports only emel_ symbols", not foreign, f"{len(foreign)}: {' '.join(foreign[:20])}")
missing = sorted(declared - exported)
check("the .so exports every EMEL_API function", not missing, " ".join(missing))
internal = sorted(s for s in exported if s.startswith("emel_") and s not in declared)
check("the .so exports nothing the public headers do not declare", not internal, " ".join(internal))

static = defined_globals(["--defined-only", "-g", archive])
unprefixed = sorted(s for s in static if not s.startswith("emel_"))
check("every global symbol of the static archive starts with emel_", not unprefixed,
      f"{len(unprefixed)}: {' '.join(unprefixed[:20])}")

dyn = subprocess.run(["readelf", "-d", so], capture_output=True, text=True, check=True).stdout
soname = re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", dyn)
want = f"libemel-io.so.{version.split('.')[0]}"
check(f"SONAME is {want}", soname == [want], f"{soname}")

print(f"exported: {len(exported)}, declared: {len(declared)}, archive globals: {len(static)}")
sys.exit(1 if failures else 0)
