"""Lists: keyset pages (next/previous, no duplicates or gaps, bad cursors, bounded size) and
the admin visits list loading its rows in a constant number of queries."""

import re
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.booking.queries import VISIT_ORDER
from portal.domain.rates import format_inr
from portal.extensions import db
from portal.pagination import MAX_PER_PAGE, encode_cursor
from tests.pages import a_second_later, without_csrf
from tests.web.booking.helpers import hold, hx, slot

NEXT = re.compile(r'href="([^"]*)" rel="next"')
PREV = re.compile(r'href="([^"]*)" rel="prev"')
ROW = re.compile(r'<tr id="visit-(\d+)"')


def _slot_number(i, world):
    """The ``i``-th free half hour from ``world.day`` on (weekdays 09:00–18:00 IST)."""
    day, left = world.day, i
    while True:
        if day.weekday() < 5:
            if left < 18:
                return slot(day, 9 + left // 2, 30 * (left % 2))
            left -= 18
        day += timedelta(days=1)


def _holds(app, world, n, first=0):
    """``n`` visits at distinct times (a person is never in two places), alternating the
    doctors; every third for the patient's child (the row shows the person's name)."""
    for i in range(first, first + n):
        hold(
            app,
            world,
            provider=world.doc1 if i % 2 else world.doc2,
            start=_slot_number(i, world),
            dependent=world.child if i % 3 == 0 else None,
        )


@contextmanager
def count_queries(app):
    """Every statement the app's engine runs meanwhile."""
    statements = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def _visit_ids(html):
    return [int(i) for i in ROW.findall(html)]


def _unescape(url):
    return url.replace("&amp;", "&")


def test_admin_visits_list_costs_the_same_for_3_rows_and_30(app, client, login, world):
    login(world.admin)
    client.get("/admin/visits")  # warm up: the login's own loads, template compilation
    _holds(app, world, 3)
    with count_queries(app) as few:
        page = client.get("/admin/visits?per_page=50", headers=hx("results"))
    assert page.status_code == 200 and len(_visit_ids(page.get_data(as_text=True))) == 3
    _holds(app, world, 27, first=3)
    with count_queries(app) as many:
        page = client.get("/admin/visits?per_page=50", headers=hx("results"))
    html = page.get_data(as_text=True)
    assert len(_visit_ids(html)) == 30 and "Aarav" in html and "Priya Sharma" in html
    assert len(many) == len(few), (len(few), len(many), many)
    # user, filter choices (clinics, providers), page, items, providers, payments (and
    # their attempts), attention flags, reconciliation … never one per row.
    assert len(many) <= 15, "\n".join(s[:90] for s in many)


def test_admin_visits_pages_by_cursor_without_gaps_or_repeats(app, client, login, world):
    _holds(app, world, 45)
    login(world.admin)
    seen, urls, url = [], [], "/admin/visits?per_page=20"
    while url:
        urls.append(url)
        html = client.get(url, headers=hx("results")).get_data(as_text=True)
        ids = _visit_ids(html)
        assert 0 < len(ids) <= 20
        seen += ids
        found = NEXT.search(html)
        url = _unescape(found.group(1)) if found else None
        assert url is None or "per_page=20" in url  # the size asked for is kept
    assert len(urls) == 3 and len(seen) == 45 and len(set(seen)) == 45
    assert seen == sorted(seen, reverse=True)  # newest first (created in id order)
    # "Previous" from the last page is the middle page, exactly.
    last = client.get(urls[2], headers=hx("results")).get_data(as_text=True)
    assert _visit_ids(last) == seen[40:] and not NEXT.search(last)
    middle = client.get(_unescape(PREV.search(last).group(1)), headers=hx("results"))
    assert _visit_ids(middle.get_data(as_text=True)) == seen[20:40]
    # A visit made meanwhile does not shift the later pages.
    _holds(app, world, 1, first=45)
    again = client.get(urls[2], headers=hx("results")).get_data(as_text=True)
    assert _visit_ids(again) == seen[40:]


def test_a_patients_visits_page_forward_and_back_by_cursor(app, client, login, world):
    """The patient's list runs page statements built once (``keyset_page(…, params=…)``:
    the cursor's values and the size bound, one statement a direction): every visit once,
    newest first, "previous" the page before, the status filter and a bad cursor kept."""
    from portal.pagination import _BUILT

    _holds(app, world, 45)
    with app.app_context():
        db.session.execute(
            sa.text("UPDATE visits SET status = 'CANCELLED' WHERE id % 3 = 0")
        )  # another status for the filter to leave out
        db.session.commit()
    login(world.patient)
    for base, expected in (("/me/visits", 45), ("/me/visits?status=DRAFT", 30)):
        seen, urls, url = [], [], base
        while url:
            urls.append(url)
            html = client.get(url).get_data(as_text=True)
            seen += _visit_ids(html)
            found = NEXT.search(html)
            url = _unescape(found.group(1)) if found else None
        assert len(urls) == -(-expected // 20) and len(seen) == len(set(seen)) == expected
        assert seen == sorted(seen, reverse=True)
        if base.endswith("DRAFT"):
            assert not any(visit_id % 3 == 0 for visit_id in seen)
        last = client.get(urls[-1]).get_data(as_text=True)
        back = client.get(_unescape(PREV.search(last).group(1))).get_data(as_text=True)
        assert _visit_ids(back) == seen[(len(urls) - 2) * 20 : (len(urls) - 1) * 20]
        joiner = "&" if "?" in base else "?"
        bad = client.get(f"{base}{joiner}after={encode_cursor(['x', 1])}")
        assert _visit_ids(bad.get_data(as_text=True)) == seen[:20]
    built = [entry for entry in _BUILT.values() if entry[1] is VISIT_ORDER]
    assert len(built) == 6  # first page, after, before; with and without the filter


def test_a_page_of_a_query_built_once_counts_with_its_parameters(app, world):
    from portal.booking.queries import _patient_visits
    from portal.pagination import keyset_page

    _holds(app, world, 3)
    with app.app_context():
        page = keyset_page(
            _patient_visits(False),
            VISIT_ORDER,
            per_page=2,
            scalars=False,
            count=True,
            params={"patient_id": world.patient.id},
        )
        assert len(page.items) == 2 and page.total == 3 and page.next_cursor


def test_filters_travel_with_the_cursor(app, client, login, world):
    _holds(app, world, 25)
    login(world.admin)
    html = client.get("/admin/visits?q=priya&status=DRAFT").get_data(as_text=True)
    following = _unescape(NEXT.search(html).group(1))
    assert "q=priya" in following and "status=DRAFT" in following and "after=" in following


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "bm90IGpzb24",
        encode_cursor(["x", "y"]),
        encode_cursor([1]),
        encode_cursor([None, 1]),
        encode_cursor([10**30, 1]),
        "A" * 600,
        encode_cursor(["2026-01-01", "\x00"]),
        encode_cursor([datetime(2026, 1, 1), 1]),  # a time with no zone: none is stored so
    ],
)
def test_a_bad_cursor_shows_the_first_page(app, client, login, world, cursor):
    _holds(app, world, 3)
    login(world.admin)
    first = _visit_ids(client.get("/admin/visits").get_data(as_text=True))
    for param in ("after", "before"):
        response = client.get("/admin/visits", query_string={param: cursor})
        assert response.status_code == 200
        assert _visit_ids(response.get_data(as_text=True)) == first


