"""Benchmark: CPU instructions per request of each page, counted by valgrind (callgrind).

    .venv/bin/python -m tests.load.bench_instructions --database-url postgresql://…/cp_bench_instr
    .venv/bin/python -m tests.load.bench_instructions --pages patient --repeat 20
    .venv/bin/python -m tests.load.bench_instructions --pages 'patient:visits,patient:visit'

Wall and CPU time on these shared machines move by half from one minute to the next, even
for code nobody changed; an instruction count does not (the same code, data and
environment give the same count within a fraction of a percent). This is the figure to
compare two versions of the code by, one page at a time; the time benchmarks
(``bench_pages``, ``make bench``) say what a user waits.

It seeds ``bench_pages``' world natively (catalog, a patient with 30 held visits, a doctor,
an admin), then runs itself under ``valgrind --tool=callgrind`` with collection off; each
page's ``--repeat`` requests run inside one call of ``itertools.dropwhile``, the only place
collection is on (``--toggle-collect=dropwhile_next``; nothing a request does calls
``dropwhile``), and a profile is written when it returns. Printed per page: instructions
per request (the web process only: on PostgreSQL the database's work is in its own
process and not counted, on SQLite it is), the statements run, and the ratio to a bare
signed-in request (the same user, session and hooks; a view that returns an empty body).
Under valgrind the requests run about 50 times slower: 10 requests a page take minutes.

``--flow N`` counts the booking flow's writing steps instead (``bench_flow``'s: the hold,
a second patient's refused hold of the same time, the pay step, the signed return), N
bookings after six uncounted ones, each step's request in a ``dropwhile`` call of its
own. The sandbox is mounted in-process as in ``bench_flow``; its requests run inside an
``itertools.starmap`` call, where collection is switched off (``--toggle-collect`` again:
it flips the state for the call's duration), so a step's count is the portal's own. The
statements are those of the last uncounted booking (every booking runs the same:
tests/web/booking/test_flow_budgets.py). With ``--jobs`` each booking's follow-up jobs
are counted too, one by one as the worker runs them (``bench_flow.run_due_jobs``: the
webhooks' processing, the confirmation, its mails), without RQ's own work."""

import argparse
import gc
import itertools
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import date

from tests.load import bench_pages
from tests.plugin import sign_in

BARE = ("bare (signed in, empty body)", "/__bench_bare")
# --reads: a whole booking's web requests (the full flow's eight portal requests and the
# gateway's three webhooks; not the rival's refused hold)
WHOLE_BOOKING = (
    "find",
    "free_times",
    "book_page",
    "hold",
    "visit",
    "pay",
    "return",
    "confirmation",
    "webhooks",
)
# Bookings before the counted ones: templates compiled, and every statement a booking
# runs once run 6 times, so psycopg has prepared it (at its 6th run), as in production.
FLOW_WARM = 6


def _pages(selection):
    """(role, name, url, headers) for each page ``selection`` names: "all", a role, or
    "role:page" names joined with commas; the bare request first."""
    chosen = []
    wanted = selection.split(",")
    for role, pages in bench_pages.PAGES.items():
        for name, url, *headers in pages:
            if selection == "all" or role in wanted or f"{role}:{name}" in wanted:
                chosen.append((role, name, url, headers[0] if headers else None))
    return [("patient", BARE[0], BARE[1], None), *chosen]


def _child(args):
    """Under valgrind: the app on the seeded database, each page's requests in one
    ``dropwhile`` call (collection on), then what ran, as JSON, on stdout."""
    from portal import create_app
    from tests.plugin import _test_config

    for name in ("portal", "portal.events", "portal.booking", "portal.mail"):
        logging.getLogger(name).disabled = True
    world = json.loads(args.child)
    app = create_app(_test_config(world["url"]))
    app.config["FREE_TIMES_CACHE"] = True
    app.add_url_rule(BARE[1], "bench_bare", lambda: "")
    if args.flow:
        return print(json.dumps(_count_flow(app, world, args)))
    return print(json.dumps(_count_pages(app, world, args)))


def _count_bare(client, repeat):
    from tests.querycount import counted_queries

    for _ in range(3):
        client.get(BARE[1])
    with counted_queries() as statements:
        status = client.get(BARE[1]).status_code
    _counted(client.get, BARE[1], repeat=repeat)
    return {"role": "patient", "page": BARE[0], "status": status, "queries": len(statements)}


_counting = []  # non-empty while a counted call runs


def _counted(call, *a, repeat=1, **kw):
    """``call(*a, **kw)`` ``repeat`` times inside one ``dropwhile`` call (collection on);
    the last answer."""
    answers = []

    def one(_):
        answers.append(call(*a, **kw))
        return True  # keep dropping: every call inside the one dropwhile call

    _counting.append(True)
    try:
        list(itertools.dropwhile(one, range(repeat)))
    finally:
        _counting.pop()
    return answers[-1]


