from portal.web.provider import bp
from portal.web.render import render


@bp.get("/")
def home():
    return render("provider/home.html")
