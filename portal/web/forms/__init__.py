"""WTForms for the web layer. Forms check presence and shape only; business rules live in
the services, whose messages views put beside the matching fields."""

from portal.web.forms import html

html.install()  # every form module is imported through this package: once per process
