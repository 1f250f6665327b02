"""Named checks for the e2e scripts: each prints ok/FAIL with what it
checked, and the script's exit status says whether all passed."""


class Checks:
    def __init__(self):
        self.failures = []

    def __call__(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.failures.append(what)

    def finish(self):
        """Prints the summary; the exit status for sys.exit."""
        if self.failures:
            print("%d check(s) failed" % len(self.failures))
            return 1
        print("all checks passed")
        return 0
