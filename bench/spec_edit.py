"""Saving one job of a workflow file: FlowForge's in-place edit (ruamel.yaml, comments and layout
kept) against a PyYAML load-and-dump rewrite (what the job editor did before, and what a script
would do), on each shipped template and on a 200-job workflow.

    python bench/spec_edit.py            # best of 7 rounds of 20 saves each

Each save changes one job's description (the last job: the worst case for splicing) and returns
the new file text; no disk or metadata work is timed. Results print as a table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import yaml


def _best(fn: Callable[[], Any], rounds: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def _big(n: int) -> str:
    jobs = "".join(
        f"  # job {i}\n  - name: build_{i}\n    kind: gold\n    tables:\n      - target: gold_{i}\n"
        f"        sql: |\n          SELECT {i} AS n, 'x' AS label\n\n" for i in range(n))
    return f"name: big\ndescription: many jobs\njobs:\n{jobs}"


def main() -> None:
    from flowforge.core.spec_edit import merge_text
    from flowforge.core.spec_text import dump_yaml
    from flowforge.templates.registry import list_templates

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cases = [(t.name, t.render()) for t in list_templates()] + [("200 gold jobs", _big(200))]
    print(f"{'workflow':<24}{'lines':>7}{'in place (ms)':>16}{'PyYAML rewrite (ms)':>22}{'ratio':>8}")
    for name, text in cases:
        spec = yaml.safe_load(text)
        spec["jobs"][-1]["description"] = "changed by the editor"

        def in_place(text: str = text, spec: dict[str, Any] = spec) -> str:
            return merge_text(text, spec)

        def rewrite(text: str = text) -> str:
            data = yaml.safe_load(text)
            data["jobs"][-1]["description"] = "changed by the editor"
            return dump_yaml(data)

        assert yaml.safe_load(in_place()) == yaml.safe_load(rewrite())
        ours, theirs = _best(in_place, args.rounds, args.repeat), _best(rewrite, args.rounds, args.repeat)
        print(f"{name:<24}{text.count(chr(10)):>7}{ours * 1000:>16.2f}{theirs * 1000:>22.2f}{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
