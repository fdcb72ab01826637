"""The TDS report's page and its CSV give a provider's row the same section when no payout
of the quarter had TDS deducted (below the threshold: ``tds_section`` is NULL): the
policy's section for the year, which the report's query now gives both. Review finding:
the CSV fell back to it ("194J") while the page printed "—". Form 26Q reports every
payment under its section whether or not tax was deducted."""

import re
from datetime import UTC, date, datetime

import time_machine

from portal.exports import build
from portal.payouts import runs
from tests.plugin import csv_rows


def _at(day):
    return time_machine.travel(datetime.combine(day, datetime.min.time(), UTC).replace(hour=6))


def test_the_page_shows_the_section_the_csv_gives(app, world, x, make_user, login, client):
    asha, asha_user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Asha")
    with _at(date(2026, 6, 20)):  # Q1: below the threshold, no TDS deducted
        world.earn(asha, asha_user, 3_000_000)
        runs.run_cycle("WEEKLY", date(2026, 6, 20))
        x.settle()
    parsed = csv_rows("".join(build("tds", {"fy": "2026-27"}).iter_csv()))
    header, [row, _gap, _total] = parsed[5], parsed[6:]
    in_file = row[header.index("Section")]
    assert in_file == "194J"

    login(make_user("admin"))
    page = client.get("/admin/reports/tds?fy=2026-27")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    cells = re.findall(r"<td>(.*?)</td>", html.split('id="tds-rows"')[1].split("</tbody>")[0])
    # Quarter, provider, PAN, section …
    assert cells[:4] == ["Q1", "Dr Asha", "not on file", in_file], cells
