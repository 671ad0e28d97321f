"""The ``tests:`` field of a table: a list of tests of any registered kind.

```yaml
- target: silver_orders
  source: bronze_orders
  keys: [order_id]
  tests:
    - unique: order_id
    - relationships: {column: customer_id, to: silver_customers, field: customer_id}
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import AfterValidator, BeforeValidator, Field

import flowforge.quality.kinds  # noqa: F401  (registers every kind)
from flowforge.quality.base import TEST_KINDS, TestSpec, normalize

if TYPE_CHECKING:
    TestUnion = TestSpec
else:
    # built from the registry, so a new kind is one new module and nothing else
    TestUnion = Annotated[Union[tuple(TEST_KINDS.values())], Field(discriminator="test")]  # noqa: UP007


def _distinct(tests: tuple[TestSpec, ...]) -> tuple[TestSpec, ...]:
    seen: set[str] = set()
    for t in tests:
        if t.title() in seen:
            raise ValueError(f"two tests are named '{t.title()}'; give one of them a 'name'")
        seen.add(t.title())
    return tests


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


Tests = Annotated[tuple[Annotated[TestUnion, BeforeValidator(normalize)], ...], BeforeValidator(_listed),
                  AfterValidator(_distinct)]


def _whole_rows_only(tests: tuple[TestSpec, ...]) -> tuple[TestSpec, ...]:
    for t in tests:
        if t.severity in ("drop", "quarantine"):
            raise ValueError(f"test '{t.title()}': a change stream is applied whole, so severity '{t.severity}' "
                             f"(which would skip some changes and leave the table out of step with its source) is "
                             f"not available on a cdc table; use 'warn' or 'fail'")
    return tests


ChangeTests = Annotated[Tests, AfterValidator(_whole_rows_only)]
