from portal.web.patient import bp
from portal.web.render import render


@bp.get("/")
def home():
    return render("patient/home.html")