def _count_pages(app, world, args):
    from tests.querycount import counted_queries

    pages = _pages(args.pages)
    roles = {role for role, *_ in pages}  # only those signed in: slow under valgrind
    clients = {
        role: sign_in(app, _Who(email)) for role, email in world["users"].items() if role in roles
    }
    gc.collect()
    gc.freeze()  # as wsgi.py does: start-up's objects out of the collector's sight
    ran = []
    for role, name, url, headers in pages:
        client, url = clients[role], url.format(**world["fields"])
        for _ in range(3):  # warm: templates compiled, statements prepared, caches filled
            client.get(url, headers=headers)
        with counted_queries() as statements:
            status = client.get(url, headers=headers).status_code
        _counted(client.get, url, headers=headers, repeat=args.repeat)
        ran.append({"role": role, "page": name, "status": status, "queries": len(statements)})
    return ran


def _count_flow(app, world, args):
    """The bare request (``--repeat`` times), then ``--flow`` bookings' steps (the hold,
    the rival's refused hold, pay, return, the webhooks; with ``--reads`` the five pages
    read between them too), each step's request counted alone; the sandbox's requests not
    counted."""
    from types import SimpleNamespace

    from tests.load import bench_flow

    bench_flow.mount_gateway(app)
    sandbox = app.extensions["razorpay_sandbox_app"]
    sandbox.wsgi_app = _not_counted(sandbox.wsgi_app)
    patient = sign_in(app, _Who(world["users"]["patient"]))
    rival = sign_in(app, _Who(world["users"]["rival"]))
    hooks = app.test_client()  # the gateway's webhooks: no session
    gc.collect()
    gc.freeze()
    ran = [_count_bare(patient, args.repeat)]
    flow = world["flow"]
    shape = SimpleNamespace(**{**flow, "day": date.fromisoformat(flow["day"])})
    plan = bench_flow.slots(shape, FLOW_WARM + args.flow)

    def reads(provider):
        return flow["names"][str(provider)] if args.reads else None

    def counted(app, sandbox, call, where=False):
        return _counted(call), [], 0.0, 0.0

    with bench_flow.jobs_handed_over(app):
        for k, (provider, start) in enumerate(plan):
            form = bench_flow.form_for(shape, provider, start)
            if k < FLOW_WARM:
                out = bench_flow.book_once(
                    app, patient, None, form, rival=rival, hooks=hooks, reads=reads(provider)
                )
                statements = {step: len(row[0]) for step, row in out.items()}
                if args.jobs:
                    ran_jobs = bench_flow.run_due_jobs(app, None)
                    statements.update({f"job {n}": runs[0][0] for n, runs in ran_jobs.items()})
                continue
            # Its steps, in the order they were counted (``book_once`` fills its answer as
            # it measures each one).
            steps = bench_flow.book_once(
                app,
                patient,
                None,
                form,
                rival=rival,
                measure=counted,
                hooks=hooks,
                reads=reads(provider),
            )
            ran += [
                {"role": "patient", "page": step, "status": None, "queries": statements[step]}
                for step in steps
            ]
            if args.jobs:
                order = []
                bench_flow.run_due_jobs(app, None, measure=counted, order=order)
                ran += [
                    {
                        "role": "worker",
                        "page": f"job {n}",
                        "status": None,
                        "queries": statements[f"job {n}"],
                    }
                    for n in order
                ]
    return ran


def _not_counted(wsgi_app):
    """The sandbox's WSGI app run inside an ``itertools.starmap`` call: callgrind switches
    collection off for it (``--toggle-collect=starmap_next``)."""

    def app(environ, start_response):
        if not _counting:  # outside a counted call (the patient's click): as it is
            return wsgi_app(environ, start_response)
        return next(itertools.starmap(lambda: list(wsgi_app(environ, start_response)), [()]))

    return app


class _Who:
    def __init__(self, email):
        self.email = email


