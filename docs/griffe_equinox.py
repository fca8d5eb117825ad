"""A Griffe extension (mkdocs.yml, mkdocstrings' `extensions`): the signatures of
Equinox modules.

An `equinox.Module` without an `__init__` of its own is a dataclass: its constructor
takes its fields. Griffe builds such constructors for `@dataclass` classes only, so
without this the API pages would show `spikeode.DirectAdjoint` or
`spikeode.SpikeTrain` without their arguments. Here each such class gets an `__init__`
with its fields, in the order of the dataclass (base classes first), leaving out
`ClassVar`s, `AbstractVar`s and `field(init=False)`, with the defaults of the class
body or of `eqx.field(default=..., default_factory=...)`. Abstract classes (named
`Abstract...`, as Equinox requires) get none: they are not constructed.
"""

from __future__ import annotations

import griffe

MODULE_BASE = "equinox.Module"
ABSTRACT = {"equinox.AbstractVar", "equinox.AbstractClassVar"}
FIELD = {"equinox.field", "dataclasses.field"}


def _canonical(expr) -> str:
    if isinstance(expr, griffe.ExprSubscript):
        expr = expr.left
    return getattr(expr, "canonical_path", str(expr))


def _field_arguments(attribute: griffe.Attribute) -> dict | None:
    value = attribute.value
    if isinstance(value, griffe.ExprCall) and _canonical(value.function) in FIELD:
        return {
            argument.name: argument.value
            for argument in value.arguments
            if isinstance(argument, griffe.ExprKeyword)
        }
    return None


def _fields(cls: griffe.Class) -> list[griffe.Parameter]:
    parameters = []
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute or member.annotation is None:
            continue
        if "property" in member.labels or (
            "class-attribute" in member.labels and "instance-attribute" not in member.labels
        ):
            continue  # a property or a ClassVar
        if _canonical(member.annotation) in ABSTRACT:
            continue
        arguments = _field_arguments(member)
        if arguments is None:
            default = member.value
        elif str(arguments.get("init")) == "False":
            continue
        elif "default_factory" in arguments:
            default = griffe.ExprCall(function=arguments["default_factory"], arguments=[])
        else:
            default = arguments.get("default")
        parameters.append(
            griffe.Parameter(
                member.name,
                annotation=member.annotation,
                kind=griffe.ParameterKind.positional_or_keyword,
                default=default,
                docstring=member.docstring,
            )
        )
    return parameters


def _explicit_init(cls: griffe.Class) -> bool:
    init = cls.members.get("__init__")
    return init is not None and not init.is_alias and init.lineno != 0  # 0: synthetic


def _set_init(cls: griffe.Class) -> None:
    if "__init__" in cls.members or cls.name.lstrip("_").startswith("Abstract"):
        return  # abstract classes (Equinox's convention) are not constructed
    try:
        mro = cls.mro()
    except ValueError:
        return
    chain = [cls, *mro]
    if any(_explicit_init(klass) for klass in mro):
        return  # the constructor of a base class
    if not any(_canonical(base) == MODULE_BASE for klass in chain for base in klass.bases):
        return
    fields: dict[str, griffe.Parameter] = {}
    for klass in reversed(chain):
        for parameter in _fields(klass):
            fields[parameter.name] = parameter  # an override keeps the first position
    init = griffe.Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=cls,
        parameters=griffe.Parameters(
            griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword),
            *fields.values(),
        ),
        returns="None",
    )
    cls.set_member("__init__", init)


def _visit(obj, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if obj.is_class:
        _set_init(obj)
    for member in obj.members.values():
        if not member.is_alias and (member.is_module or member.is_class):
            _visit(member, seen)


class EquinoxModules(griffe.Extension):
    """Constructors for Equinox modules (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        _visit(pkg, set())
