"""Every status change goes through a state machine (``portal.domain.states``).

Walks ``portal/**/*.py`` with ``ast`` and fails on an assignment (``=``, ``+=``, an
annotated one, or ``setattr(x, "status", ...)``) to an attribute named ``status`` or
ending in ``_status`` anywhere but the machines themselves and the gateway sandbox
(which fakes the gateway's own records)."""

import ast
from pathlib import Path

import portal

ROOT = Path(portal.__file__).resolve().parent
ALLOWED = {"domain/states.py"}
ALLOWED_PREFIXES = ("gateway/sandbox/",)


def _is_status(name):
    return name == "status" or name.endswith("_status")


def _targets(node):
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    else:
        return
    for target in targets:
        yield from _flatten(target)


def _flatten(target):
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _flatten(element)
    elif isinstance(target, ast.Starred):
        yield from _flatten(target.value)
    else:
        yield target


def _setattr_status(node):
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "setattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and _is_status(node.args[1].value)
    )


def direct_status_assignments(source, filename="<source>"):
    """(line, text) of every direct status assignment in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        hit = any(isinstance(t, ast.Attribute) and _is_status(t.attr) for t in _targets(node))
        if hit or _setattr_status(node):
            found.append((node.lineno, ast.get_source_segment(source, node)))
    return found


def _checked_files():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED or rel.startswith(ALLOWED_PREFIXES):
            continue
        yield rel, path


def test_no_status_is_assigned_outside_the_state_machines():
    offences = [
        f"portal/{rel}:{line}: {text}"
        for rel, path in _checked_files()
        for line, text in sorted(direct_status_assignments(path.read_text(), str(path)))
    ]
    assert not offences, "assign statuses with MACHINE.move(obj, target):\n" + "\n".join(offences)


def test_the_walker_sees_every_form_of_assignment():
    source = "\n".join(
        [
            "item.status = 'X'",
            "a.status, b = 1, 2",
            "payout.payout_status += 'Y'",
            "row.status: str = 'Z'",
            "setattr(item, 'status', 'X')",
            "status = 'local name, not an attribute'",
            "item.statuses = ()",
            "f(status='keyword, not an assignment')",
        ]
    )
    assert [line for line, _ in direct_status_assignments(source)] == [1, 2, 3, 4, 5]