def _totals(folder):
    """Each dump's total instructions, in the order the dumps were written."""
    dumps = sorted(
        (name for name in os.listdir(folder) if name.rsplit(".", 1)[-1].isdigit()),
        key=lambda name: int(name.rsplit(".", 1)[-1]),
    )
    totals = []
    for name in dumps:
        with open(os.path.join(folder, name)) as fh:
            line = next(line for line in fh if line.startswith("totals:"))
        totals.append(int(line.split()[1]))
    return [total for total in totals if total]  # a dump of an empty window: none here


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_PAGES_DATABASE_URL"))
    p.add_argument("--repeat", type=int, default=10, help="requests counted per page (10)")
    p.add_argument(
        "--pages", default="patient", help="all, a role, or role:page,… (default: patient)"
    )
    p.add_argument(
        "--flow",
        type=int,
        metavar="N",
        help="count N bookings' writing steps (hold, refused, pay, return), not pages",
    )
    p.add_argument(
        "--jobs",
        action="store_true",
        help="with --flow: count each booking's follow-up jobs too (the worker's share)",
    )
    p.add_argument(
        "--reads",
        action="store_true",
        help="with --flow: count the pages read between the writing steps too (find, free "
        "times, book page, visit, confirmation), in the full flow's order",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the profiles (callgrind.out.N, one a page or step) and print their folder",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args)
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian's package valgrind)")
    spec = _flow_world(args) if args.flow else _pages_world(args)
    app = spec.pop("app")
    with app.app_context():  # the child opens its own connections
        app.extensions["sqlalchemy"].engine.dispose()
    folder = tempfile.mkdtemp(prefix="bench_instructions_")
    command = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=dropwhile_next",
        "--toggle-collect=starmap_next",
        "--dump-after=dropwhile_next",
        f"--callgrind-out-file={folder}/callgrind.out",
        sys.executable,
        "-m",
        "tests.load.bench_instructions",
        "--repeat",
        str(args.repeat),
        "--pages",
        args.pages,
        *(("--flow", str(args.flow)) if args.flow else ()),
        *(("--jobs",) if args.jobs else ()),
        *(("--reads",) if args.reads else ()),
        "--child",
        json.dumps(spec),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"the counted run failed:\n{done.stderr[-3000:]}")
    ran = json.loads(done.stdout.strip().splitlines()[-1])
    totals = _totals(folder)
    if len(totals) != len(ran):
        sys.exit(f"{len(ran)} pages ran but {len(totals)} profiles were written in {folder}")
    if args.keep:
        print(f"profiles kept in {folder} (read them with callgrind_annotate)")
    else:
        shutil.rmtree(folder)
    bare = totals[0] / args.repeat
    if args.flow:
        return _print_flow(spec, args, ran, totals, bare)
    per_request = [bare] + [total / args.repeat for total in totals[1:]]
    print(
        f"{spec['url'].split(':')[0]}; {args.repeat} requests a page; instructions per "
        "request of the web process, in millions"
    )
    print(f"{'role':<9}{'page':<30}{'status':>7}{'queries':>9}{'M instr':>10}{'x bare':>8}")
    for row, count in zip(ran, per_request, strict=True):
        print(
            f"{row['role']:<9}{row['page']:<30}{row['status']:>7}{row['queries']:>9}"
            f"{count / 1e6:>10.2f}{count / bare:>8.2f}"
        )


def _pages_world(args):
    app = bench_pages.bench_app(args.database_url, prefix="bench_instructions_")
    world = bench_pages.seed(app, 30)
    return {
        "app": app,
        "url": app.config["SQLALCHEMY_DATABASE_URI"],
        "fields": bench_pages.fields_of(world),
        "users": {
            "patient": world.patient.email,
            "doctor": world.provider_user.email,
            "admin": world.admin.email,
        },
    }


def _flow_world(args):
    from tests.load import bench_flow

    app = bench_flow.build(args.database_url)
    world = bench_flow.seed(app)
    return {
        "app": app,
        "url": app.config["SQLALCHEMY_DATABASE_URI"],
        "flow": {
            "clinic": world.clinic,
            "consult": world.consult,
            "doc1": world.doc1,
            "doc2": world.doc2,
            "day": world.day.isoformat(),
            # --reads: the name a patient searches each provider by
            "names": {
                str(k): v
                for k, v in bench_flow.provider_names(app, (world.doc1, world.doc2)).items()
            },
        },
        "users": {"patient": world.patient.email, "rival": bench_flow.rival_user(app).email},
    }


def _print_flow(spec, args, ran, totals, bare):
    """Each step's median count over the bookings, and one booking's three writing steps
    (not the rival's refused hold, nor the gateway's webhooks)."""
    from tests.load import bench_flow

    steps = {}  # the steps that ran, in their order
    queries = {}
    for row, total in zip(ran[1:], totals[1:], strict=True):
        steps.setdefault(row["page"], []).append(total)
        queries[row["page"]] = row["queries"]
    print(
        f"{spec['url'].split(':')[0]}; {args.flow} bookings; instructions of the web process "
        "per request, in millions (the in-process sandbox's not counted); medians"
    )
    print(f"{'step':<30}{'queries':>9}{'M instr':>10}{'x bare':>8}")
    print(f"{BARE[0]:<30}{ran[0]['queries']:>9}{bare / 1e6:>10.2f}{1:>8.2f}")
    booking = 0
    for step, counts in steps.items():
        median = statistics.median(counts)
        booking += median if step in bench_flow.WRITING else 0
        print(f"{step:<30}{queries[step]:>9}{median / 1e6:>10.2f}{median / bare:>8.2f}")
    print(f"{'hold + pay + return':<30}{'':>9}{booking / 1e6:>10.2f}{booking / bare:>8.2f}")
    if args.reads:
        whole = sum(statistics.median(c) for step, c in steps.items() if step in WHOLE_BOOKING)
        print(
            f"{'a booking (8 pages, webhooks)':<30}{'':>9}{whole / 1e6:>10.2f}{whole / bare:>8.2f}"
        )
    worker = sum(sum(c) for step, c in steps.items() if step.startswith("job ")) / args.flow
    if worker:
        print(f"{'jobs a booking (worker)':<30}{'':>9}{worker / 1e6:>10.2f}{worker / bare:>8.2f}")


if __name__ == "__main__":
    main()