def test_page_size_is_bounded(app, client, login, world):
    _holds(app, world, MAX_PER_PAGE + 5)
    login(world.admin)
    for asked in ("1000", "-3", "abc"):
        ids = _visit_ids(client.get(f"/admin/visits?per_page={asked}").get_data(as_text=True))
        assert 1 <= len(ids) <= MAX_PER_PAGE


def test_patient_visits_and_wallet_page_by_cursor(app, client, login, world):
    from tests.web.booking.helpers import credit_wallet

    _holds(app, world, 25)
    login(world.patient)
    html = client.get("/me/visits").get_data(as_text=True)
    first = _visit_ids(html)
    second = _visit_ids(client.get(_unescape(NEXT.search(html).group(1))).get_data(as_text=True))
    assert len(first) == 20 and len(second) == 5 and not set(first) & set(second)
    for n in range(35):
        credit_wallet(app, world.patient.id, 100 + n)
    html = client.get("/me/wallet").get_data(as_text=True)
    assert html.count("<tr>") - 1 == 30  # a header row and 30 lines
    older = client.get(_unescape(NEXT.search(html).group(1))).get_data(as_text=True)
    assert older.count("<tr>") - 1 == 5
    # Running balances: the oldest line's is its own amount, the second's the sum of both;
    # the newest line's is the whole balance.
    oldest = _history(older)
    assert oldest[-1] == ("+" + format_inr(100), format_inr(100))
    assert oldest[-2] == ("+" + format_inr(101), format_inr(201))
    newest = _history(html)
    assert newest[0] == ("+" + format_inr(134), format_inr(sum(100 + n for n in range(35))))
    # "Newer" from the older page: the newest page again, by a statement built once.
    newer = client.get(_unescape(PREV.search(older).group(1))).get_data(as_text=True)
    assert _history(newer) == newest
    from portal.ledger.queries import HISTORY_ORDER
    from portal.pagination import _BUILT

    assert sum(entry[1] is HISTORY_ORDER for entry in _BUILT.values()) >= 3


