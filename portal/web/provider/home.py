from flask import redirect, url_for

from portal.web.provider import bp


@bp.get("/")
def home():
    # A provider's day starts on the schedule: today's and upcoming appointments.
    return redirect(url_for("provider.schedule"))
