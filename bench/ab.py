#!/usr/bin/env python3
"""ab.py - alternate runs of two or more builds of a command, for claims of a
speed-up on this noisy 2-core VM (its speed moves 10 % hour to hour, so runs
of one build now and another later compare nothing).

    VARIANTS="base=/tmp/sf-base,new=build/sftrace,noahead=build/sftrace:SFTRACE_NO_AHEAD=1" \\
        python3 bench/ab.py 21 -- report -q -j 2 LOG

Each variant is NAME=BINARY[:VAR=VALUE...]; every round runs each once, the
order reversed every other round. Prints per variant the median, first
quartile and smallest wall time, and the median CPU (user + sys of the
process and its threads, from wait4). docs/benchmarks.md section 11, "Report
speed, session 6", was measured with it.
"""
import os
import statistics as st
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 3 or sys.argv[2] != "--" or "VARIANTS" not in os.environ:
        sys.exit(__doc__)
    n, args = int(sys.argv[1]), sys.argv[3:]
    vs = []
    for v in os.environ["VARIANTS"].split(","):
        name, rest = v.split("=", 1)
        b, *envs = rest.split(":")
        env = dict(os.environ)
        env.pop("VARIANTS")
        for e in envs:
            k, val = e.split("=", 1)
            env[k] = val
        vs.append((name, b, env))
    res = {v[0]: [] for v in vs}
    for i in range(n):
        for name, b, env in (vs if i % 2 == 0 else vs[::-1]):
            t = time.time()
            p = subprocess.Popen([b] + args, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=env)
            _, _, ru = os.wait4(p.pid, 0)
            res[name].append((time.time() - t, ru.ru_utime + ru.ru_stime))
    for name, *_ in vs:
        w = sorted(x[0] for x in res[name])
        c = [x[1] for x in res[name]]
        print(f"{name:12s} wall med {st.median(w) * 1e3:7.1f} ms  q1 {w[len(w) // 4] * 1e3:7.1f}"
              f"  min {w[0] * 1e3:7.1f}  cpu med {st.median(c) * 1e3:7.1f} ms")
    print("load", os.getloadavg()[0])


if __name__ == "__main__":
    main()
