"""``flowforge lineage TABLE.COLUMN``: where a column comes from and where it goes, across workflows."""


from typing import Any

from flowforge.cli.common import _context


def column_lineage(target: str, *, indirect: bool = False, as_json: bool = False) -> None:
    from flowforge.cli import output

    table, column = target.rsplit(".", 1)
    with _context() as ctx:
        found = ctx.column_lineage.columns(table, column, indirect=indirect)
    if as_json:
        import json

        output.console.print_json(json.dumps(found))
        return
    where = f"  (workflow {found['workflow']})" if found["workflow"] else ""
    output.plain(f"{found['table']}.{found['column']}{where}")
    for title, arrow, hops in (("Upstream", "←", found["upstream"]), ("Downstream", "→", found["downstream"])):
        output.plain(f"{title}:")
        if not hops:
            output.plain("  (none)")
        for hop in hops:
            output.plain("  " * hop["depth"] + f"{arrow} {_hop(hop)}")
    if indirect:
        output.plain("Shaped by (keys, joins, filters):")
        for e in found.get("indirect", []) or []:
            output.plain(f"  {e['source']['table']}.{e['source']['column']}  [{e['subtype']}] "
                         f"of {e['target']['table']}")


def _hop(hop: dict[str, Any]) -> str:
    how = hop["subtype"] + (f": {hop['description']}" if hop["description"] else "")
    if len(how) > 100:
        how = how[:97] + "..."
    kind = f", {hop['kind']}" if hop["kind"] != "table" else ""
    return f"{hop['table']}.{hop['column']}  [{how}]  ({hop['job']}{kind})"
