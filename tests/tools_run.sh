#!/usr/bin/env bash
# tools/run against stand-ins for dpkg-query, cmake and emel-load (nothing is
# installed or built): it asks only for the packages running needs, configures
# on the first run only (again after a configure that failed or a change to a
# CMake input), and runs
# emel-load with both strategies when given no argument. Guards against
# tools/run installing the whole test toolchain and reconfiguring every run.
# Usage: tests/tools_run.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
rm -rf "$work"
mkdir -p "$work/root/tools/lib" "$work/root/build/run/tools" "$work/root/cmake" "$work/root/tests" "$work/bin"
touch "$work/root/CMakeLists.txt"
cp "$src/tools/run" "$work/root/tools/run"
cp "$src/tools/lib/ensure-packages" "$work/root/tools/lib/ensure-packages"
log="$work/log"
cat >"$work/bin/dpkg-query" <<'STUB'
#!/usr/bin/env bash
for p in "$@"; do # every package named is installed
  case "$p" in -*) ;; *) echo "dpkg-query $p" >>"$STUB_LOG"; printf '%s install ok installed\n' "$p" ;; esac
done
STUB
cat >"$work/bin/cmake" <<'STUB'
#!/usr/bin/env bash
echo "cmake $*" >>"$STUB_LOG"
if [ "$1" = -S ]; then # configure: the cache first, the build file only on success
  printf 'CMAKE_HOME_DIRECTORY:INTERNAL=%s\n' "$2" >"$4/CMakeCache.txt"
  [ -z "${STUB_FAIL_CONFIGURE:-}" ] || exit 1
  : >"$4/Makefile"
fi
STUB
cat >"$work/root/build/run/tools/emel-load" <<'STUB'
#!/usr/bin/env bash
echo "emel-load $*" >>"$STUB_LOG"
STUB
chmod +x "$work/bin/"* "$work/root/build/run/tools/emel-load"
export PATH="$work/bin:$PATH" STUB_LOG="$log"
fail() { echo "FAIL: $*" >&2; echo "--- calls:" >&2; cat "$log" >&2; exit 1; }
run() { : >"$log"; "$work/root/tools/run" "$@" >/dev/null 2>&1 || fail "tools/run $* exited $?"; }

# A configure that fails leaves a cache but no build file: the next run configures again.
: >"$log"
STUB_FAIL_CONFIGURE=1 "$work/root/tools/run" >/dev/null 2>&1 && fail "tools/run succeeded although configure failed"
run
grep -q '^cmake -S ' "$log" || fail "the run after a failed configure did not configure"

run
allowed=" cmake make gcc libc6-dev pkg-config libxxhash-dev liburing-dev "
asked=$(sed -n 's/^dpkg-query //p' "$log" | tr '\n' ' ')
[ -n "$asked" ] || fail "tools/run checked no packages"
for p in $asked; do
  case "$allowed" in *" $p "*) ;; *) fail "tools/run wants $p, which running does not need (asked: $asked)" ;; esac
done
grep -q '^cmake -S ' "$log" && fail "a second run configured again"
# Guards: a no-op make on every run (half a second of CPU, more than the load).
grep -q '^cmake --build ' "$log" && fail "a second run with nothing changed built again"
[ "$(grep -c '^emel-load' "$log")" -eq 3 ] || fail "no argument: expected one mmap, one read and one staged load"
grep -qx 'emel-load --strategy mmap --populate --verify' "$log" || fail "no mmap load"
grep -qx 'emel-load --strategy read --verify' "$log" || fail "no read load"
grep -qx 'emel-load --strategy staged --verify' "$log" || fail "no staged load"

run --json some.gguf
grep -qx 'emel-load --json some.gguf' "$log" || fail "arguments not passed to emel-load"
grep -q '^cmake -S ' "$log" && fail "a third run configured again"

# A source changed since the last build: build (without configuring).
mkdir -p "$work/root/src"
sleep 0.01
touch "$work/root/src/changed.c"
run
grep -q '^cmake --build ' "$log" || fail "a changed source did not make tools/run build"
grep -q '^cmake -S ' "$log" && fail "a changed source made tools/run configure"
run
grep -q '^cmake --build ' "$log" && fail "the run after that built again"

# A CMake input changed since the last configure (say, a new target): configure.
touch "$work/root/CMakeLists.txt"
run
grep -q '^cmake -S ' "$log" || fail "a changed CMakeLists.txt did not make tools/run configure"
grep -q '^cmake --build ' "$log" || fail "a reconfigured tree was not built"
echo "tools/run: asks for $asked; configures once, builds only what changed"
