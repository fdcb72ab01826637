"""The instruction benchmark's own pieces: which pages it runs and how it reads valgrind's
profiles (the valgrind run itself takes minutes: it is a benchmark, not a test)."""

from tests.load import bench_instructions


def test_the_bare_request_comes_first_then_the_pages_asked_for():
    pages = bench_instructions._pages("patient:visits,doctor:home")
    assert [(role, name) for role, name, *_ in pages] == [
        ("patient", bench_instructions.BARE[0]),
        ("patient", "visits"),
        ("doctor", "home"),
    ]
    assert len(bench_instructions._pages("patient")) == 1 + len(
        bench_instructions.bench_pages.PAGES["patient"]
    )


def test_totals_are_read_in_the_order_the_dumps_were_written(tmp_path):
    for part, total in ((10, 700), (2, 500), (1, 300)):
        (tmp_path / f"callgrind.out.{part}").write_text(
            f"# callgrind format\nevents: Ir\nsummary: {total}\ntotals: {total}\n"
        )
    (tmp_path / "callgrind.out").write_text("events: Ir\ntotals: 0\n")  # the run's end
    assert bench_instructions._totals(tmp_path) == [300, 500, 700]


def test_the_flow_prints_each_steps_median_and_a_bookings_three_writing_steps(capsys):
    steps = ("hold", "refused", "pay", "return", "webhooks")
    ran = [{"page": "bare", "queries": 1}] + [
        {"page": step, "queries": q}
        for _ in range(3)
        for step, q in zip(steps, (16, 2, 11, 22, 6), strict=True)
    ]
    # millions per booking: skewed, so that a mean or the last value would differ
    per_step = {"hold": (30, 31, 38), "refused": (10, 10, 10), "pay": (29, 20, 23)}
    per_step["return"] = (40, 40, 40)
    per_step["webhooks"] = (12, 14, 13)
    totals = [4_000_000] + [per_step[step][k] * 1_000_000 for k in range(3) for step in steps]
    args = type("Args", (), {"flow": 3, "reads": False})()
    bench_instructions._print_flow({"url": "postgresql+psycopg://x/y"}, args, ran, totals, 4e6)
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows[1] == ["hold", "16", "31.00", "7.75"]  # the median, not the mean or last
    assert rows[2] == ["refused", "2", "10.00", "2.50"]
    assert rows[3] == ["pay", "11", "23.00", "5.75"]  # not the first (29) nor the mean
    assert rows[4] == ["return", "22", "40.00", "10.00"]
    assert rows[5] == ["webhooks", "6", "13.00", "3.25"]
    # neither the refused hold nor the webhooks
    assert rows[6] == ["hold", "+", "pay", "+", "return", "94.00", "23.50"]


def test_with_reads_a_booking_is_its_eight_pages_and_the_webhooks_not_the_refused_hold(
    capsys,
):
    from tests.load import bench_flow

    steps = bench_flow.ORDER_WITH_READS
    millions = dict(zip(steps, (5, 4, 6, 30, 10, 7, 20, 40, 8, 12), strict=True))
    ran = [{"page": "bare", "queries": 1}] + [
        {"page": step, "queries": 2} for _ in range(3) for step in steps
    ]
    # the second booking's steps dearer: the median is the first's and the third's
    totals = [4_000_000] + [
        (millions[step] + (100 if k == 1 else 0)) * 1_000_000 for k in range(3) for step in steps
    ]
    args = type("Args", (), {"flow": 3, "reads": True})()
    bench_instructions._print_flow({"url": "postgresql+psycopg://x/y"}, args, ran, totals, 4e6)
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [row[0] for row in rows[1:11]] == list(steps)  # in the order they were counted
    assert rows[11] == ["hold", "+", "pay", "+", "return", "90.00", "22.50"]
    # 5 + 4 + 6 + 30 + 7 + 20 + 40 + 8 + 12: everything but the rival's refused hold (10)
    assert rows[12][-2:] == ["132.00", "33.00"] and rows[12][:2] == ["a", "booking"]


def test_the_sandbox_runs_inside_starmap_only_within_a_counted_call(monkeypatch):
    calls, starmaps = [], []
    real = bench_instructions.itertools.starmap

    def recording_starmap(function, iterable):
        starmaps.append(True)
        return real(function, iterable)

    monkeypatch.setattr(bench_instructions.itertools, "starmap", recording_starmap)

    def sandbox(environ, start_response):
        calls.append((bench_instructions._counting[:], len(starmaps)))
        return [b"ok"]

    wrapped = bench_instructions._not_counted(sandbox)
    assert list(wrapped({}, None)) == [b"ok"]  # the patient's click: as it is
    assert bench_instructions._counted(wrapped, {}, None) == [b"ok"]  # inside starmap
    assert calls == [([], 0), ([True], 1)]