def _history(html):
    """(amount, balance) of each wallet line, as shown."""
    table = html[html.index('id="wallet-history"') :]
    table = table[: table.index("</table>")]
    return [
        (a.strip(), b.strip())
        for a, b in re.findall(
            r'<td[^>]* class="num">([^<]*)</td>\s*<td[^>]* class="num">([^<]*)</td>', table
        )
    ]


def test_visits_of_several_items_page_by_visit(app, client, login, world):
    """A list's rows are read joined with their items: its size counts visits, not item
    rows, and each row has all its items."""
    for i in range(22):
        visit_id, _ = hold(app, world, provider=world.doc1, start=_slot_number(3 * i, world))
        for k in (1, 2):
            hold(
                app,
                world,
                provider=world.doc2,
                start=_slot_number(3 * i + k, world),
                visit_id=visit_id,
            )
    login(world.patient)
    html = client.get("/me/visits").get_data(as_text=True)
    first = _visit_ids(html)
    second = _visit_ids(client.get(_unescape(NEXT.search(html).group(1))).get_data(as_text=True))
    assert len(first) == 20 and len(second) == 2 and not set(first) & set(second)
    home = client.get("/me/").get_data(as_text=True)
    rows = re.findall(
        r'<td data-label="Visit">(V\d+)</td>\s*<td data-label="For">[^<]*</td>\s*'
        r'<td data-label="Items">(\d+)</td>',
        home,
    )  # the unpaid: number, items
    assert len(rows) == 5 and {items for _, items in rows} == {"3"}


def test_the_home_shows_the_newest_five_unpaid_and_soonest_five_upcoming_visits(
    app, client, login, world
):
    """Both lists are read in one query: five of each, the unpaid newest first, the
    upcoming soonest first (the newest booked had hidden a visit tomorrow booked before
    five later ones: review finding), each in its table."""
    from portal.booking.models import MasterBooking
    from portal.domain.states import VisitStatus

    _holds(app, world, 14)
    with app.app_context():
        ids = db.session.scalars(sa.select(MasterBooking.id).order_by(MasterBooking.id)).all()
        # Set-up: the lists read statuses only, so every other visit is marked paid.
        paid = ids[::2]
        db.session.execute(
            sa.update(MasterBooking)
            .where(MasterBooking.id.in_(paid))
            .values(status=VisitStatus.CONFIRMED)
        )
        db.session.commit()
        number = dict(db.session.execute(sa.select(MasterBooking.id, MasterBooking.number)).all())
    login(world.patient)
    home = client.get("/me/").get_data(as_text=True)
    unpaid, upcoming = home.split("Upcoming visits")
    newest = sorted(ids, reverse=True)
    assert (
        re.findall(r'<td data-label="Visit">(V\d+)</td>', unpaid)
        == [number[i] for i in newest if i not in paid][:5]
    )
    # The visits' times rise with their ids (_holds): the soonest are the oldest.
    assert (
        re.findall(r'<td data-label="Visit">(V\d+)</td>', upcoming)
        == [number[i] for i in sorted(ids) if i in paid][:5]
    )


FOR_ROW = re.compile(r'<td data-label="Visit">(V\d+)</td>\s*<td data-label="For">([^<]*)</td>')


def _home_rows(client):
    """The home's unpaid and upcoming rows: (visit number, whom it is for) each."""
    unpaid, upcoming = client.get("/me/").get_data(as_text=True).split("Upcoming visits")
    return FOR_ROW.findall(unpaid), FOR_ROW.findall(upcoming)


