from portal.web.provider import bp  # noqa: F401
