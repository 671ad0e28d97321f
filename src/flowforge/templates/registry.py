"""Find, describe and instantiate template bundles shipped in this package."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flowforge.errors import ConfigError, NotFoundError

_ROOT = Path(__file__).parent


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    category: str
    industry: str
    description: str
    parameters: dict[str, dict[str, Any]]
    folder: Path

    @property
    def readme(self) -> str:
        path = self.folder / "README.md"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def defaults(self) -> dict[str, str]:
        return {k: str(v.get("default", "")) for k, v in self.parameters.items()}

    def render(self, params: dict[str, str] | None = None) -> str:
        """The workflow YAML with parameters filled in (unknown parameters are errors)."""
        values = self.defaults()
        unknown = set(params or {}) - set(values)
        if unknown:
            raise ConfigError(f"Template '{self.name}' has no parameter(s) {', '.join(sorted(unknown))}.",
                              hint=f"Parameters: {', '.join(sorted(values))}.")
        values.update(params or {})
        text = (self.folder / "workflow.yml").read_text(encoding="utf-8")
        return string.Template(text).substitute(values)


def list_templates(industry: str | None = None, category: str | None = None) -> list[Template]:
    out = []
    for meta in sorted(_ROOT.glob("*/template.yml")):
        data = yaml.safe_load(meta.read_text(encoding="utf-8"))
        tpl = Template(name=data["name"], title=data["title"], category=data["category"],
                       industry=data["industry"], description=data["description"].strip(),
                       parameters=data.get("parameters", {}), folder=meta.parent)
        if (industry is None or tpl.industry == industry) and (category is None or tpl.category == category):
            out.append(tpl)
    return out


def get_template(name: str) -> Template:
    for tpl in list_templates():
        if tpl.name == name:
            return tpl
    known = ", ".join(t.name for t in list_templates())
    raise NotFoundError(f"No template named '{name}' (available: {known}).")
