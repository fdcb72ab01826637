from portal.web.admin import bp
from portal.web.render import render


@bp.get("/")
def home():
    return render("admin/home.html")
