"""The browser tests share one xdist worker (``tests.plugin``'s SERIAL_GROUPS with
``--dist loadgroup``): one Chromium at a time. pytest 9.2 with pytest-xdist 3.8 lost the
grouping without a word (xdist issue 1386: the group is written into a node id pytest no
longer reads), so this runs a small suite the way the Makefile does and looks at who ran
what."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_browser_tests_run_on_one_worker_and_the_others_spread(tmp_path):
    browser = "import pytest\npytestmark = pytest.mark.e2e\n"
    for name, head in (("test_a", browser), ("test_b", browser), ("test_c", "")):
        tests = "".join(f"def test_{i}():\n    pass\n" for i in range(8))
        (tmp_path / f"{name}.py").write_text(head + tests)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.plugin", "-p", "no:cacheprovider"]
        + ["-n", "2", "--dist", "loadgroup", "-v", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    ran = re.findall(r"\[(gw\d)\] .*PASSED (\S+)", run.stdout)
    assert len(ran) == 24, run.stdout
    browser_workers = {worker for worker, test in ran if "test_c.py" not in test}
    assert len(browser_workers) == 1, f"browser tests spread over {browser_workers}"
    assert {worker for worker, _ in ran} == {"gw0", "gw1"}, "the others should spread"
