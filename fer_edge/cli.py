"""`fer-edge`: the entry point. The command line is read against the option table
(options.COMMANDS) before python-fire is given it: a misspelt command or option, a switch given a
value or an option without its value ends in one line (exit 2) before any work. Every option
then reaches fire as --name=TEXT, and fire hands that text to the option's own converter
(Opt.parse, by the option's kind: `--source 0` stays the text "0"). --help is written from the
same table. The commands themselves are in commands.py.
"""

from __future__ import annotations

import os
import re
import sys

from . import options
from .commands import CLI, STDIN as _STDIN, STDIN_ARG as _STDIN_ARG, Data, Models  # noqa: F401
from .errors import FerEdgeError

_GROUPS = (CLI, Data, Models)
_HELP = {"--help", "-h", "--helpfull"}


def _protect_stdin(argv: list[str]) -> list[str]:
    if not argv or argv[0] not in ("classify", "timeline"):
        return argv
    end = argv.index("--") if "--" in argv else len(argv)
    return [_STDIN_ARG if (a == _STDIN and i < end) else a for i, a in enumerate(argv)]


def _wants_help(argv: list[str]) -> bool:
    before = argv[: argv.index("--")] if "--" in argv else argv
    return bool(_HELP & set(before)) or before == ["help"]


def _did_you_mean(word: str, known, prefix: str = "") -> str:
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f": did you mean {prefix}{close[0]}?" if close else ""


# ------------------------------------------------------------------ the strict command line
# python-fire runs a command first and only then complains about an argument it could not use
# (a whole training on the wrong settings for a typo), in eight lines: every word and option is
# checked here, against the CLI's commands and the option table, before fire is given them.

def _walk(argv: list[str]) -> tuple[object, list[str]]:
    """(the CLI object the command line's leading words name, those words): a command's
    method, a group (`data`, `models`) or the CLI itself; FerEdgeError for a word that names
    no command of its group."""
    component, names = CLI(), []
    for token in argv:
        if not isinstance(component, _GROUPS) or token.startswith("-"):
            break
        known = [n for n in dir(component) if not n.startswith("_")]
        if token not in known:
            where = " ".join(names)
            raise FerEdgeError(
                f"unknown command {' '.join([*names, token])}"
                + (_did_you_mean(token, known, f"{where} " if where else "")
                   or f" (`fer-edge {where + ' ' if where else ''}--help` lists them: "
                      f"{', '.join(known)})"))
        component, names = getattr(component, token), names + [token]
    return component, names


def _command_of(argv: list[str]):
    """(the method a command line runs, its name, the index of its first argument), or None
    for a line that only asks for help (nothing, or a group without a command)."""
    component, names = _walk(argv)
    if isinstance(component, _GROUPS):
        return None
    return component, " ".join(names), len(names)


def _is_option(token: str) -> bool:
    """An option token, as python-fire sees one (--name, --name=value, -x); a negative number
    is a value."""
    return token.startswith("--") and len(token) > 2 or bool(re.match(r"-[a-zA-Z]", token))


def _unknown_option(token: str, command: str, table: dict) -> FerEdgeError:
    name = token.lstrip("-").partition("=")[0].replace("-", "_")
    flags = lambda names: ", ".join(options.flag(n) for n in names)  # noqa: E731
    if not token.startswith("--"):                    # -x: no short options (-h is help)
        could = [n for n in table if n.startswith(name)] if len(name) == 1 else \
            [name] if name in table else []
        return FerEdgeError(f"{token}: not an option of {command} ("
                            + (f"could be {flags(could)}" if could else
                               f"its options: {flags(table)}") + ")")
    if name.startswith("no") and name[2:].lstrip("_") in table:
        return FerEdgeError(f"unknown option {token.partition('=')[0]} for {command}: "
                            f"{options.flag(name[2:].lstrip('_'))} is not a switch")
    return FerEdgeError(f"unknown option {token.partition('=')[0]} for {command}"
                        + (_did_you_mean(name, [*table, "help"], "--").replace("_", "-")
                           or f" (its options: {flags(table)})"))


