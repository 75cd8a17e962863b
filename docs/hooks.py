"""MkDocs hooks: the reference pages that must never go stale are generated at build time.

A page holds a marker, `<!-- generated: WHAT -->`, and the build replaces it with text made
from the code itself: `cli` from the argparse parser (`sweeps.cli.build_parser`), `spec:common`
and `spec:<trainable>` from the pydantic models of the spec (`sweeps.spec`, each trainable's
section). `BENCHMARKS.md` at the repository's top is served as `reference/benchmarks.md`, so
the site and the file are one text. A marker that names nothing known fails the build.
"""

from __future__ import annotations

import argparse
import os
import re
import typing
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- generated: ([a-z:-]+) -->")
BENCHMARKS = "reference/benchmarks.md"


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, BENCHMARKS,
                                content=(REPO / "BENCHMARKS.md").read_text()))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    return MARKER.sub(lambda m: generate(m.group(1), page.file.src_uri), markdown)


def generate(what: str, where: str) -> str:
    if what == "cli":
        return cli_reference()
    kind, _, name = what.partition(":")
    if kind == "spec":
        return spec_reference(name)
    raise PluginError(f"{where}: unknown generated section {what!r}")


# --- the command line -------------------------------------------------------------------

def cli_reference() -> str:
    from sweeps.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps usage lines at the terminal's width
    return "\n".join(_commands(build_parser(), "sweeps"))


def _commands(parser: argparse.ArgumentParser, path: str) -> list[str]:
    lines: list[str] = []
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:  # a command; a group's page is its commands'
        lines += _command(parser, path)
    for action in subparsers:
        for name, sub in action.choices.items():
            lines += _commands(sub, f"{path} {name}")
    return lines


def _command(parser: argparse.ArgumentParser, path: str) -> list[str]:
    usage = "\n".join(line.removeprefix("usage: ").removeprefix(" " * len("usage: "))
                      for line in parser.format_usage().strip().splitlines())
    lines = [f"## `{path}`", ""]
    if parser.description:
        lines += [_escape(parser.description), ""]
    lines += ["```text", usage, "```", ""]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        lines.append(f"- `{_flag(action)}`: {_escape(_help(action))}")
    return lines + [""]


def _flag(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    flag = max(action.option_strings, key=len)
    if action.nargs == 0:
        return flag
    if action.choices:
        return f"{flag} {'|'.join(map(str, action.choices))}"
    return f"{flag} {action.metavar or action.dest.upper()}"


def _help(action: argparse.Action) -> str:
    text = (action.help or "").replace("%%", "%")
    extra = []
    if action.option_strings and action.required:
        extra.append("required")
    shown = action.default not in (None, False, [], argparse.SUPPRESS)
    if shown and "default" not in text:  # where the help names the default, it says it
        extra.append(f"default `{action.default}`")
    if isinstance(action, argparse._AppendAction):
        extra.append("repeatable")
    return "; ".join([text] * bool(text) + extra) or "(no description)"


# --- the spec ----------------------------------------------------------------------------

def spec_reference(name: str) -> str:
    from sweeps.spec import SweepSpec
    from trainables import catalog

    if name == "common":
        model, prefix = SweepSpec, ""
    elif name in catalog.names():
        model, prefix = catalog.get(name).section, f"{name}."
    else:
        raise PluginError(f"spec:{name}: no such trainable (known: {catalog.names()})")
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    rows += [f"| `{f}` | {t} | {d} | {m} |" for f, t, d, m in _fields(model, prefix)]
    return "\n".join(rows) + "\n"


def _fields(model: type[BaseModel], prefix: str):
    for name, info in model.model_fields.items():
        nested = _model_in(info.annotation)
        if info.is_required():
            default = "required"
        elif info.default_factory is not None:
            default = f"`{_value(info.default_factory())}`"
        else:
            default = f"`{_value(info.default)}`"
        if nested is not None and nested is info.annotation:
            default = "see below" if default != "required" else default
        meaning = _escape(info.description or _summary(nested))
        yield prefix + name, _escape(_type(info.annotation)), default, meaning
        if nested is not None:
            yield from _fields(nested, f"{prefix}{name}.")


def _summary(model: type[BaseModel] | None) -> str:
    """A section's docstring, its first paragraph, as the meaning of a field holding it."""
    doc = (model.__doc__ or "") if model is not None else ""
    return " ".join(doc.split("\n\n")[0].split())


def _model_in(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((a for a in typing.get_args(annotation)
                 if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _type(annotation) -> str:
    if annotation is type(None):
        return "null"
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(f"`{a}`" for a in typing.get_args(annotation))
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if args and origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type(a) for a in args)
    if args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(map(_type, args))}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _value(value) -> str:
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return str(value.model_dump(mode="json"))
    if value is None:
        return "null"
    return str(value)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
