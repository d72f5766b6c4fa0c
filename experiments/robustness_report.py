"""Measures the robustness corpus: bad inputs and injected faults, as tests.

    python experiments/robustness_report.py [--ref main] [--json OUT.json] [-k EXPR]

Runs `tests/test_bad_inputs_*.py` and `tests/test_faults_*.py` of this checkout with pytest
(JUnit XML) against this checkout's code, or with `--ref REF` against the code of a git ref
(its tree is exported to a temporary folder and this checkout's tests are laid over it), and
prints the table of the reliability issue:

    faults injected / survived; bad inputs tried / clear named error / wrong silent result /
    crash.

Each bad-input test fails with ``OUTCOME=silent`` when the input gave a result without an
error, and with another message (traceback, unclear or unnamed error) otherwise: "crash".
A passing bad-input test is a clear error naming the input. A fault test passes when the
fault lost nothing. Tests that check the good path beside a bad one (`CONTROLS`) and the
newcomer checks (`NEWCOMER`) are counted on their own lines. Needs ../shared (or
$VP3D_SHARED_DIR) like the tests; takes minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

REPO = pathlib.Path(__file__).resolve().parents[1]
CONTROLS = {"test_null_coordinates_within_the_gap_are_interpolated",
            "test_serving_signature_still_serves_any_length"}
NEWCOMER = {"test_train_help_does_not_import_tensorflow",
            "test_run_files_are_readable_by_others"}


def _export(ref: str, into: pathlib.Path) -> None:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    shutil.rmtree(into / "tests", ignore_errors=True)
    shutil.copytree(REPO / "tests", into / "tests",
                    ignore=shutil.ignore_patterns("__pycache__"))


def run_corpus(root: pathlib.Path, select: str | None = None) -> list:
    """[(file, test name, passed, failure text)] of the corpus run in `root`."""
    files = sorted(str(p.relative_to(root)) for pattern in ("test_bad_inputs_*.py",
                                                             "test_faults_*.py")
                   for p in (root / "tests").glob(pattern))
    shared = os.environ.get("VP3D_SHARED_DIR", str(REPO.parent / "shared"))
    # Other entries of PYTHONPATH (e.g. a PyOpenGL for OSMesa) are kept after the code's.
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
             if p and pathlib.Path(p).resolve() != REPO]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), *extra]),
               VP3D_SHARED_DIR=shared, TF_CPP_MIN_LOG_LEVEL="2")
    with tempfile.TemporaryDirectory() as tmp:
        xml = pathlib.Path(tmp) / "corpus.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "--continue-on-collection-errors", f"--junitxml={xml}", *files] + (["-k", select] if select else [])
        subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        results = []
        for case in ET.parse(xml).getroot().iter("testcase"):
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            if case.find("skipped") is not None:
                continue
            text = "" if problem is None else (problem.get("message", "") + (problem.text or ""))
            results.append((case.get("classname", "").rsplit(".", 1)[-1], case.get("name"),
                            problem is None, text))
    return results


def tabulate(results: list) -> dict:
    table = {"faults_injected": 0, "faults_survived": 0, "bad_inputs": 0, "named": 0,
             "silent": 0, "crash": 0, "controls": 0, "controls_passed": 0, "newcomer": 0,
             "newcomer_passed": 0, "cases": []}
    for module, name, passed, text in results:
        function = name.split("[")[0]
        if function in CONTROLS or function in NEWCOMER:
            kind = "controls" if function in CONTROLS else "newcomer"
            table[kind] += 1
            table[f"{kind}_passed"] += passed
            outcome = "pass" if passed else "fail"
        elif module.startswith("test_faults_"):
            table["faults_injected"] += 1
            table["faults_survived"] += passed
            outcome = "survived" if passed else "lost"
        else:
            table["bad_inputs"] += 1
            match = re.search(r"OUTCOME=(\w+)", text)
            outcome = "named" if passed else (
                "silent" if match and match[1] == "silent" else "crash")
            table[outcome] += 1
        table["cases"].append({"test": f"{module}::{name}", "outcome": outcome})
    return table


def markdown(table: dict, label: str) -> str:
    return (f"| code | faults injected | survived | bad inputs tried | clear named error | "
            f"wrong silent result | crash |\n|---|---|---|---|---|---|---|\n"
            f"| {label} | {table['faults_injected']} | {table['faults_survived']} | "
            f"{table['bad_inputs']} | {table['named']} | {table['silent']} | "
            f"{table['crash']} |\n\nnewcomer checks passed: {table['newcomer_passed']}/"
            f"{table['newcomer']}; good-path controls passed: {table['controls_passed']}/"
            f"{table['controls']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", help="measure the code of this git ref (default: checkout)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the table and cases")
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset)")
    args = parser.parse_args(argv)
    if args.ref:
        with tempfile.TemporaryDirectory() as tmp:
            root = pathlib.Path(tmp)
            _export(args.ref, root)
            venv = REPO / ".venv"
            if venv.exists():
                (root / ".venv").symlink_to(venv.resolve())
            results = run_corpus(root, args.select)
    else:
        results = run_corpus(REPO, args.select)
    table = tabulate(results)
    label = args.ref or "this checkout"
    print(markdown(table, label))
    for case in table["cases"]:
        if case["outcome"] not in ("named", "survived", "pass"):
            print(f"  {case['outcome']}: {case['test']}")
    if args.json:
        args.json.write_text(json.dumps({"code": label, **table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
