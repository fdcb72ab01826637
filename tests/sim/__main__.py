"""Run the simulation from the command line.

python -m tests.sim --seeds 200            # seeds 0..199 (what CI runs), one process a core
python -m tests.sim --seeds 2000 --start 5000
python -m tests.sim --seed 17 -v           # replay one seed, printing every step
python -m tests.sim --postgres             # on TEST_POSTGRES_URL instead of SQLite
"""

import argparse
import multiprocessing
import os
import sys
import time

# One app a process (its own throwaway SQLite file), made once in each worker.
_APP = None


def _outcome(args, seed):
    """One seed's history: (seed, steps, outcome totals, None) or (seed, 0, {}, failure)."""
    from tests.sim.harness import SimFailure, run_seed

    try:
        sim = run_seed(
            _APP, seed, steps=args.steps, verbose=args.verbose, lose_webhooks=args.lose_webhooks
        )
    except SimFailure as failure:
        return seed, 0, {}, str(failure)
    return seed, len(sim.log), sim.outcome, None


def _start_worker(url):
    global _APP
    import logging

    logging.disable(logging.WARNING)  # the portal's alerts and job logs are expected noise
    from tests.sim.world import make_app

    _APP = make_app(url)


def _run_in_worker(job):
    return _outcome(*job)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=200, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--seed", type=int, help="run (replay) this one seed")
    parser.add_argument("--steps", type=int, default=25, help="steps per history")
    parser.add_argument("--postgres", action="store_true", help="use TEST_POSTGRES_URL")
    parser.add_argument("--database-url", help="any database URL (default: a SQLite file)")
    parser.add_argument(
        "--jobs",
        type=int,
        help="processes running seeds at once, each on its own SQLite file "
        "(default: one a core; 1 with --postgres or --database-url, which share one database)",
    )
    parser.add_argument(
        "--lose-webhooks",
        action="store_true",
        help="a dropped webhook is lost for good (default: redelivered later, as Razorpay does)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every step")
    parser.add_argument("--keep-going", action="store_true", help="run every seed, list failures")
    args = parser.parse_args(argv)

    from tests.plugin import DEFAULT_PG
    from tests.sim.invariants import NAMES

    url = args.database_url
    if args.postgres:
        url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    jobs = args.jobs or (1 if url else os.cpu_count() or 1)
    if url and jobs > 1:
        parser.error("--jobs above 1 needs the default SQLite file (one database a process)")
    jobs = max(1, min(jobs, len(seeds)))
    started, failed, steps, totals = time.monotonic(), [], 0, {}
    # Each seed is its own history (the world is emptied and rebuilt before it), so seeds
    # split over processes give what one process gives, seed by seed: a failure's replay
    # command runs it alone.
    work = [(args, seed) for seed in seeds]
    if jobs == 1:
        _start_worker(url)
        results = map(_run_in_worker, work)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(jobs, _start_worker, (url,))
        results = pool.imap(_run_in_worker, work)
    try:
        for done, (seed, seed_steps, outcome, failure) in enumerate(results, 1):
            if failure:
                print(failure, file=sys.stderr)
                failed.append(seed)
                if not args.keep_going:
                    break
            steps += seed_steps
            for key, value in outcome.items():
                totals[key] = totals.get(key, 0) + value
            if len(seeds) > 1 and done % 25 == 0:
                print(f"... {done} seeds, {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    took = time.monotonic() - started
    print(
        f"simulation: {len(seeds)} seed(s) from {seeds[0]}, {args.steps} steps each, "
        f"{jobs} process(es), {took:.1f} s, {len(failed)} failed"
        f"{': ' + str(failed) if failed else ''}; invariants: {', '.join(NAMES)}"
    )
    print("histories did: " + ", ".join(f"{v} {k}" for k, v in totals.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
