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
Under valgrind the requests run about 50 times slower: 10 requests a page take minutes."""

import argparse
import gc
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile

from tests.load import bench_pages

BARE = ("bare (signed in, empty body)", "/__bench_bare")


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
    from tests.querycount import counted_queries

    for name in ("portal", "portal.events"):
        logging.getLogger(name).disabled = True
    world = json.loads(args.child)
    app = create_app(_test_config(world["url"]))
    app.config["FREE_TIMES_CACHE"] = True
    app.add_url_rule(BARE[1], "bench_bare", lambda: "")
    pages = _pages(args.pages)
    roles = {role for role, *_ in pages}  # only those signed in: slow under valgrind
    clients = {
        role: bench_pages.sign_in(app, _Who(email))
        for role, email in world["users"].items()
        if role in roles
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

        def one(_, client=client, url=url, headers=headers):
            client.get(url, headers=headers)
            return True  # keep dropping: every request inside the one dropwhile call

        list(itertools.dropwhile(one, range(args.repeat)))
        ran.append({"role": role, "page": name, "status": status, "queries": len(statements)})
    print(json.dumps(ran))


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
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args)
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian's package valgrind)")
    app = bench_pages.bench_app(args.database_url, prefix="bench_instructions_")
    world = bench_pages.seed(app, 30)
    spec = {
        "url": app.config["SQLALCHEMY_DATABASE_URI"],
        "fields": bench_pages.fields_of(world),
        "users": {
            "patient": world.patient.email,
            "doctor": world.provider_user.email,
            "admin": world.admin.email,
        },
    }
    with app.app_context():  # the child opens its own connections
        app.extensions["sqlalchemy"].engine.dispose()
    folder = tempfile.mkdtemp(prefix="bench_instructions_")
    command = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=dropwhile_next",
        "--dump-after=dropwhile_next",
        f"--callgrind-out-file={folder}/callgrind.out",
        sys.executable,
        "-m",
        "tests.load.bench_instructions",
        "--repeat",
        str(args.repeat),
        "--pages",
        args.pages,
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
    shutil.rmtree(folder)
    per_request = [total / args.repeat for total in totals]
    bare = per_request[0]
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


if __name__ == "__main__":
    main()
