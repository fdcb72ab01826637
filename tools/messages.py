"""The message catalogues as `make messages` writes them (docs/i18n.md): every marked string
of the code and the templates extracted into ``messages.pot`` (``babel.cfg``), then merged
into each language's ``messages.po``. ``tests/i18n`` writes them into a scratch folder and
compares, so the committed catalogue is always what this writes: no hand-wrapped entry that
the next run reflows, no entry left behind for a string the code no longer has.

    python tools/messages.py [OUT]   # OUT defaults to portal/translations (in place)
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOGUES = ROOT / "portal" / "translations"
LANGUAGES = ("hi",)
KEYWORDS = ("_l", "lazy_gettext", "N_", "Nn_:1,2")


def _pybabel(*args):
    # pybabel as a module of this interpreter, run from ROOT (first on its path): it finds
    # the tree's own template extension (babel.cfg), not an installed copy's, and needs no
    # script beside the interpreter.
    command = [sys.executable, "-m", "babel.messages.frontend", "-q", *args]
    subprocess.run(command, cwd=ROOT, check=True)


def write(out=CATALOGUES):
    """Extract into ``out/messages.pot`` and merge into ``out/<language>/LC_MESSAGES``,
    starting from the committed ``.po`` files when ``out`` is elsewhere."""
    out = Path(out).resolve()
    pot = out / "messages.pot"
    keywords = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    _pybabel(
        "extract", "-F", "babel.cfg", *keywords, "--add-location=file", "--sort-by-file",
        "--omit-header", "-o", str(pot), ".",
    )  # fmt: skip
    for language in LANGUAGES:
        po = out / language / "LC_MESSAGES" / "messages.po"
        committed = CATALOGUES / language / "LC_MESSAGES" / "messages.po"
        if out != CATALOGUES and committed.exists():
            po.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(committed, po)
        if not po.exists():
            _pybabel("init", "-i", str(pot), "-d", str(out), "-l", language)
        before = po.read_text()
        _pybabel(
            "update", "-i", str(pot), "-d", str(out), "-l", language,
            "--no-fuzzy-matching", "--ignore-obsolete",
        )  # fmt: skip
        if undated(po.read_text()) == undated(before):
            po.write_text(before)  # only the run's date changed: no diff to commit


def undated(text):
    """A catalogue's text less its header's date, which every run rewrites."""
    return re.sub(r'"POT-Creation-Date: [^"]*"\n', "", text)


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else CATALOGUES)
