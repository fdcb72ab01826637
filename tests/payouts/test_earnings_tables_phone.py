"""On a 390 px phone the earnings page's tables are cards, each cell named by its column
(review finding: "Earnings per appointment" showed "₹47…", Payouts hid Status and UTR;
docs/mobile.md: a `cards` table's cells carry `data-label`)."""

import re

from portal.extensions import db
from tests.payouts.conftest import payouts_of


def _table(html, section):
    part = html.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    return part.split("<table", 1)[1].split("</table>", 1)[0]


def test_earnings_penalties_and_payouts_are_cards_with_labelled_cells(world, x, client, login):
    provider, user = world.ready_provider("INSTANT", commission_bps=500)
    world.earn(provider, user, 100_000)
    x.settle()
    world.penalty(provider, 25_000)
    assert payouts_of(provider.id)
    db.session.commit()
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    for section, labels in {
        "earnings": ["Date", "Service", "Your fee", "Your earning"],
        "penalties": ["Date", "What", "Amount"],
        "payouts": ["Created", "Gross", "TDS", "Net paid", "Mode", "Status", "UTR"],
    }.items():
        table = _table(html, section)
        assert table.lstrip().startswith('class="cards"'), section
        cells = re.findall(r"<td[^>]*>", table)
        assert cells, section
        assert all("data-label=" in cell for cell in cells), (section, cells)
        found = re.findall(r'data-label="([^"]+)"', table)
        assert found[: len(labels)] == labels, (section, found)
