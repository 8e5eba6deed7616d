"""Command-line options of ``jupyter workbench ...`` checked before traitlets reads them.

traitlets takes any ``--word`` for a setting, so a mistyped option surfaces as argparse's
"expected one argument" with a usage dump and exit code 2, or as a warning while the command
runs anyway. Here an option the command does not have, a ``--Class.trait`` setting no class
of the command has, or an option left without its value, is one line naming it (and the
command's options, or the closest setting), and exit code 1 (a usage error).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Generator, Iterable
from difflib import get_close_matches
from typing import Any, NoReturn

from jupyter_core.application import JupyterApp
from traitlets.config.application import Application
from traitlets.config.configurable import Configurable
from traitlets.config.loader import KVArgParseConfigLoader, _KVArgParser
from traitlets.utils.importstring import import_item
from traitlets.utils.text import wrap_paragraphs

ALWAYS = frozenset({"-h", "--help", "--help-all", "--version", "-V"})  # traitlets' own
SETTING = re.compile(r"^--?[A-Za-z]\w*(\.\w+)+$")  # --Class.trait, any class's setting
NUMBER = re.compile(r"^-\d+(\.\d*)?$|^-\.\d+$")  # a value, for argparse too


def _keys(options: dict[Any, Any]) -> list[str]:
    """The names of aliases or flags (a key may be a tuple of names)."""
    return [key for keys in options for key in (keys if isinstance(keys, tuple) else (keys,))]


def _forms(key: str) -> tuple[str, ...]:
    """How an option is spelled: ``-m`` and ``--m`` for one letter, else ``--name``."""
    return (f"-{key}", f"--{key}") if len(key) == 1 else (f"--{key}",)


def _listed(flags: dict[Any, Any], aliases: dict[Any, Any]) -> str:
    """The command's options, each spelled once: ``--json, --url, -m``."""
    return ", ".join(dict.fromkeys(_forms(key)[0] for key in _keys(flags) + _keys(aliases)))


def _targets(command: type[Configurable]) -> set[str]:
    """The traits the options (aliases and flags) of ``command`` set on it or its bases."""
    names = {cls.__name__ for cls in command.__mro__}
    aliases: dict[Any, Any] = getattr(command, "aliases", None) or {}
    flags: dict[Any, Any] = getattr(command, "flags", None) or {}
    found: set[str] = set()
    for target in aliases.values():
        cls, _, trait = (target[0] if isinstance(target, tuple) else target).partition(".")
        found |= {trait} if cls in names else set()
    for config, _help in flags.values():
        found |= {t for cls, traits in dict(config).items() if cls in names for t in traits}
    return found


def reads(command: type[Configurable]) -> set[str]:
    """The config traits ``command`` reads: those of the framework (traitlets, jupyter_core),
    its own, and of those inherited from a base command, only the ones its options set. A base
    command's trait whose option a subcommand does not take (``gc`` has no ``--as``) is one that
    subcommand does not read: ``--GcCommand.user`` would be accepted and ignored."""
    options = _targets(command)
    kept: set[str] = set()
    for trait in command.class_trait_names(config=True):
        owner = next(cls for cls in command.__mro__ if trait in vars(cls))
        inherited = owner is not command and issubclass(owner, CommandApp)
        if not inherited or trait in options:
            kept.add(trait)
    return kept


def settings_of(
    classes: Iterable[type[Configurable]], command: type[Configurable] | None = None
) -> dict[str, set[str]]:
    """The ``--Class.trait`` settings a command reads: each class's name and config traits;
    of ``command`` and its bases (a setting of a base applies to the command), only the
    traits ``command`` reads (:func:`reads`)."""
    read = reads(command) if command is not None else set()
    settings = {}
    for cls in classes:
        traits = set(cls.class_trait_names(config=True))
        if command is not None and issubclass(command, cls):
            traits &= read
        settings[cls.__name__] = traits
    return settings


def command_settings(command: type[Application]) -> dict[str, set[str]]:
    """The ``--Class.trait`` settings the command ``command`` reads: of its bases, itself and
    its ``classes`` (as traitlets' loader gets them)."""
    bases = [cls for cls in reversed(command.__mro__) if issubclass(cls, Configurable)]
    return settings_of([*bases, *command.classes], command)


def _unknown_setting(name: str, settings: dict[str, set[str]]) -> str | None:
    """Why ``--Class.trait`` is no setting of the command (naming the closest), or ``None``."""
    cls, _, trait = name.lstrip("-").partition(".")
    if trait in settings.get(cls, ()):
        return None
    if cls in settings:  # a known class: the closest of its own traits
        close = [f"{cls}.{t}" for t in get_close_matches(trait, sorted(settings[cls]), n=1)]
    else:
        close = get_close_matches(
            f"{cls}.{trait}", sorted(f"{c}.{t}" for c, ts in settings.items() for t in ts), n=1
        )
    hint = f" (did you mean '--{close[0]}'?)" if close else ""
    return f"unknown setting '{name}'{hint}"


