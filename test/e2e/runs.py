"""Training runs for the e2e scripts: colossal-run on 1 or N ranks (or under
mpirun), read back as the logged losses and each rank's peak next to its
arena."""
import json
import os
import re
import subprocess


def train(run, plan, data, metrics, steps, ranks=1, mpirun=False, extra=()):
    """Trains `plan` for `steps` on `data`, logging every step to `metrics`.
    Returns (losses, [(peak device bytes, arena bytes) per reporting rank],
    the run's output); raises RuntimeError with the command and its output
    when the run fails."""
    if os.path.exists(metrics):
        os.remove(metrics)
    cmd = [run, plan, "--train", "--steps=%d" % steps, "--data=" + data,
           "--log-every=1", "--metrics=" + metrics, "--threads=1"] + list(extra)
    if mpirun:
        cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np",
               str(ranks)] + cmd
    elif ranks > 1:
        cmd += ["--ranks", str(ranks)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise RuntimeError(" ".join(cmd) + "\n" + out)
    with open(metrics) as f:
        losses = [json.loads(l)["loss"] for l in f if l.strip()]
    peaks = re.findall(r"peak device bytes: (\d+) .*arena: (\d+)", out)
    return losses, [(int(a), int(b)) for a, b in peaks], out


def rel(a, b):
    """Largest relative difference between two loss curves (inf when they
    differ in length or are empty)."""
    if len(a) != len(b) or not a:
        return float("inf")
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))
