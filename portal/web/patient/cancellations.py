from portal.web.patient import bp  # noqa: F401
