#!/usr/bin/env python3
"""Write the "Inputs" section of every role README from the role's meta/argument_specs.yml.

Usage: scripts/role-readme.py [--check] [ROLE ...]

The section runs from the "## Inputs" heading to the next "## " heading and is replaced as a whole;
the rest of the README is the author's. With --check nothing is written: the roles whose README differs
from what generation gives are listed and the exit code is 1 (the test suite runs this).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"
MARK = "<!-- Generated from meta/argument_specs.yml by scripts/role-readme.py; edit the specs, not this section. -->"
_MARKUP = re.compile(r"\b([CIMOVE])\(([^()]*)\)")


def plain(text: str) -> str:
    """ansible-doc markup (C(), O(), V(), I(), M(), E()) as Markdown code spans."""
    return _MARKUP.sub(lambda m: f"`{m.group(2)}`" if m.group(1) != "I" else f"*{m.group(2)}*", text).strip()


def description(spec: dict) -> str:
    desc = spec.get("description", "")
    text = " ".join(desc) if isinstance(desc, list) else str(desc)
    text = plain(" ".join(text.split()))
    if spec.get("choices"):
        text += " One of: " + ", ".join(f"`{c}`" for c in spec["choices"]) + "."
    if spec.get("no_log"):
        text += " Secret (no_log)."
    return text.replace("|", "\\|")


def default(spec: dict) -> str:
    if spec.get("required"):
        return "required"
    if "default" not in spec:
        return "none"
    value = spec["default"]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return '`""`'
    if isinstance(value, (list, dict)):
        return "`" + yaml.safe_dump(value, default_flow_style=True, width=10_000).strip() + "`"
    return f"`{value}`"


def kind(spec: dict) -> str:
    t = spec.get("type", "str")
    return f"{t} of {spec['elements']}" if spec.get("elements") else t


def table(options: dict) -> list[str]:
    lines = ["| name | type | default | description |", "|---|---|---|---|"]
    for name, spec in options.items():
        lines.append(f"| `{name}` | {kind(spec)} | {default(spec)} | {description(spec)} |")
    return lines


def inputs_section(specs: dict) -> str:
    entry_points = specs["argument_specs"]
    main = entry_points.get("main", {}).get("options", {})
    lines = ["## Inputs", "", MARK, ""]
    if main:
        lines += [*table(main), ""]
    others = [name for name in entry_points if name != "main"]
    if others:
        lines += [
            "### Entry points",
            "",
            "Each runs on its own with `tasks_from` and has its own argument spec"
            + ".",
            "",
        ]
    for name in others:
        entry = entry_points[name]
        options = entry.get("options", {})
        lines += [f"#### `{name}`", "", plain(entry.get("short_description", "")) + ".", ""]
        same = [o for o in options if main.get(o) == options[o]]
        own = {o: s for o, s in options.items() if main.get(o) != s}
        if own:
            lines += [*table(own), ""]
        if same:
            lines += [("Also" if own else "Options") + " (as above): " + ", ".join(f"`{o}`" for o in same) + ".", ""]
        if not options:
            lines += ["No options.", ""]
    return "\n".join(lines).rstrip() + "\n"


def render(readme: str, specs: dict) -> str:
    section = inputs_section(specs)
    match = re.search(r"^## Inputs\n.*?(?=^## |\Z)", readme, re.M | re.S)
    if match:
        return readme[: match.start()] + section + "\n" + readme[match.end() :].lstrip("\n")
    return readme.rstrip("\n") + "\n\n" + section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a README differs")
    parser.add_argument("roles", nargs="*", help="role names (default: every role under roles/)")
    args = parser.parse_args(argv)
    names = args.roles or sorted(p.name for p in ROLES.iterdir() if (p / "meta" / "argument_specs.yml").is_file())
    stale = []
    for name in names:
        role = ROLES / name
        spec_file = role / "meta" / "argument_specs.yml"
        if not spec_file.is_file():
            print(f"role-readme: {name}: no meta/argument_specs.yml", file=sys.stderr)
            return 2
        readme_file = role / "README.md"
        current = readme_file.read_text(encoding="utf-8") if readme_file.is_file() else f"# Role `{name}`\n"
        wanted = render(current, yaml.safe_load(spec_file.read_text(encoding="utf-8")))
        if wanted != current:
            stale.append(name)
            if not args.check:
                readme_file.write_text(wanted, encoding="utf-8")
    if args.check and stale:
        print("role-readme: README inputs differ from the argument specs: " + ", ".join(stale)
              + " (run scripts/role-readme.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
