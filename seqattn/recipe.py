"""Recipes: safe YAML -> overrides -> a validated tree of component specs and configs.

A component is written ``{name: NAME, key: value, ...}`` (or just ``NAME``). ``NAME`` is looked up
in the registry for the kind the parent expects; the other keys must be keyword-only parameters
of the factory, checked against its type annotations. Positional parameters of a factory are
supplied at build time by whoever builds it (a vocabulary size, a model width), never by the
recipe. Defaults live only in the factory signatures. Every error names the key path.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Union

import yaml

from seqattn.config import SearchConfig, TrainConfig
from seqattn.errors import SeqattnError
from seqattn.spec import ComponentSpec, Spec, to_plain


# ---------------------------------------------------------------------------------------------
# Reading and overriding


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise SeqattnError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SeqattnError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise SeqattnError(f"{path}: a recipe must be a mapping at the top level")
    return data


def apply_override(data: dict, assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to nested ``data`` in place."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise SeqattnError(f"--set {assignment!r}: expected KEY.PATH=VALUE")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, str):  # component shorthand "scaled_dot" -> {name: scaled_dot}
            child = node[part] = {"name": child}
        elif child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise SeqattnError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = child
    node[parts[-1]] = value


# ---------------------------------------------------------------------------------------------
# Validation

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is Annotated:
        return f"a {typing.get_args(tp)[1].kind} (a name or a mapping with 'name')"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


class Validator:
    """Checks raw recipe data against annotations; ``check_files`` controls data-path checks."""

    def __init__(self, registry, check_files: bool = True) -> None:
        self.registry = registry
        self.check_files = check_files

    def value(self, raw: Any, tp: Any, path: str) -> Any:
        if tp is Any or tp is inspect.Parameter.empty:
            return raw
        origin = typing.get_origin(tp)
        if origin is Annotated:
            return self.component(raw, typing.get_args(tp)[1].kind, path)
        if origin in (Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            if raw is None and len(options) < len(typing.get_args(tp)):
                return None
            if len(options) == 1:  # Optional[X]: X's own, precise error
                return self.value(raw, options[0], path)
            for option in options:
                try:
                    return self.value(raw, option, path)
                except SeqattnError:
                    continue
            self._fail(path, tp, raw)
        if origin is Literal:
            if raw in typing.get_args(tp):
                return raw
            self._fail(path, tp, raw)
        if origin in (list, tuple):
            if not isinstance(raw, list):
                self._fail(path, tp, raw)
            item = (typing.get_args(tp) or (Any,))[0]
            out = [self.value(v, item, f"{path}[{i}]") for i, v in enumerate(raw)]
            return tuple(out) if origin is tuple else out
        if origin is dict:
            if not isinstance(raw, dict):
                self._fail(path, tp, raw)
            vt = typing.get_args(tp)[1] if typing.get_args(tp) else Any
            return {str(k): self.value(v, vt, f"{path}.{k}") for k, v in raw.items()}
        if dataclasses.is_dataclass(tp):
            return self.config(raw, tp, path)
        return self._scalar(raw, tp, path)

    def _scalar(self, raw: Any, tp: Any, path: str) -> Any:
        """``raw`` checked against a plain ``bool``/``int``/``float``/``str``/``None`` annotation."""
        if tp is bool:
            if isinstance(raw, bool):
                return raw
        elif tp is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
        elif tp is float:
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                return float(raw)
            if isinstance(raw, str) and _FLOAT.fullmatch(raw.strip()):  # PyYAML reads "1e-3" as a string
                return float(raw)
        elif tp is str:
            if isinstance(raw, str):
                return raw
        elif tp is type(None):
            if raw is None:
                return None
        else:
            raise SeqattnError(f"{path}: unsupported annotation {tp!r} in a factory signature")
        self._fail(path, tp, raw)

    @staticmethod
    def _fail(path: str, tp: Any, raw: Any):
        shown = repr(raw) if not isinstance(raw, (dict, list)) else type(raw).__name__
        raise SeqattnError(f"{path}: expected {_describe(tp)}, got {shown}")

    def component(self, raw: Any, kind: str, path: str) -> ComponentSpec:
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict):
            raise SeqattnError(f"{path}: expected a {kind} (a name or a mapping with 'name'), got {raw!r}")
        if "name" not in raw:
            raise SeqattnError(f"{path}.name: missing required value (the {kind} to use)")
        name = raw["name"]
        try:
            entry = self.registry.get(kind, str(name))
        except SeqattnError as exc:
            raise SeqattnError(f"{path}.name: {exc}") from None
        kwargs = self.keywords({k: v for k, v in raw.items() if k != "name"}, entry.factory, path)
        return ComponentSpec(kind, str(name), entry.factory, kwargs, path)

    def config(self, raw: Any, cls: type, path: str) -> Any:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise SeqattnError(f"{path}: expected a mapping, got {raw!r}")
        obj = cls(**self.keywords(raw, cls, path))
        check = getattr(obj, "check", None)
        if check is not None:
            check(path, self.check_files)
        return obj

    def keywords(self, raw: dict, factory: Callable, path: str) -> dict:
        """Validate ``raw`` against the keyword-only parameters of ``factory``; fill defaults."""
        params, hints = _keyword_params(factory)
        for key in raw:
            if key not in params:
                close = difflib.get_close_matches(str(key), list(params), n=1, cutoff=0.6)
                known = ", ".join(params) or "none"
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SeqattnError(f"{path}.{key}: unknown key{hint}; known keys: {known}")
        out = {}
        for name, param in params.items():
            sub = f"{path}.{name}" if path else name
            if name in raw:
                out[name] = self.value(raw[name], hints.get(name, Any), sub)
            elif param.default is inspect.Parameter.empty:
                raise SeqattnError(f"{sub}: missing required value ({_describe(hints.get(name, Any))})")
            elif isinstance(param.default, (str, dict)) and typing.get_origin(hints.get(name)) is Annotated:
                out[name] = self.value(param.default, hints[name], sub)  # a default component
            else:
                out[name] = param.default
        return out


def _keyword_params(factory: Callable) -> tuple[dict, dict]:
    if dataclasses.is_dataclass(factory):
        target, sig = factory, inspect.signature(factory)
    else:
        target = factory.__init__ if inspect.isclass(factory) else factory
        sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        raise SeqattnError(f"cannot read the annotations of {factory!r}: {exc}") from None
    params = {n: p for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return params, hints


# ---------------------------------------------------------------------------------------------
# The top level


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: the task and model components, and the core's configs."""

    task: ComponentSpec
    model: ComponentSpec
    train: Any
    search: Any

    def resolved(self) -> dict:
        """The recipe with every default filled in, as plain data."""
        return {
            "task": self.task.to_dict(),
            "model": self.model.to_dict(),
            "train": to_plain(self.train),
            "search": to_plain(self.search),
        }


def _top_level(
    *,
    task: Spec("task"),
    model: Spec("model"),
    train: TrainConfig = None,
    search: SearchConfig = None,
) -> None:
    """The recipe's top-level keys (a signature, so the same validator checks them)."""


def validate(data: dict, registry, check_files: bool = True) -> Recipe:
    v = Validator(registry, check_files)
    kw = v.keywords(data, _top_level, "")
    train = kw["train"] if kw["train"] is not None else v.config({}, TrainConfig, "train")
    search = kw["search"] if kw["search"] is not None else v.config({}, SearchConfig, "search")
    return Recipe(kw["task"], kw["model"], train, search)


def load(path: str | Path, overrides: list[str] | tuple = (), registry=None, check_files: bool = True) -> Recipe:
    """Read, override and validate a recipe file. Raises :class:`SeqattnError` on bad input."""
    data = read_yaml(path)
    for assignment in overrides:
        apply_override(data, assignment)
    if registry is None:  # loading plugins imports torch: only once the file is known to be good
        from seqattn.plugins import get_registry

        registry = get_registry()
    return validate(data, registry, check_files)
