"""The check/finish pair the CLI test scripts share: one line per check
("ok   LABEL" or "FAIL LABEL DETAIL") and the closing "N passed, N failed"
line CTest's output and CI read."""
import sys

passed = failed = 0


def check(label, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {label}")
    else:
        failed += 1
        print(f"FAIL {label} {detail}")


def finish():
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
