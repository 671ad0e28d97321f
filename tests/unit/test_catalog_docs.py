"""SQL type names for Arrow types (as the catalog shows them) and table locations relative to the
lakehouse root (never a server path)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from flowforge.core.catalog_docs import check_text, relative_location, sql_type
from flowforge.errors import ConfigError


@pytest.mark.parametrize(("dtype", "name"), [
    (pa.int64(), "BIGINT"), (pa.int32(), "INTEGER"), (pa.int16(), "SMALLINT"), (pa.int8(), "TINYINT"),
    (pa.float64(), "DOUBLE"), (pa.float32(), "REAL"), (pa.bool_(), "BOOLEAN"),
    (pa.decimal128(15, 2), "DECIMAL(15,2)"), (pa.decimal128(38, 0), "DECIMAL(38,0)"),
    (pa.string(), "VARCHAR"), (pa.large_string(), "VARCHAR"), (pa.binary(), "BLOB"),
    (pa.date32(), "DATE"), (pa.timestamp("us"), "TIMESTAMP"), (pa.timestamp("us", "UTC"), "TIMESTAMP WITH TIME ZONE"),
    (pa.time64("us"), "TIME"), (pa.list_(pa.string()), "VARCHAR[]"),
    (pa.struct([("a", pa.int32()), ("b", pa.string())]), "STRUCT(a INTEGER, b VARCHAR)"),
    (pa.map_(pa.string(), pa.int64()), "MAP(VARCHAR, BIGINT)"),
    (pa.dictionary(pa.int32(), pa.string()), "VARCHAR"),
])
def test_sql_type_names(dtype: pa.DataType, name: str) -> None:
    assert sql_type(dtype) == name


def test_sql_type_names_of_the_schema_deltalake_returns() -> None:
    """deltalake hands back arro3 types, whose str() is 'arro3.core.DataType<...>'."""
    import tempfile

    from deltalake import DeltaTable, write_deltalake

    with tempfile.TemporaryDirectory() as root:
        write_deltalake(root, pa.table({"id": pa.array([1], pa.int64()),
                                        "amount": pa.array([1], pa.decimal128(15, 2)),
                                        "at": pa.array([0], pa.timestamp("us", "UTC"))}))
        fields = list(DeltaTable(root).schema().to_arrow())
        assert "arro3" in str(fields[0].type)
        assert [sql_type(f.type) for f in fields] == ["BIGINT", "DECIMAL(15,2)", "TIMESTAMP WITH TIME ZONE"]


def test_locations_are_relative_to_the_lakehouse_root() -> None:
    assert relative_location("/srv/p/lakehouse", "/srv/p/lakehouse/silver/accounts") == "silver/accounts"
    assert relative_location("/srv/p/lakehouse/", "/srv/p/lakehouse/gold/c360", "/srv/p") == "gold/c360"
    assert relative_location("s3://lake/prod", "s3://lake/prod/bronze/x") == "bronze/x"
    assert relative_location("/srv/p/lakehouse", "s3://other/archive/x") == "s3://other/archive/x"
    assert relative_location("/srv/p/lakehouse", "/srv/p/elsewhere/x", "/srv/p") == "elsewhere/x"
    outside = relative_location("/srv/p/lakehouse", "/mnt/secret/place/tables/x", "/srv/p")
    assert outside == ".../tables/x" and "/mnt" not in outside


def test_descriptions_are_plain_bounded_text() -> None:
    assert check_text("  one row per account \n", "description") == "one row per account"
    with pytest.raises(ConfigError):
        check_text("x" * 5000, "description")
    with pytest.raises(ConfigError):
        check_text("bell\x07", "description")
