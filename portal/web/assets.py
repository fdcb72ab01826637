"""Static files, fingerprinted and compressed (issue #16, "Mobile first").

* ``url_for("static", filename=f)`` adds ``?v=<hash of the file's content>``; a request
  that carries the file's current hash is cached for a year (``immutable``): a phone
  downloads htmx and the stylesheet once, and a changed file gets a new URL. A request
  with another or no hash must revalidate (``no-cache``; the ETag answers 304).
* Responses are compressed (Flask-Compress: zstd, brotli or gzip, as the browser
  accepts) when the type is text and the body is over 500 bytes. Static text files are
  compressed once per content at the highest brotli / gzip level and kept in memory
  (``Precompressed``): htmx is 52 KB, 15 KB in brotli 11 against 17 KB at the level
  pages are compressed with on the fly."""

import gzip
import hashlib
import mimetypes
import os

import brotli
from flask import Response, request, url_for
from flask_compress import Compress

YEAR = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={YEAR}, immutable"
REVALIDATE = "no-cache"
COMPRESSED_TYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/xml",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
]

compress = Compress()


class Fingerprints:
    """Content hashes of the static files, recomputed when a file changes (its size or
    modification time): ``make run`` picks up an edited stylesheet without a restart."""

    def __init__(self, folder):
        self.folder = os.path.realpath(folder)
        self._known = {}
        self._paths = {}  # filename -> resolved path (or None: outside the folder)

    def _path(self, filename):
        # Resolved once per name (realpath walks every component: most of this call's
        # time, for every static URL of every page); the file itself is still checked.
        try:
            return self._paths[filename]
        except KeyError:
            pass
        path = os.path.realpath(os.path.join(self.folder, filename))
        if not path.startswith(self.folder + os.sep):
            path = None
        if len(self._paths) < 1024:  # names come from requests too: bounded
            self._paths[filename] = path
        return path

    def of(self, filename):
        path = self._path(filename)
        if path is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        known = self._known.get(path)
        if known is None or known[0] != key:
            with open(path, "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()[:12]
            known = self._known[path] = (key, digest)
        return known[1]


class Precompressed:
    """Static text files compressed once per content hash and encoding."""

    ENCODINGS = ("br", "gzip")

    def __init__(self, fingerprints):
        self.fingerprints = fingerprints
        self._bodies = {}

    def response(self, filename):
        """The compressed answer for the request, or None (not text, not accepted, no
        such file)."""
        mimetype = mimetypes.guess_type(filename)[0]
        if mimetype not in COMPRESSED_TYPES and mimetype != "text/javascript":
            return None
        encoding = request.accept_encodings.best_match(self.ENCODINGS)
        digest = self.fingerprints.of(filename)
        if encoding is None or digest is None:
            return None
        key = (filename, digest, encoding)
        body = self._bodies.get(key)
        if body is None:
            path = os.path.join(self.fingerprints.folder, filename)
            with open(path, "rb") as fh:
                data = fh.read()
            body = brotli.compress(data, quality=11) if encoding == "br" else gzip.compress(data, 9)
            self._bodies[key] = body
        response = Response(body, mimetype=mimetype)
        response.headers["Content-Encoding"] = encoding
        response.set_etag(f"{digest}-{encoding}")
        return response.make_conditional(request)


def init_app(app):
    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESSED_TYPES)
    app.config.setdefault("COMPRESS_MIN_SIZE", 500)
    compress.init_app(app)
    fingerprints = Fingerprints(app.static_folder)
    app.extensions["static_fingerprints"] = fingerprints
    precompressed = Precompressed(fingerprints)
    send_static = app.view_functions["static"]

    def static(filename):
        return precompressed.response(filename) or send_static(filename=filename)

    app.view_functions["static"] = static

    urls = {}

    def static_url(filename):
        """``url_for("static", filename=…)`` for templates, kept per file content and URL
        root: the file is still checked on every call (an edited stylesheet gets its new
        URL at once), but the URL is built once (a ``url_for`` through the fingerprint
        hook cost a page four times 20 µs)."""
        digest = fingerprints.of(filename)
        key = (filename, digest, request.script_root)
        url = urls.get(key)
        if url is None:  # the URL carries the digest of the key (read once)
            url = url_for("static", filename=filename, **({"v": digest} if digest else {}))
            if len(urls) < 1024:
                urls[key] = url
        return url

    app.jinja_env.globals["static_url"] = static_url

    @app.url_defaults
    def _fingerprint(endpoint, values):
        if endpoint == "static" and "filename" in values and "v" not in values:
            digest = fingerprints.of(values["filename"])
            if digest:
                values["v"] = digest

    @app.after_request
    def _static_caching(response):
        if request.endpoint != "static" or response.status_code not in (200, 304):
            return response
        filename = (request.view_args or {}).get("filename", "")
        current = fingerprints.of(filename)
        fresh = current is not None and request.args.get("v") == current
        response.headers["Cache-Control"] = IMMUTABLE if fresh else REVALIDATE
        response.expires = None
        return response