def test_the_home_says_whom_each_visit_is_for_in_a_fixed_number_of_queries(
    app, client, login, world
):
    """A patient booking for family could not tell on the home whose visit was whose
    (review finding): each row of both lists says whom it is for, "You" for the account
    holder's own; the name comes with the rows' one query, so the page runs as many
    statements for 4 visits as for 12."""
    from portal.accounts.models import Dependent
    from portal.booking.models import MasterBooking
    from portal.domain.states import VisitStatus

    def some_paid(first, n):
        _holds(app, world, n, first=first)
        with app.app_context():
            ids = db.session.scalars(sa.select(MasterBooking.id).order_by(MasterBooking.id))
            paid = list(ids)[first::2]  # set-up: the lists read statuses only
            db.session.execute(
                sa.update(MasterBooking)
                .where(MasterBooking.id.in_(paid))
                .values(status=VisitStatus.CONFIRMED)
            )
            db.session.commit()
            rows = db.session.execute(sa.select(MasterBooking.number, MasterBooking.dependent_id))
            return {number: "Aarav" if dependent else "You" for number, dependent in rows}

    whom = some_paid(0, 4)  # the child's and the holder's, paid and unpaid
    login(world.patient)
    unpaid, upcoming = _home_rows(client)
    assert len(unpaid) == len(upcoming) == 2
    assert {who for _, who in unpaid} == {who for _, who in upcoming} == {"You", "Aarav"}
    assert all(who == whom[number] for number, who in unpaid + upcoming)
    with count_queries(app) as few:
        client.get("/me/")
    whom = some_paid(4, 8)
    with count_queries(app) as many:
        unpaid, upcoming = _home_rows(client)
    assert len(unpaid) == len(upcoming) == 5
    assert all(who == whom[number] for number, who in unpaid + upcoming)
    assert len(many) == len(few), many
    with app.app_context():  # a kept row ({% cache %}) follows the name: it is the row's
        db.session.get(Dependent, world.child).name = "Aarav Sharma"
        db.session.commit()
    unpaid, upcoming = _home_rows(client)
    assert {who for _, who in unpaid + upcoming} == {"You", "Aarav Sharma"}


def _two_visits(app, world, child_status, lab_slot):
    """The patient's own visit of two items added latest first, its later one cancelled,
    and the child's visit of a consultation and a lab test (at ``lab_slot``), in
    ``child_status``: (own visit id, child's visit id)."""
    from portal.booking.models import MasterBooking
    from portal.domain.states import BookingStatus

    own, _ = hold(app, world, start=_slot_number(1, world))
    hold(app, world, provider=world.doc2, start=_slot_number(0, world), visit_id=own)
    child, _ = hold(app, world, start=_slot_number(4, world), dependent=world.child)
    hold(app, world, service=world.lab, provider=world.lab_provider, dependent=world.child,
         start=_slot_number(lab_slot, world), visit_id=child)  # fmt: skip
    with app.app_context():
        db.session.get(MasterBooking, own).items[-1].status = BookingStatus.CANCELLED
        db.session.get(MasterBooking, child).status = child_status
        db.session.commit()
    return own, child


def test_the_patients_list_rows_say_what_the_visits_themselves_say(app, world):
    """The patient's list reads its rows as columns (``patient_visits_page``), not as the
    ORM's visits: each row must agree with the visit's own rules: whom it is for, its
    items' services in order, its first item's start and zone, its total (a cancelled
    item does not count), its status; and the status filter keeps only its own."""
    from portal.booking import queries
    from portal.booking.models import MasterBooking
    from portal.domain.states import VisitStatus

    own, child = _two_visits(app, world, VisitStatus.PENDING_PAYMENT, lab_slot=5)
    with app.test_request_context("/"):
        rows = {row.id: row for row in queries.patient_visits_page(world.patient.id).items}
        assert set(rows) == {own, child}
        for visit_id, row in rows.items():
            visit = db.session.get(MasterBooking, visit_id)
            assert row.number == visit.number and row.status == visit.status
            assert row.for_name == visit.for_name
            assert row.service_names == ", ".join(i.service.name for i in visit.items)
            assert row.first_start == visit.items[0].start_at
            assert row.first_timezone == visit.items[0].clinic.timezone
            assert row.subtotal == visit.subtotal
        assert rows[child].for_name == "Aarav" and rows[own].for_name == "Priya Sharma"
        assert rows[own].subtotal < sum(i.total for i in db.session.get(MasterBooking, own).items)
        pending = queries.patient_visits_page(world.patient.id, status=VisitStatus.PENDING_PAYMENT)
        assert [row.id for row in pending.items] == [child]
        assert queries.patient_visits_page(world.other.id).items == []