def option_problem(
    args: list[str],
    aliases: dict[Any, Any],
    flags: dict[Any, Any],
    settings: dict[str, set[str]] | None = None,
    elsewhere: Callable[[str], str | None] = lambda _name: None,
    later: Callable[[str], str | None] = lambda _name: None,
) -> str | None:
    """What is wrong with the options in ``args`` (up to ``--``), or ``None``; ``settings``
    (:func:`settings_of`) are the ``--Class.trait`` names the command reads (``None``: any);
    ``elsewhere`` names the other commands that have an option this one lacks; ``later`` the
    subcommand in ``args`` that reads a setting given before it."""
    switches = {form for key in _keys(flags) for form in _forms(key)}
    listed = f"options: {_listed(flags, aliases)}"
    named = {form for key in _keys(aliases) for form in _forms(key)}
    valued = named - switches  # a flag that is also an alias takes a value or none
    for index, arg in enumerate(args):
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-" or NUMBER.match(arg):
            continue
        name, has_value = arg.split("=", 1)[0], "=" in arg
        if name in switches and has_value and name not in named:
            return f"'{name}' takes no value"
        if name in switches or name in ALWAYS:
            continue
        if name not in valued and not SETTING.match(name):
            where = elsewhere(name)
            if where:
                return f"'{name}' is an option of {where}, not of this command ({listed})"
            return f"unknown option '{name}' ({listed})"
        if name not in valued and settings is not None:
            unknown = _unknown_setting(name, settings)
            if unknown is not None:
                word = later(name)
                if word:
                    return f"'{name}' is a setting of '{word}': give it after '{word}'"
                return unknown
        following = args[index + 1] if index + 1 < len(args) else None
        if not has_value and (
            following is None
            or following == "--"
            or (following.startswith("-") and following != "-" and not NUMBER.match(following))
        ):
            return f"'{name}' needs a value ({name}=VALUE)"
    return None


def command_line(app: Application) -> str:
    """The command as typed: ``jupyter workbench datasets get``."""
    words: list[str] = []
    while isinstance(app.parent, Application):
        parent = app.parent
        words[:0] = [name for name, (cls, _) in parent.subcommands.items() if cls is type(app)]
        app = parent
    return " ".join([app.name.replace("-", " ", 1), *words])


def takes(cls: type[Application], name: str) -> bool:
    """Whether the command ``cls`` has the option ``name`` (``--json``, ``-m``)."""
    keys = _keys(cls.flags) + _keys(cls.aliases)
    return any(name in _forms(key) for key in keys)


def sibling_commands(app: Application, name: str) -> str | None:
    """The other subcommands of ``app``'s parent that have the option ``name``, quoted: where
    an option given to the wrong subcommand belongs (``'gc'``); ``None`` if none has it."""
    parent = app.parent
    if not isinstance(parent, Application):
        return None
    found = [
        f"'{word}'"
        for word, (cls, _) in parent.subcommands.items()
        if isinstance(cls, type) and cls is not type(app) and takes(cls, name)
    ]
    return ", ".join(found) or None


def subcommand_reading(subcommands: dict[str, Any], args: list[str], name: str) -> str | None:
    """The subcommand named in ``args`` whose command reads the setting ``name``
    (``--Class.trait``): a setting typed before its subcommand."""
    for index, word in enumerate(args):
        if word == "--":
            break
        entry = subcommands.get(word)
        cls = import_item(entry[0]) if entry and isinstance(entry[0], str) else (entry or [0])[0]
        if not (isinstance(cls, type) and issubclass(cls, Application)):
            continue
        if _unknown_setting(name, command_settings(cls)) is None:
            return word
        nested = cls.subcommands if isinstance(cls.subcommands, dict) else {}  # a leaf: a trait
        deeper = subcommand_reading(nested, args[index + 1 :], name)
        return f"{word} {deeper}" if deeper else None
    return None


class _Parser(_KVArgParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit code 1, not argparse's usage dump and exit code 2."""
        print(f"error: {self.prog}: {message}; see --help", file=sys.stderr)
        sys.exit(1)


class _Loader(KVArgParseConfigLoader):
    parser_class = _Parser
    elsewhere: Callable[[str], str | None] = staticmethod(lambda _name: None)
    command: type[Application] | None = None  # the command whose options these are

    def _parse_args(self, args: Any) -> Any:
        args = list(args)
        problem = option_problem(
            args, self.aliases, self.flags, settings_of(self.classes or [], self.command),
            self.elsewhere,
            lambda name: subcommand_reading(self.subcommands or {}, args, name),
        )  # fmt: skip
        if problem is not None:
            self.parser.error(problem)
        return super()._parse_args(args)


class CommandApp(JupyterApp):
    """Base of the ``jupyter workbench`` commands: options checked before traitlets reads them."""

    def _create_loader(
        self, argv: Any, aliases: Any, flags: Any, classes: Any
    ) -> KVArgParseConfigLoader:
        loader = _Loader(
            argv, aliases, flags, classes=classes, log=self.log, subcommands=self.subcommands,
            prog=command_line(self),
        )  # fmt: skip
        loader.elsewhere = lambda name: sibling_commands(self, name)
        loader.command = type(self)
        return loader

    def emit_help(self, classes: bool = False) -> Generator[str, None, None]:
        """traitlets' help; with ``--help-all``, each class's settings are only those this
        command reads (a base command's setting it refuses is not listed)."""
        if not classes:
            yield from super().emit_help(classes)
            return
        read = command_settings(type(self))
        yield from self.emit_description()
        yield from self.emit_subcommands_help()
        yield from self.emit_options_help()
        yield "Class options"
        yield "============="
        for paragraph in wrap_paragraphs(self.keyvalue_description):
            yield paragraph
            yield ""
        for cls in self._classes_with_config_traits():
            traits = cls.class_traits(config=True)
            kept = sorted(name for name in traits if name in read.get(cls.__name__, traits))
            if not kept:
                continue
            title = f"{cls.__name__}({', '.join(p.__name__ for p in cls.__bases__)}) options"
            yield title
            yield "-" * len(title)
            for name in kept:
                yield cls.class_get_trait_help(traits[name])
            yield ""
        yield from self.emit_examples()
        yield from self.emit_help_epilogue(classes)
