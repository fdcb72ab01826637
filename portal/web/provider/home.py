from portal.web.provider import bp
from portal.web.provider.schedule import schedule


@bp.get("/")
def home():
    # A provider's day starts on the schedule: today's and upcoming appointments.
    return schedule()
