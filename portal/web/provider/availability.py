from portal.web.provider import bp  # noqa: F401  (weekly hours and leave go here)
