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
