"""`fer-edge`: the entry point. The command line is checked against the option table before
python-fire is given it (an unknown, misspelt or valueless option ends in one line, before any
work); --help is printed from the same table. The commands themselves are in commands.py.
"""

from __future__ import annotations

import os
import re
import sys

from .commands import CLI, STDIN as _STDIN, STDIN_ARG as _STDIN_ARG, Data, Models  # noqa: F401
from .errors import FerEdgeError


def _protect_stdin(argv: list[str]) -> list[str]:
    if not argv or argv[0] not in ("classify", "timeline"):
        return argv
    end = argv.index("--") if "--" in argv else len(argv)
    return [_STDIN_ARG if (a == _STDIN and i < end) else a for i, a in enumerate(argv)]


# ------------------------------------------------------------------ the strict command line
# python-fire runs a command first and only then complains about an argument it could not use
# (a whole training on the wrong settings for a typo): every option is checked against the
# command's signature before fire is given the command line.

_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}
_HELP = {"--help", "-h", "--helpfull"}


def _walk(argv: list[str]) -> tuple[object, list[str]]:
    """(the CLI object the command line's leading words name, those words): a command's
    method, a group (`data`, `models`) or the CLI itself; it stops at the first method."""
    component, names = CLI(), []
    for token in argv:
        if callable(component) and not isinstance(component, (CLI, Data, Models)):
            break
        member = getattr(component, token, None) if not token.startswith(("-", "_")) else None
        if member is None:
            break
        component, names = member, names + [token]
    return component, names


def _command_of(argv: list[str]):
    """(the method a command line runs, its name, the index of its first argument), or None
    for a line fire answers itself (help, a group without a command)."""
    component, names = _walk(argv)
    if not names or isinstance(component, (Data, Models)):
        return None
    return component, " ".join(names), len(names)


def _is_switch(param) -> bool:
    return param.annotation in (bool, "bool") or isinstance(param.default, bool)


def _is_option(token: str) -> bool:
    """An option token (--name, --name=value, -x); a negative number is a value."""
    return token.startswith("--") and len(token) > 2 or (
        len(token) == 2 and token[0] == "-" and token[1].isalpha())


def check_command_line(argv: list[str]) -> list[str]:
    """The command line with each option spelled as fire reads it (`--no-teacher-flip` ->
    `--noteacher_flip`), or FerEdgeError (exit 2) for an unknown or misspelt option (with the
    closest known one), a value given to a switch, or an option without its value."""
    import difflib
    import inspect

    if _HELP & set(argv[: argv.index("--") if "--" in argv else len(argv)]):
        return argv
    found = _command_of(argv)
    if found is None:
        return argv
    method, command, start = found
    params = {n: p for n, p in inspect.signature(method).parameters.items()
              if p.kind is not p.VAR_POSITIONAL}
    takes_paths = any(p.kind is p.VAR_POSITIONAL
                      for p in inspect.signature(method).parameters.values())
    flags = lambda: ", ".join("--" + n.replace("_", "-") for n in params)  # noqa: E731
    out, i = argv[:start], start
    while i < len(argv):
        token = argv[i]
        if token == "--":                     # fire's own flags follow
            out += argv[i:]
            break
        if not _is_option(token):
            out.append(token)
            i += 1
            continue
        key, eq, value = token.lstrip("-").partition("=")
        name = key.replace("-", "_")
        if len(key) == 1 and token[1] != "-":  # -e: fire's one-letter shortcut
            matches = [n for n in params if n[0] == key]
            if len(matches) != 1:
                raise FerEdgeError(f"{token}: not an option of {command}"
                                   + (f" (could be {', '.join('--' + m for m in matches)})"
                                      if matches else f" (its options: {flags()})"))
            name = matches[0]
        negated = name not in params and name.startswith("no") and (
            name[2:].lstrip("_") in params and _is_switch(params[name[2:].lstrip("_")]))
        if negated:
            name = name[2:].lstrip("_")
        if name not in params:
            close = difflib.get_close_matches(name, list(params), n=1, cutoff=0.6)
            flag = "--" + key
            raise FerEdgeError(f"unknown option {flag} for {command}"
                               + (f": did you mean --{close[0].replace('_', '-')}?" if close
                                  else f" (its options: {flags()})"))
        flag = "--" + name.replace("_", "-")
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if _is_switch(params[name]):
            if eq and value.lower() not in _BOOL_WORDS:
                raise FerEdgeError(f"{flag} is a switch: give it alone (or --no-"
                                   f"{name.replace('_', '-')}), not ={value}")
            if eq and negated:
                raise FerEdgeError(f"--no-{name.replace('_', '-')} is a switch: it takes no "
                                   f"value")
            if not eq and nxt is not None and nxt != "--" and not _is_option(nxt) and (
                    not takes_paths or nxt.lower() in _BOOL_WORDS):
                raise FerEdgeError(f"{flag} is a switch: it takes no value (got {nxt!r}; "
                                   f"--no-{name.replace('_', '-')} turns it off)")
            out.append(f"--{'no' if negated else ''}{name}" + (f"={value}" if eq else ""))
            i += 1
            continue
        if negated:
            raise FerEdgeError(f"unknown option --{key} for {command}")
        if not eq and (nxt is None or nxt == "--" or _is_option(nxt)):
            raise FerEdgeError(f"{flag} needs a value")
        out.append(f"--{name}={value}" if eq else f"--{name}")
        i += 1
    return out


def _wants_help(argv: list[str]) -> bool:
    before = argv[: argv.index("--")] if "--" in argv else argv
    return bool(_HELP & set(before)) or before == ["help"]


def _print_help(argv: list[str]) -> int:
    """The help of the command (or group, or the whole CLI) on stdout, as python-fire writes it
    but without its "INFO: Showing help ..." line on stderr."""
    from fire import helptext, trace

    component, names = _walk(argv)
    name = " ".join(["fer-edge", *names])
    text = helptext.HelpText(component, trace=trace.FireTrace(component, name=name))
    # one spelling of every flag, the README's: --learning-rate, not fire's --learning_rate
    text = re.sub(r"--([a-z0-9]+(?:_[a-z0-9]+)+)", lambda m: "--" + m.group(1).replace("_", "-"),
                  text)
    print("\n".join(_wrapped(line) for line in text.replace(f"'{name}'", name).splitlines()))
    return 0


def _wrapped(line: str, width: int = 100) -> str:
    """A long help line folded at its own indentation."""
    import textwrap

    indent = " " * (len(line) - len(line.lstrip()))
    return textwrap.fill(line, width, subsequent_indent=indent) if len(line) > width else line


def main(argv=None) -> int:
    import fire

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = _protect_stdin(list(sys.argv[1:] if argv is None else argv))
    if argv in (["--version"], ["version"]):
        from . import __version__

        print(f"fer-edge {__version__}")
        return 0
    try:
        argv = check_command_line(argv)
        if _wants_help(argv):
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
