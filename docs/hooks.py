"""MkDocs hooks (mkdocs.yml `hooks:`): checks that fail `mkdocs build --strict`, and
links from the guide to the API reference.

Checks (each problem is logged as a warning, which fails the build in strict mode):

- Every object named by a `::: identifier` entry has a docstring, and so does every
  public method or property defined in a documented class, unless it overrides a
  documented method of a base class (mkdocstrings would silently leave it out).
- Every public name of the modules in `PUBLIC_MODULES` is documented on some page,
  under any of its import paths (`spikeode.LIF` covers `spikeode.neurons.LIF`).
- No docstring makes a control character: a `\\t`, `\\f`, `\\b`, `\\v`, `\\a`, `\\n` or
  `\\r` in a docstring that is not a raw string, as in `"$\\tau$"` (`r"$\\tau$"`).
- No page or docstring indents a nested list, or a second paragraph of a list item,
  by fewer than 4 spaces: GitHub nests those, Python-Markdown (this site) does not.

Links: the guide pages (outside api/) name objects in code spans, `` `spikeode.LIF` ``,
as the README does; each such name that a page documents becomes a link to it (a
module: to the page of its first documented name). Their figures link to the image
itself, to be seen at full size.
"""

from __future__ import annotations

import logging
import pathlib
import posixpath
import re

import griffe

log = logging.getLogger("mkdocs.hooks.api_docs")

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Modules whose public names must all be documented (`__all__` where they define it,
# else every name that does not start with an underscore and is defined in spikeode).
PUBLIC_MODULES = (
    "spikeode",
    "spikeode.neurons",
    "spikeode.nn",
    "spikeode.losses",
    "spikeode.data",
    "spikeode.train",
    "spikeode.smooth",
    "spikeode.baselines.surrogate",
    "spikeode.baselines.perturbation",
    "spikeode.nir",
)
NOT_API = {"spikeode.__version__"}
DIRECTIVE = re.compile(r"^::: *([\w.]+)", re.M)
# a backslash escape of a non-raw string literal that makes a control character: "\tau"
ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\[abfnrtv]")

FENCE = re.compile(r"^\s*(```|~~~)")
SHALLOW_ITEM = re.compile(r"^ {1,3}([-*+]|\d+\.) ")
SHALLOW_LINE = re.compile(r"^ {1,3}\S")

_state: dict = {}


def _shallow_indents(text: str) -> list[int]:
    """Lines (1-based) of `text` that Python-Markdown would not nest in a list item:
    a list item indented by 1-3 spaces, or a line indented by 1-3 spaces after a
    blank line (a list item's next paragraph). Fenced code and display math are
    skipped."""
    lines, in_fence, in_math, previous_blank = [], False, False, False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
        elif not (in_fence or in_math) and (
            SHALLOW_ITEM.match(line) or (previous_blank and SHALLOW_LINE.match(line))
        ):
            lines.append(number)
        if not in_fence and line.count("$$") % 2:
            in_math = not in_math
        previous_blank = not line.strip()
    return lines


def _package() -> griffe.Module:
    if "package" not in _state:
        _state["package"] = griffe.load(
            "spikeode", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False
        )
    return _state["package"]


def _lookup(path: str):
    package = _package()
    obj = package if path == "spikeode" else package[path.removeprefix("spikeode.")]
    return obj.final_target if obj.is_alias else obj


def _docstring(obj) -> str:
    return obj.docstring.value.strip() if obj.docstring else ""


def _public_names(module_path: str) -> list[str]:
    module = _lookup(module_path)
    if module.exports is not None:
        names = [str(name) for name in module.exports]
    else:
        names = []
        for name, member in module.members.items():
            if name.startswith("_"):
                continue
            # a package's __init__ re-exports names; a plain module's imports are not API
            if member.is_alias and not (
                module.is_init_module and member.target_path.startswith("spikeode.")
            ):
                continue
            if not (member.final_target if member.is_alias else member).is_module:
                names.append(name)
    return [f"{module_path}.{name}" for name in names]


def on_pre_build(config) -> None:
    _state.clear()
    _state["documented"] = {}  # canonical path -> page


def on_files(files, config):
    # what the pages document: canonical path -> (page, identifier of its anchor)
    index = {}
    for file in files.documentation_pages():
        for identifier in DIRECTIVE.findall(pathlib.Path(file.abs_src_path).read_text()):
            try:
                obj = _lookup(identifier)
            except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue  # reported by on_page_markdown
            index.setdefault(obj.canonical_path, (file.src_uri, identifier))
            if obj.is_class:
                for name, member in obj.members.items():
                    if not name.startswith("_") and not member.is_alias and _docstring(member):
                        anchor = (file.src_uri, f"{identifier}.{name}")
                        index.setdefault(member.canonical_path, anchor)
    _state["index"] = index
    return files


CODE_NAME = re.compile(r"(?<![\[\w`])`(spikeode(?:\.\w+)+)`(?![\]\w`(])")


def _link_names(markdown: str, src_uri: str) -> str:
    """`` `spikeode.X` `` -> a link to X's documentation, outside code blocks and
    headings (see the module docstring)."""
    index = _state.get("index", {})

    def link(match):
        name = match.group(1)
        try:
            obj = _lookup(name)
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return match.group(0)
        if obj.canonical_path in index and not obj.is_module:
            return f"[`{name}`][{index[obj.canonical_path][1]}]"
        if obj.is_module:
            pages = [index[obj.canonical_path][0]] if obj.canonical_path in index else []
            for path in _public_names(obj.path):
                try:
                    target = _lookup(path).canonical_path
                except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                    continue
                if target in index:
                    pages.append(index[target][0])
            if pages:
                relative = posixpath.relpath(pages[0], posixpath.dirname(src_uri) or ".")
                return f"[`{name}`]({relative})"
        return match.group(0)

    out, in_fence = [], False
    for line in markdown.splitlines(keepends=True):
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and not line.startswith("#") and not line.startswith("    "):
            line = CODE_NAME.sub(link, line)
        out.append(line)
    return "".join(out)


# A figure alone on its line (the guide's figures are wide: a click opens them at full
# size).
FIGURE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)[ \t]*$", re.M)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if not page.file.src_uri.startswith("api/"):
        markdown = _link_names(markdown, page.file.src_uri)
        markdown = FIGURE.sub(r"[![\1](\2)](\2)", markdown)
    for number in _shallow_indents(markdown):
        log.warning(
            f"{page.file.src_path}:{number}: a nested list or a list item's paragraph "
            "indented by fewer than 4 spaces (Python-Markdown does not nest it)"
        )
    for identifier in DIRECTIVE.findall(markdown):
        where = f"{page.file.src_path}: `::: {identifier}`"
        try:
            obj = _lookup(identifier)
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError) as error:
            log.warning(f"{where}: not found ({error!r})")
            continue
        _state["documented"][obj.canonical_path] = page.file.src_path
        _check_docstrings(obj, where)
    return markdown


