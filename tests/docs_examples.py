"""Finding and checking the runnable examples of README.md and docs/*.md (issue 12, build 6).

Convention (docs/decisions.md): an HTML comment `<!-- doctest -->` on the line before a fenced
code block says the block's output is promised and checked by tests/test_docs_examples.py.
Options: `<!-- doctest org=PATH -->` (org of the file's live server; the first one in a file
wins), `<!-- doctest pytest -->` (the block is a test file: it must pass under pytest),
`<!-- doctest robot -->` (a Robot Framework suite run against the file's live server: it must pass),
`<!-- doctest scenario -->` (a scenario file: saved beside `examples/`, `mppsim run` passes),
`<!-- doctest scenario-steps -->` (steps of a scenario: they load against the demo org),
`<!-- doctest org-file -->` (an org file: it loads; with `output=next` it is refused and the next
block, marked `<!-- output-of-previous -->`, is the message).

Every other fenced block says why it is not run: `<!-- not-run: REASON -->` (another host,
hardware, a server that runs until stopped, a format reference...), or it is a SIPREC message
checked by tests/test_protocol_examples.py (`<!-- siprec-example ... -->`). The test checks that
no block is left without one of these (issue 24).

- ```python blocks run as a script from the repo root; a `print(...)` line's trailing comment
  is the output promised for that print (`# {'freq_hz': 1000.0, ...}`).
- ```console / ```sh / ```shell blocks: `$ cmd` lines run in one bash process (variables carry
  over) with MPPSIM_API (http://127.0.0.1:PORT), MPPSIM_TOKEN and MPPSIM_RUN_DIR of a live
  `mppsim api` server for the file; the lines up to the next `$ ` are that command's output.

Matching: `...` matches anything (a whole line, part of a string, the rest of a dict or list);
output that parses as JSON or a Python literal is compared as data (dict keys in any order,
floats within 2 %), other text like doctest with ELLIPSIS and NORMALIZE_WHITESPACE.
"""
from __future__ import annotations

