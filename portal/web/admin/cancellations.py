from portal.web.admin import bp  # noqa: F401
