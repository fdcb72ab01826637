"""The domain layer stays pure: no Flask, no SQLAlchemy, no floats in money code."""

import ast
import pathlib

import portal.domain

DOMAIN = pathlib.Path(portal.domain.__file__).parent
FORBIDDEN = ("flask", "sqlalchemy", "flask_sqlalchemy", "portal.extensions", "portal.db")


def _modules():
    return sorted(DOMAIN.glob("*.py"))


def test_no_framework_imports():
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def test_no_float_literals_or_calls():
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant):
                assert not isinstance(node.value, float), f"float literal in {path.name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "float", f"float() in {path.name}"