def test_the_homes_rows_say_what_the_visits_themselves_say(app, world):
    """The home reads its two lists as columns (``open_and_upcoming_visits``): each row's
    item count, first item's start and zone (the items in their own order, the earliest
    start first, whatever order they were added in) and hold must agree with the visit."""
    from portal.booking import queries
    from portal.booking.models import MasterBooking
    from portal.domain.states import VisitStatus

    own, paid = _two_visits(app, world, VisitStatus.CONFIRMED, lab_slot=3)
    with app.test_request_context("/"):
        unpaid, upcoming = queries.open_and_upcoming_visits(world.patient.id)
        assert [row.id for row in unpaid] == [own] and [row.id for row in upcoming] == [paid]
        for row in unpaid + upcoming:
            visit = db.session.get(MasterBooking, row.id)
            assert row.number == visit.number and row.status == visit.status
            assert row.item_count == len(visit.items) == 2
            assert row.first_start == visit.items[0].start_at
            assert row.first_timezone == visit.items[0].clinic.timezone
            assert row.hold_expires_at == visit.hold_expires_at
        assert unpaid[0].first_start == _slot_number(0, world)
        assert queries.open_and_upcoming_visits(world.other.id) == ([], [])


def test_a_kept_row_follows_its_visit_and_the_readers_language(app, client, login, world):
    """Rows of the visits list and the home are kept rendered (``{% cache %}`` keyed by the
    row's own values): a change to the visit shows at once, and a reader of another
    language gets the row in theirs."""
    from portal.booking.models import MasterBooking
    from portal.domain.states import BookingStatus, VisitStatus

    visit_id, _ = hold(app, world, start=_slot_number(1, world))
    hold(app, world, provider=world.doc2, start=_slot_number(2, world), visit_id=visit_id)
    login(world.patient)

    def rows():
        page = client.get("/me/visits").get_data(as_text=True)
        # The layout's CSRF tokens (htmx's header, the sign-out and language forms) are
        # signed anew with the second: not the rows' concern.
        home = without_csrf(client.get("/me/").get_data(as_text=True))
        return page[page.index(f'id="visit-{visit_id}"') :].split("</tr>")[0], home

    row, home = rows()
    with a_second_later():
        assert rows() == (row, home)  # shown again: the same
    assert "Draft" in row and re.search(
        r'<td data-label="Visit">V\d+</td>\s*<td data-label="For">You</td>\s*'
        r'<td data-label="Items">2</td>',
        home,
    )
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        visit.items[-1].status = BookingStatus.CANCELLED  # its total drops
        visit.status = VisitStatus.CONFIRMED
        # A paid visit's row states what was paid (docs/booking.md "What My visits shows").
        kept = visit.items[0]
        kept.gateway_paid = kept.paid_amount = kept.total
        db.session.commit()
        total = format_inr(visit.subtotal)
    row, home = rows()
    assert "Confirmed" in row and "Draft" not in row and total in row
    assert "Upcoming visits" in home and "Continue and pay" not in home
    client.post("/language", data={"language": "hi", "next": "/me/visits"})
    hindi, _ = rows()
    assert "Confirmed" not in hindi and hindi != row


def test_a_search_term_pasted_with_direction_characters_is_searched_not_refused(
    app, client, login, world
):
    """The admin's visits search asks for a mobile number, and a number pasted from a phone
    app arrives wrapped in U+202A…U+202C (a pasted Urdu name carries U+200F): the
    direction rule refused the search (422, no rows). A search or filter form (no CSRF
    token: it changes nothing) drops those characters from its terms instead (review
    finding; docs/security.md)."""
    _holds(app, world, 3)
    login(world.admin)
    plain = client.get("/admin/visits", query_string={"q": "+91 98123 45678"})
    pasted = client.get("/admin/visits", query_string={"q": "\u202a+91 98123 45678\u202c"})
    assert ROW.findall(plain.get_data(as_text=True))
    assert pasted.status_code == 200
    assert ROW.findall(pasted.get_data(as_text=True)) == ROW.findall(plain.get_data(as_text=True))
    urdu = client.get("/admin/visits", query_string={"q": "\u200fعائشہ"})
    assert urdu.status_code == 200
    assert "change the direction of text" not in urdu.get_data(as_text=True)


def test_a_percent_or_an_underscore_in_the_visits_search_means_itself(app, client, login, world):
    """The search typed ``%`` and ``_`` into its LIKE pattern as wildcards (review finding):
    "pri_a" found Priya Sharma's visits and "%sharma" every Sharma. They are characters
    like any other now (``portal.db.contains_text``, the portal's one substring search)."""
    _holds(app, world, 2)
    login(world.admin)

    def rows(q):
        answer = client.get("/admin/visits", query_string={"q": q})
        assert answer.status_code == 200
        return ROW.findall(answer.get_data(as_text=True))

    assert len(rows("priya")) == 2
    assert rows("pri_a") == []
    assert rows("%sharma") == []
    assert rows("a%r") == []  # "Aarav" is the child's name