def check_command_line(argv: list[str]) -> list[str]:
    """The command line as fire is given it: each option as `--name=TEXT` (a switch's as
    `--name=true` or `--name=false`), the other words as they are; or FerEdgeError (exit 2) for
    an unknown command or option (with the closest known one), a value given to a switch, or an
    option without its value."""
    if _wants_help(argv):
        return argv
    component, names = _walk(argv)
    if isinstance(component, _GROUPS):
        if len(argv) > len(names):   # an option where a command is expected
            token = argv[len(names)]
            where = " ".join(["fer-edge", *names])
            hint = _did_you_mean(token, ("--help", "--version")) if not names else ""
            raise FerEdgeError(f"{token}: not an option of {where}" + (
                hint or f": give a command first (`{where} --help` lists them)"))
        return argv
    command = " ".join(names)
    table = options.spec(command)
    takes_paths = options.COMMANDS[command].paths is not None
    out, i = list(names), len(names)
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":                     # fire's own flags follow
            out += argv[i - 1:]
            break
        if not _is_option(token):             # a path (or a positional option value)
            out.append(token)
            continue
        if not token.startswith("--"):
            raise _unknown_option(token, command, table)
        key, eq, value = token[2:].partition("=")
        name = key.replace("-", "_")
        base = name[2:].lstrip("_")           # --no-tta, --notta: --tta off
        negated = name not in table and name.startswith("no") and base in table and \
            table[base].kind is bool
        if negated:
            name = base
        if name not in table:
            raise _unknown_option(token, command, table)
        opt, nxt = table[name], (argv[i] if i < len(argv) else None)
        if opt.kind is bool:
            off = options.flag("no_" + name)
            if eq and negated:
                raise FerEdgeError(f"{off} is a switch: it takes no value")
            if eq and value.lower() not in options.SWITCH_WORDS:
                raise FerEdgeError(f"{opt.flag} is a switch: give it alone (or {off}), not "
                                   f"={value}")
            if not eq and nxt is not None and nxt != "--" and not _is_option(nxt) and (
                    not takes_paths or nxt.lower() in options.SWITCH_WORDS):
                raise FerEdgeError(f"{opt.flag} is a switch: it takes no value (got {nxt!r}; "
                                   f"{off} turns it off)")
            out.append(f"--{name}={value if eq else 'false' if negated else 'true'}")
            continue
        if not eq:
            if nxt is None or nxt == "--" or _is_option(nxt):
                raise FerEdgeError(f"{opt.flag} needs a value")
            value = nxt
            i += 1
        out.append(f"--{name}={value}")
    _check_words(out[len(names):], command, table, takes_paths)
    return out


def _check_words(tokens: list[str], command: str, table: dict, takes_paths: bool) -> None:
    """fire gives a command without paths its bare words as the options not given by name, in
    the table's order (`timeline clip.jsonl`): one line for a word beyond those."""
    if takes_paths or "--" in tokens:
        return
    named = {t[2:].partition("=")[0] for t in tokens if t.startswith("--")}
    words = [t for t in tokens if not t.startswith("--")]
    room = len([n for n in table if n not in named])
    if len(words) > room:
        raise FerEdgeError(f"{words[room]}: {command} takes no more words (its options: "
                           f"{', '.join(options.flag(n) for n in table)})")


# ------------------------------------------------------------------------------------ help

def _print_help(argv: list[str]) -> int:
    """The help of the command (from the option table) or of a group or the whole CLI (as
    python-fire writes it, without its "INFO: Showing help ..." line on stderr), on stdout."""
    component, names = _walk([a for a in argv if a != "help"])
    name = " ".join(["fer-edge", *names])
    if isinstance(component, _GROUPS):
        from fire import helptext, trace

        text = helptext.HelpText(component, trace=trace.FireTrace(component, name=name))
        text = text.replace(f"'{name}'", name)
    else:
        text = command_help(" ".join(names))
    print("\n".join(_wrapped(line) for line in text.splitlines()))
    return 0