def _escapes(docstring: griffe.Docstring) -> bool:
    """Whether the docstring's literal (in the source: its value has the control
    characters, tabs already expanded) is not a raw string and has an escape that
    makes a control character."""
    if docstring.lineno is None or docstring.endlineno is None or docstring.parent is None:
        return False
    lines = docstring.parent.lines_collection[docstring.parent.filepath]
    literal = "\n".join(lines[docstring.lineno - 1 : docstring.endlineno]).lstrip()
    return literal[:1] not in ("r", "R") and bool(ESCAPE.search(literal))


def _check_text(obj, where: str) -> None:
    """The checks of one docstring's text (`obj` has a docstring)."""
    docstring = obj.docstring
    if _escapes(docstring):
        log.warning(
            f"{where}: {obj.filepath}:{docstring.lineno}: the docstring of "
            f"{obj.canonical_path} has a backslash escape such as \\t or \\f (a control "
            "character, as in \"$\\tau$\"): make it a raw string, r\"\"\"...\"\"\""
        )
    for number in _shallow_indents(docstring.value):
        log.warning(
            f"{where}: {obj.filepath}:{(docstring.lineno or 1) + number - 1}: a nested "
            "list or a list item's paragraph indented by fewer than 4 spaces in the "
            f"docstring of {obj.canonical_path} (Python-Markdown does not nest it)"
        )


def _check_docstrings(obj, where: str) -> None:
    if not _docstring(obj):
        log.warning(f"{where}: {obj.canonical_path} has no docstring")
    else:
        _check_text(obj, where)
    if not obj.is_class:
        return
    for name, member in obj.members.items():
        if name.startswith("_") or member.is_alias or not (member.is_function or
                                                            member.is_attribute):
            continue
        if member.is_attribute and "property" not in member.labels:
            continue  # fields: described in the class docstring
        if not _docstring(member):
            if not _inherits_docstring(obj, name):
                log.warning(f"{where}: the public member {member.canonical_path} has no "
                            "docstring (nor a base class's method that it overrides)")
        else:
            _check_text(member, where)


# Bases that define no public methods of their own.
SILENT_BASES = {"equinox.Module", "typing.Generic", "abc.ABC", "object"}


def _inherits_docstring(cls, name: str) -> bool:
    """Whether `cls.name` overrides a documented method of a base class. Methods of
    bases outside spikeode (e.g. `diffrax.AbstractSolver.step`) count as documented:
    they are not loaded, and their documentation is the other library's."""
    for klass in [cls, *cls.mro()]:
        if klass is not cls and name in klass.members and _docstring(klass.members[name]):
            return True
        for base in klass.bases:
            path = getattr(base, "canonical_path", str(base))
            if not path.startswith("spikeode.") and path not in SILENT_BASES:
                return True
    return False


def on_post_build(config) -> None:
    documented = _state.get("documented", {})
    for module_path in PUBLIC_MODULES:
        for path in _public_names(module_path):
            if path in NOT_API:
                continue
            try:
                canonical = _lookup(path).canonical_path
            except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                log.warning(f"public name {path} not found")
                continue
            if canonical not in documented:
                log.warning(f"public name {path} is on no API page (add `::: {path}`)")
