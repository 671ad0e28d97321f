"""Great Expectations' expectation cases through FlowForge's test engine (see great_expectations.py):
every case of every mapped type passes, and the harness notices a wrong answer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.conformance.great_expectations import LEFT_OUT, MAPPED, Case, Outcome, cases, compare, run

from flowforge.storage import LakehouseStore

ROOT = Path(__file__).resolve().parents[2]


def _applicable() -> list[Case]:
    root = Path(os.environ.get("FLOWFORGE_CONFORMANCE", ROOT.parent / "shared" / "conformance"))
    if not (root / "great_expectations").is_dir():
        return []
    return [c for c in cases(root) if c.expectation in MAPPED and c.applies]


CASES = _applicable()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LakehouseStore:
    return LakehouseStore(str(tmp_path_factory.mktemp("ge")))


def test_every_type_is_mapped_or_left_out_with_a_reason(conformance_dir: Path) -> None:
    types = {c.expectation for c in cases(conformance_dir)}
    assert sum(1 for _ in cases(conformance_dir)) == 663
    assert types == set(MAPPED) | (types & set(LEFT_OUT)), sorted(types - set(MAPPED) - set(LEFT_OUT))
    assert len(MAPPED) == 30


@pytest.mark.parametrize("case", CASES, ids=[f"{c.expectation}:{c.file}:{c.title}" for c in CASES])
def test_case_passes(case: Case, store: LakehouseStore, conformance_dir: Path) -> None:
    got = run(case.expectation, case.dataset, case.case["in"], store)
    assert compare(case.expectation, case.case, got) == []


def test_the_harness_notices_a_wrong_answer(store: LakehouseStore, conformance_dir: Path) -> None:
    checked = 0
    for case in CASES:
        out = case.case["out"]
        got = run(case.expectation, case.dataset, case.case["in"], store)
        if "success" in out and got.error is None:
            assert compare(case.expectation, case.case, Outcome(not got.success, None, got.ids, got.values, got.rows,
                                                                 got.checked, got.observed)), case.title
            checked += 1
        if out.get("unexpected_index_list") and got.ids:
            assert compare(case.expectation, case.case, Outcome(got.success, None, got.ids[1:], got.values[1:],
                                                                 got.rows, got.checked, got.observed)), case.title
            checked += 1
    assert checked > 250