import ast
import doctest
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^<!--\s*doctest(?P<opts>(?:\s[^>]*?)?)\s*-->\s*$")
ANY_MARKER = re.compile(r"^<!--\s*(?P<kind>doctest|not-run|siprec-example|output-of-previous)\b:?(?P<rest>[^>]*?)-->\s*$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
ANY = "__ANY__"
SHELL_LANGS = ("console", "sh", "shell", "bash", "shell-session")


@dataclass
class Example:
    path: Path
    line: int                 # 1-based line of the block's first code line
    lang: str
    code: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def parse_options(text: str) -> dict[str, str]:
    opts = {}
    for word in text.split():
        key, _, value = word.partition("=")
        opts[key] = value or "true"
    return opts


def find_examples(path: Path) -> list[Example]:
    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = MARKER.match(lines[i].strip())
        if not m:
            i += 1
            continue
        opts = parse_options(m.group("opts"))
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        f = FENCE.match(lines[j].strip()) if j < len(lines) else None
        if not f:
            raise ValueError(f"{path}:{i + 1}: <!-- doctest --> must be followed by a fenced code block")
        fence, body, k = f.group("fence"), [], j + 1
        while k < len(lines) and not lines[k].strip().startswith(fence):
            body.append(lines[k])
            k += 1
        out.append(Example(path, j + 2, f.group("lang").lower(), "\n".join(body) + "\n", opts))
        i = k + 1
    return out


def fenced_blocks(path: Path) -> list[tuple[int, str, str | None, str]]:
    """Every fenced block: (1-based line of its fence, language, marker kind or None, the
    marker's text after the kind)."""
    lines = path.read_text().splitlines()
    out, i, last = [], 0, None
    while i < len(lines):
        text = lines[i].strip()
        f = FENCE.match(text)
        if f:
            m = ANY_MARKER.match(last or "")
            out.append((i + 1, f.group("lang").lower(), m.group("kind") if m else None,
                        m.group("rest").strip() if m else ""))
            fence, i = f.group("fence"), i + 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                i += 1
            last = None
        elif text:
            last = text
        i += 1
    return out


def next_block(path: Path, after_line: int) -> str:
    """The text of the first fenced block after line `after_line` (1-based)."""
    lines = path.read_text().splitlines()
    i = after_line
    while i < len(lines) and not FENCE.match(lines[i].strip()):
        i += 1
    fence, body, i = FENCE.match(lines[i].strip()).group("fence"), [], i + 1
    while i < len(lines) and not lines[i].strip().startswith(fence):
        body.append(lines[i])
        i += 1
    return "\n".join(body) + "\n"


# ----- python blocks --------------------------------------------------------------------------
def promised_prints(code: str) -> dict[int, str]:
    """{line number: promised output} for `print(...)  # promise` lines."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            line = code.splitlines()[tok.start[0] - 1]
            if line[:tok.start[1]].strip().startswith("print("):
                out[tok.start[0]] = tok.string[1:].strip()
    return out


HARNESS = r"""
import builtins, json, sys
code = open(sys.argv[1]).read()
printed = []
real_print = builtins.print
def print(*args, sep=" ", end="\n", file=None, flush=False):
    if file not in (None, sys.stdout):
        return real_print(*args, sep=sep, end=end, file=file, flush=flush)
    printed.append([sys._getframe(1).f_lineno, sep.join(str(a) for a in args)])
try:
    exec(compile(code, sys.argv[1], "exec"), {"__name__": "__main__", "print": print})
finally:
    with open(sys.argv[2], "w") as f:
        json.dump(printed, f)
"""


# ----- comparing ------------------------------------------------------------------------------
def _mark_ellipses(text: str) -> str:
    """Replace `...` outside strings by a marker the data parsers accept."""
    out, stack, i, quote = [], [], 0, None
    while i < len(text):
        c = text[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1:i + 2])
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "\"'":
            quote = c
        elif c in "{[(":
            stack.append(c)
        elif c in "}])" and stack:
            stack.pop()
        if text.startswith("...", i):
            prev = "".join(out).rstrip()[-1:]
            if prev == ":" or not stack or stack[-1] != "{":
                out.append(f'"{ANY}"')
            else:
                out.append(f'"{ANY}": "{ANY}"')
            i += 3
            continue
        out.append(c)
        i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def parse_data(text: str):
    """JSON or a Python literal (with `...` markers), or raise ValueError."""
    marked = _mark_ellipses(text.strip())
    try:
        return json.loads(marked)
    except ValueError:
        pass
    try:
        return ast.literal_eval(marked)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(str(exc)) from None


def data_matches(want, got) -> bool:
    if want == ANY:
        return True
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return False
        keys = [k for k in want if k != ANY]
        if ANY not in want and set(keys) != set(got):
            return False
        return all(k in got and data_matches(want[k], got[k]) for k in keys)
    if isinstance(want, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return False
        want = list(want)
        if want and want[-1] == ANY:
            head = want[:-1]
            return len(got) >= len(head) and all(data_matches(w, g) for w, g in zip(head, got))
        if want and want[0] == ANY:
            tail = want[1:]
            return len(got) >= len(tail) and all(data_matches(w, g) for w, g in zip(tail, got[len(got) - len(tail):]))
        return len(want) == len(got) and all(data_matches(w, g) for w, g in zip(want, got))
    if isinstance(want, bool) or want is None:
        return want is got or want == got and type(want) is type(got)
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return abs(got - want) <= max(abs(want) * 0.02, 0.05)
    if isinstance(want, str) and isinstance(got, str) and "..." in want:
        pattern = ".*".join(re.escape(part) for part in want.split("..."))
        return re.fullmatch(pattern, got, re.S) is not None
    return want == got and type(want) is type(got)


def output_matches(want: str, got: str) -> bool:
    want, got = want.strip("\n"), got.strip("\n")
    if want.strip() == "...":
        return True
    try:
        want_data = parse_data(want)
    except ValueError:
        want_data = None
    if want_data is not None and not isinstance(want_data, str):
        try:
            got_data = parse_data(got)
        except ValueError:
            return False
        return data_matches(want_data, got_data)
    return doctest.OutputChecker().check_output(want + "\n", got + "\n",
                                                doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)


# ----- shell blocks ---------------------------------------------------------------------------
def shell_commands(code: str) -> list[tuple[str, str]]:
    """[(command, promised output)] of a console block; `\\` continues a command."""
    cmds: list[list] = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd + "\n" + lines[i].removeprefix("> ")   # bash reads the backslash-newline
            cmds.append([cmd, []])
        elif cmds:
            cmds[-1][1].append(line)
        i += 1
    return [(c, "\n".join(out)) for c, out in cmds]
