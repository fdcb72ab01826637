"""Run the simulation from the command line.

python -m tests.sim --seeds 200            # seeds 0..199 (what CI runs)
python -m tests.sim --seeds 2000 --start 5000
python -m tests.sim --seed 17 -v           # replay one seed, printing every step
python -m tests.sim --postgres             # on TEST_POSTGRES_URL instead of SQLite
"""

import argparse
import os
import sys
import time


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=200, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--seed", type=int, help="run (replay) this one seed")
    parser.add_argument("--steps", type=int, default=25, help="steps per history")
    parser.add_argument("--postgres", action="store_true", help="use TEST_POSTGRES_URL")
    parser.add_argument("--database-url", help="any database URL (default: a SQLite file)")
    parser.add_argument(
        "--lose-webhooks",
        action="store_true",
        help="a dropped webhook is lost for good (default: redelivered later, as Razorpay does)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every step")
    parser.add_argument("--keep-going", action="store_true", help="run every seed, list failures")
    args = parser.parse_args(argv)

    import logging

    logging.disable(logging.WARNING)  # the portal's alerts and job logs are expected noise
    from tests.plugin import DEFAULT_PG
    from tests.sim.harness import SimFailure, run_seed
    from tests.sim.invariants import NAMES
    from tests.sim.world import make_app

    url = args.database_url
    if args.postgres:
        url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    app = make_app(url)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    started, failed, steps, totals = time.monotonic(), [], 0, {}
    for seed in seeds:
        try:
            sim = run_seed(
                app, seed, steps=args.steps, verbose=args.verbose, lose_webhooks=args.lose_webhooks
            )
            steps += len(sim.log)
            for key, value in sim.outcome.items():
                totals[key] = totals.get(key, 0) + value
        except SimFailure as failure:
            print(failure, file=sys.stderr)
            failed.append(seed)
            if not args.keep_going:
                break
        done = seed - seeds[0] + 1
        if len(seeds) > 1 and done % 25 == 0:
            print(f"... {done} seeds, {time.monotonic() - started:.0f} s", file=sys.stderr)
    took = time.monotonic() - started
    print(
        f"simulation: {len(seeds)} seed(s) from {seeds[0]}, {args.steps} steps each, "
        f"{took:.1f} s, {len(failed)} failed{': ' + str(failed) if failed else ''}; "
        f"invariants: {', '.join(NAMES)}"
    )
    print("histories did: " + ", ".join(f"{v} {k}" for k, v in totals.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