def command_help(name: str) -> str:
    """A command's --help: its summary, details, paths and each option of the table with what
    it accepts, in words; a switch as `--tta / --no-tta`."""
    command = options.COMMANDS[name]
    paths = " [PATHS]..." if command.paths else ""
    lines = ["NAME", f"    fer-edge {name} - {command.summary}", "", "SYNOPSIS",
             f"    fer-edge {name}{paths} <flags>", ""]
    if command.details:
        lines += ["DESCRIPTION", f"    {command.details}", ""]
    if command.paths:
        lines += ["POSITIONAL ARGUMENTS", "    PATHS", f"        {command.paths}.", ""]
    lines.append("FLAGS")
    for o in command.options:
        if o.kind is bool:
            usage = o.flag if o.name.startswith("no_") else \
                f"{o.flag} / {options.flag('no_' + o.name)}"
        else:
            usage = f"{o.flag}={o.name.upper()}"
        lines += [f"    {usage}", f"        {o.help}."]
        # what it accepts where its help does not say it (choices are named there)
        facts = [o.accepts()] if o.choices is None and o.kind not in (bool, str, "out") else []
        if o.required:
            facts.append("required")
        elif o.recipe and o.default is not None:
            facts.append(f"default: the recipe's, else {o.default}")
        elif o.kind is bool:
            facts += ["on by default"] if o.default else []
        elif o.default is not None:
            facts.append(f"default: {o.default}")
        if facts:
            lines.append(f"        {'; '.join(facts)[0].upper()}{'; '.join(facts)[1:]}.")
    return "\n".join(lines)


def _wrapped(line: str, width: int = 100) -> str:
    """A long help line folded at its own indentation."""
    import textwrap

    indent = " " * (len(line) - len(line.lstrip()))
    return textwrap.fill(line, width, subsequent_indent=indent) if len(line) > width else line


# ------------------------------------------------------------------- TensorFlow's start-up

class _QuietTensorFlow:
    """The import of tensorflow, whichever module makes it, runs with fd 2 on /dev/null and
    Python's absl logging at errors: TensorFlow writes its start-up lines (oneDNN, CUDA
    drivers) as its libraries load, before absl's C++ logging is set up, so no log level stops
    those. A finder on sys.meta_path, gone once tensorflow is loaded."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "tensorflow":
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            from .edge.sources import quiet_native_stderr

            if cls in sys.meta_path:
                sys.meta_path.remove(cls)
            try:
                from absl import logging as absl_logging

                absl_logging.set_verbosity(absl_logging.ERROR)
            except ImportError:
                pass
            with quiet_native_stderr(always=True):
                load(module)

        spec.loader.exec_module = exec_module
        return spec


def _quiet_tensorflow() -> None:
    """TensorFlow's start-up lines silenced in every command; FER_EDGE_DEBUG=1 keeps them.
    TF_CPP_MIN_LOG_LEVEL=3 stops the later ones ("failed call to cuInit")."""
    if os.environ.get("FER_EDGE_DEBUG"):
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if "tensorflow" not in sys.modules and _QuietTensorFlow not in sys.meta_path:
        sys.meta_path.insert(0, _QuietTensorFlow)


# ------------------------------------------------------------------------------------ main

def main(argv=None) -> int:
    import fire

    _quiet_tensorflow()
    argv = _protect_stdin(list(sys.argv[1:] if argv is None else argv))
    if argv in (["--version"], ["version"]):
        from . import __version__

        print(f"fer-edge {__version__}")
        return 0
    try:
        argv = check_command_line(argv)
        if _wants_help(argv) or _command_of(argv) is None:
            return _print_help(argv)
        fire.Fire(CLI(), command=argv, name="fer-edge")
    except FerEdgeError as e:
        print(f"fer-edge: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fer-edge: interrupted", file=sys.stderr)
        return 130
    except fire.core.FireExit as e:
        return e.code
    except BrokenPipeError:
        return _closed_pipe()
    return 0


EXIT_BROKEN_PIPE = 141    # 128 + SIGPIPE: what `yes | head -1` leaves behind


def _closed_pipe() -> int:
    """The reader of stdout went away (`| head -1`): stop quietly. stdout is pointed at
    /dev/null so that the interpreter's final flush cannot raise (and print) a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
