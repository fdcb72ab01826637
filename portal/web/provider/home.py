from portal.web.provider import bp
from portal.web.provider.schedule import today_page


@bp.get("/")
def home():
    # A provider's day starts here: today's appointments (the schedule pages through days).
    return today_page()
