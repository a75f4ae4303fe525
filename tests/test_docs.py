"""The user's manual: README.md, CONTRIBUTING.md, CHANGELOG.md, training/README.md, export/README.md and docs/*.md.

Each check names the file and line at fault:

- no merge-conflict markers;
- every relative Markdown link resolves to a file or folder of the repository, and its ``#anchor`` (into a
  Markdown page) to a heading there;
- every repository path in backticks (``hat_ebm_tf/...``, ``training/...``, ``export/...``, ``tests/...``,
  ``docs/...``, ``.ci/...``, or a top-level file such as ``setup.py``) exists, and every dotted name
  ``hat_ebm_tf.a.b`` in inline code names a module of the package or a name its module defines;
- every ``--flag`` of a ``hat-ebm SUBCOMMAND`` (or ``python -m hat_ebm_tf.benchmarks``) shown in a fenced code
  block or in inline code is one that ``hat-ebm SUBCOMMAND --help`` lists; the parser is built in this process
  (``hat_ebm_tf.cli.main.build_parser``), once;
- the README's first ``python`` block runs, verbatim, in a fresh interpreter.

The checkers are functions of a document's name and text. The tests at the end feed them a fake page with a
renamed flag, a missing path, a broken link and conflict markers, and check that each is caught, on its line.
"""

import argparse
import ast
import dataclasses
import difflib
import functools
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The pages of the manual, as paths relative to the repository; CHANGELOG.md when there is one.
PAGES = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", "training/README.md", "export/README.md")
MANUAL = [
    *(name for name in PAGES if name != "CHANGELOG.md" or (ROOT / name).is_file()),
    *sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").glob("*.md")),
]
# Paths in backticks that start so are paths into the repository; so are these top-level files.
PATH_PREFIXES = ("hat_ebm_tf/", "training/", "export/", "tests/", "docs/", ".ci/")
TOP_LEVEL_FILES = (
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    "requirements.txt",
    "MANIFEST.in",
    "README.md",
    "CONTRIBUTING.md",
    "CHANGELOG.md",
    "LICENSE",
)
# Paths of the installed package that the repository does not hold: setup.py installs training/configs/ there.
INSTALLED_ONLY = ("hat_ebm_tf/configs", "hat_ebm_tf.configs")
# A command line's options end at the end of its line (continuations are joined first) or at a shell separator: a
# pipe into another command (not `[--a | --b]` of a usage line), `&&`, `;`, a comment or a redirection.
COMMAND_END = re.compile(r"\n|\|(?!\s*-)|&&|;|(?:^|\s)#|\s\d?>")
COMMAND = re.compile(
    r"(?<![\w.-])hat-ebm[ \t]+([a-z][a-z0-9-]*)|(?<![\w.-])python3?[ \t]+-m[ \t]+hat_ebm_tf\.benchmarks\b"
)
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+[\"'(][^)]*)?\)")
LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?([^\s>]+)>?", re.MULTILINE)
DOTTED = re.compile(r"hat_ebm_tf(?:\.[A-Za-z_]\w*)+")
README_TIMEOUT = 300  # seconds: the README's example is kept tiny (well under a minute on 2 CPU cores)


# ------------------------------------------------------------------ parsing
@dataclasses.dataclass(frozen=True)
class Line:
    """One line of a page: ``kind`` is ``text``, ``code`` (inside a fenced block) or ``fence``.

    ``block`` counts the fenced blocks (-1 outside one); ``lang`` is the block's info string.
    """

    number: int
    text: str
    kind: str
    block: int = -1
    lang: str = ""


def lines_of(text):
    """The page's lines, each marked as text, fenced code or a fence."""
    lines, fence, lang, blocks = [], None, "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if fence is None:
            match = FENCE.match(raw)
            if match:
                fence, lang = match.group(1), match.group(2).lower()
                lines.append(Line(number, raw, "fence", blocks, lang))
                continue
            lines.append(Line(number, raw, "text"))
        elif stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            lines.append(Line(number, raw, "fence", blocks, lang))
            fence, lang, blocks = None, "", blocks + 1
        else:
            lines.append(Line(number, raw, "code", blocks, lang))
    return lines


def _joined(lines, continuation=False):
    """``(text, starts)``: lines joined by newlines, and each line's offset and number, to find a match's line.

    With ``continuation``, a line ending in a backslash is joined to the next without the backslash, as a shell
    reads it (offsets stay those of the joined text).
    """
    joined, starts = "", []
    for line in lines:
        starts.append((len(joined), line.number))
        if continuation and line.text.endswith("\\"):
            joined += line.text[:-1] + " "  # the next line continues this one
        else:
            joined += line.text + "\n"
    return joined, starts


def _line_at(starts, offset):
    number = starts[0][1]
    for start, line in starts:
        if start > offset:
            break
        number = line
    return number


def paragraphs(text):
    """``(text, starts)`` of each run of text lines between blank lines, fences and headings (where spans live)."""
    groups, current = [], []
    for line in lines_of(text):
        breaks = line.kind != "text" or not line.text.strip() or HEADING.match(line.text)
        if breaks and current:
            groups.append(current)
            current = []
        if line.kind == "text" and line.text.strip():
            if HEADING.match(line.text):
                groups.append([line])
            else:
                current.append(line)
    if current:
        groups.append(current)
    return [_joined(group) for group in groups]


def code_blocks(text):
    """``(text, starts, lang)`` of each fenced block, its backslash continuations joined."""
    blocks = {}
    for line in lines_of(text):
        if line.kind == "code":
            blocks.setdefault(line.block, []).append(line)
    return [(*_joined(lines, continuation=True), lines[0].lang) for lines in blocks.values()]


def inline_spans(text):
    """``(line, content)`` of every inline code span outside fenced blocks (a span may wrap lines)."""
    spans = []
    for joined, starts in paragraphs(text):
        for match in SPAN.finditer(joined):
            # `\|` is a `|` in a table cell; a span that wraps reads as one line.
            content = match.group(2).replace("\\|", "|").replace("\n", " ").strip()
            spans.append((_line_at(starts, match.start()), content))
    return spans


# ------------------------------------------------------------------ the checks
def conflict_markers(name, text):
    """Lines that start with ``<<<<<<<``, ``|||||||`` or ``>>>>>>>``, or are ``=======`` alone."""
    return [
        f"{name}:{number}: a merge-conflict marker: {line.strip()[:40]!r}"
        for number, line in enumerate(text.splitlines(), 1)
        if line.startswith(("<<<<<<<", "|||||||", ">>>>>>>")) or line.rstrip() == "======="
    ]


def _links(text):
    """``(line, target)`` of every Markdown link and link definition outside code."""
    found = []
    for joined, starts in paragraphs(text):
        # Code spans hold no links: blank them out, keeping offsets and newlines.
        plain = SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), joined)
        for match in (*LINK.finditer(plain), *LINK_DEFINITION.finditer(plain)):
            found.append((_line_at(starts, match.start()), match.group(1)))
    return sorted(found)


def _external(target):
    return bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target)) or target.startswith("//")


def _resolve(name, target):
    """The file a relative link of page ``name`` points to (``/x``: from the repository's root)."""
    path = unquote(target.partition("#")[0])
    return (ROOT / path.lstrip("/")) if path.startswith("/") else (ROOT / name).parent / path


def broken_links(name, text):
    """Relative links whose target (anchors stripped) is missing or outside the repository."""
    problems = []
    for number, target in _links(text):
        if _external(target) or not target.partition("#")[0]:
            continue
        path = _resolve(name, target)
        if not path.exists():
            problems.append(f"{name}:{number}: the link target {target!r} does not exist ({_shown(path)})")
        elif not path.resolve().is_relative_to(ROOT):
            problems.append(f"{name}:{number}: the link target {target!r} is outside the repository")
    return problems


def _shown(path):
    try:
        return os.path.relpath(path, ROOT)
    except ValueError:
        return os.fspath(path)


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped (but ``-`` and ``_``), spaces to ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text):
    """The anchors of a page's headings (repeats numbered ``-1``, ``-2``, as GitHub does), and HTML ids."""
    found, seen = set(), {}
    for line in lines_of(text):
        match = HEADING.match(line.text) if line.kind == "text" else None
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found | set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))


def broken_anchors(name, text):
    """Links ``page.md#anchor`` (or ``#anchor``) whose anchor is no heading of the page."""
    problems = []
    for number, target in _links(text):
        path, _, anchor = target.partition("#")
        if _external(target) or not anchor:
            continue
        page = _resolve(name, target) if path else ROOT / name
        if path and (page.suffix != ".md" or not page.is_file()):
            continue  # a missing file is broken_links'; line anchors of code files are GitHub's own
        known = page.read_text() if path else text
        if unquote(anchor) not in anchors(known):
            close = difflib.get_close_matches(unquote(anchor), sorted(anchors(known)), n=1)
            hint = f"; did you mean #{close[0]}?" if close else ""
            problems.append(
                f"{name}:{number}: {target!r}: no heading with the anchor #{anchor} in {_shown(page)}{hint}"
            )
    return problems


def _path_token(token):
    """``token`` (a word of code) cleaned of quotes, brackets, trailing punctuation, ``::test`` and ``:line``."""
    token = token.strip("\"'`()[]{}<>,;").rstrip(".:")
    return re.split(r"::|:\d|#", token)[0]


def _missing_path(token):
    """Why the repository path ``token`` is wrong, or None when it exists (or is a placeholder)."""
    if any(mark in token for mark in ("<", ">", "{", "}", "…", "...", "$")):
        return None  # a placeholder, e.g. tests/test_<module>.py
    if token.rstrip("/") in INSTALLED_ONLY:
        return None
    if any(mark in token for mark in "*?["):
        return None if any(ROOT.glob(token)) else f"no file matches {token!r}"
    return None if (ROOT / token).exists() else f"{token!r} does not exist"


@functools.cache
def _defined_names(path):
    """The names a module defines at its top level (in ``if``/``try`` blocks too), and its ``_EXPORTS`` keys."""
    names = set()
    statements = list(ast.parse(path.read_text()).body)
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
                if isinstance(target, ast.Name) and target.id == "_EXPORTS" and isinstance(node.value, ast.Dict):
                    names |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            statements += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                statements += handler.body
    return frozenset(names)


def _module_file(parts):
    base = ROOT.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _missing_name(dotted):
    """Why ``hat_ebm_tf.a.b`` names nothing, or None when it is a module, or a name a module defines."""
    if dotted in INSTALLED_ONLY:
        return None
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        module = _module_file(parts[:end])
        if module is not None:
            break
    if end == len(parts):
        return None
    if parts[end] in _defined_names(module):
        return None  # a class's attribute after it (RunDir.load_model) is not checked
    return f"{dotted!r}: {'.'.join(parts[:end])} has no module or name {parts[end]!r}"


def removed_lines(text):
    """The numbers of the lines under a heading *Removed* (a changelog's): they name what no longer exists."""
    numbers, level = set(), None
    for line in lines_of(text):
        match = HEADING.match(line.text) if line.kind == "text" else None
        if match:
            if level is not None and len(match.group(1)) <= level:
                level = None
            if match.group(2).strip().lower() == "removed":
                level = len(match.group(1))
                continue
        if level is not None:
            numbers.add(line.number)
    return numbers


def _outside_removed(name, text, problems):
    """``problems`` (``NAME:LINE: ...``) but those on the lines of ``removed_lines``."""
    removed = removed_lines(text)
    return [p for p in problems if int(p[len(name) + 1 :].partition(":")[0]) not in removed]


def missing_paths(name, text):
    """Repository paths in backticks and in code blocks that do not exist, and dotted names that name nothing.

    Lines under a heading *Removed* are not checked.
    """
    problems = []
    for number, span in inline_spans(text):
        for word in span.split():
            token = _path_token(word)
            if token.startswith(PATH_PREFIXES) or token in TOP_LEVEL_FILES:
                why = _missing_path(token)
                if why:
                    problems.append(f"{name}:{number}: {why}")
        for match in DOTTED.finditer(span):
            before = span[max(0, match.start() - 1) : match.start()]
            why = None if before and (before.isalnum() or before in "_./") else _missing_name(match.group(0))
            if why:
                problems.append(f"{name}:{number}: {why}")
    for joined, starts, _ in code_blocks(text):
        for match in re.finditer(r"\S+", joined):
            token = _path_token(match.group(0))
            why = _missing_path(token) if token.startswith(PATH_PREFIXES) else None
            if why:
                problems.append(f"{name}:{_line_at(starts, match.start())}: {why}")
    return _outside_removed(name, text, problems)


@functools.cache
def command_flags():
    """``{sub-command: frozenset of the options its --help lists}``, from the ``hat-ebm`` parser built here."""
    from hat_ebm_tf.cli.main import build_parser  # the parser, without TensorFlow (tests/test_layout.py)

    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return {
        command: frozenset(
            option for action in sub._actions if action.help != argparse.SUPPRESS for option in action.option_strings
        )
        for command, sub in subparsers.choices.items()
    }


def _command_lines(text):
    """``(text, starts)`` of each fenced block (continuations joined) and of each inline code span."""
    chunks = [(joined, starts) for joined, starts, _ in code_blocks(text)]
    return chunks + [(span, [(0, number)]) for number, span in inline_spans(text)]


def unknown_flags(name, text, flags=None):
    """``hat-ebm SUBCOMMAND ... --flag`` in code whose sub-command or flag the parser does not know.

    Lines under a heading *Removed* are not checked.

    Args:
        name: the page, for the messages.
        text: its Markdown.
        flags: ``{sub-command: options}``; default ``command_flags()``.
    """
    flags = command_flags() if flags is None else flags
    problems = []
    for joined, starts in _command_lines(text):
        commands = list(COMMAND.finditer(joined))
        for index, match in enumerate(commands):
            command = match.group(1) or "bench"  # python -m hat_ebm_tf.benchmarks takes bench's flags
            line = _line_at(starts, match.start())
            if command not in flags:
                problems.append(f"{name}:{line}: unknown sub-command `hat-ebm {command}` (known: {sorted(flags)})")
                continue
            stop = commands[index + 1].start() if index + 1 < len(commands) else len(joined)
            segment = joined[match.end() : stop]
            end = COMMAND_END.search(segment)
            segment = segment[: end.start()] if end else segment
            for flag in FLAG.finditer(segment):
                if flag.group(0) not in flags[command]:
                    close = difflib.get_close_matches(flag.group(0), sorted(flags[command]), n=1)
                    hint = f"; did you mean {close[0]}?" if close else ""
                    where = _line_at(starts, match.end() + flag.start())
                    problems.append(
                        f"{name}:{where}: `hat-ebm {command}` has no option {flag.group(0)} "
                        f"(see `hat-ebm {command} --help`){hint}"
                    )
    return _outside_removed(name, text, problems)


def first_python_block(text):
    """``(line, code)``: the first line and the source of the page's first ```python block, or None."""
    lines = [line for line in lines_of(text) if line.kind == "code" and line.lang in ("python", "python3", "py")]
    if not lines:
        return None
    block = [line for line in lines if line.block == lines[0].block]
    return block[0].number, "\n".join(line.text for line in block) + "\n"


# ------------------------------------------------------------------ the manual
def _read(name):
    return (ROOT / name).read_text(encoding="utf-8")


def test_the_manual_is_there():
    missing = [name for name in PAGES if name != "CHANGELOG.md" and not (ROOT / name).is_file()]
    assert not missing, f"missing pages of the manual: {missing}"
    assert any(name.startswith("docs/") for name in MANUAL), "docs/ holds no page"


@pytest.mark.parametrize("name", MANUAL)
@pytest.mark.parametrize(
    "check",
    [conflict_markers, broken_links, broken_anchors, missing_paths, unknown_flags],
    ids=["no conflict markers", "relative links resolve", "anchors name headings", "paths exist", "flags exist"],
)
def test_the_manual_passes_each_check(check, name):
    problems = check(name, _read(name))
    assert not problems, "\n".join(problems)


def test_the_readme_python_example_runs(tmp_path):
    found = first_python_block(_read("README.md"))
    assert found is not None, "README.md has no ```python block"
    line, code = found
    # The checkout's package, whatever the environment's install; the example writes into its own directory.
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=README_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        result = None
    assert result is not None, (
        f"README.md:{line}: the first python block ran longer than {README_TIMEOUT} s: keep it tiny"
    )
    assert result.returncode == 0, f"README.md:{line}: the first python block fails:\n{result.stderr[-3000:]}"


# ------------------------------------------------------------------ the checks catch what they should
FAKE = "docs/_fake.md"  # resolved like a page of docs/ (it need not exist)
FLAGS = {
    "sample": frozenset({"-h", "--help", "--num", "--png", "--noise", "--no-noise"}),
    "bench": frozenset({"--tiny"}),
}


def test_a_renamed_flag_is_caught_on_its_line():
    page = (
        "# Page\n"  # 1
        "\n"
        "```bash\n"  # 3
        "hat-ebm sample runs/digits --num 100 --pngg samples.png\n"  # 4: --pngg
        "hat-ebm sample runs/digits \\\n"  # 5
        "    --nums 5 | tee log --not-a-sample-flag\n"  # 6: --nums; tee's flag is not sample's
        "python -m hat_ebm_tf.benchmarks --tinyy\n"  # 7: --tinyy
        "```\n"
        "\n"
        "Run `hat-ebm sample --noice` or `hat-ebm sampel --num 3`.\n"  # 10: --noice, and an unknown command
    )
    problems = unknown_flags(FAKE, page, FLAGS)
    assert len(problems) == 5, problems
    for line, what in ((4, "--pngg"), (6, "--nums"), (7, "--tinyy"), (10, "--noice"), (10, "hat-ebm sampel")):
        assert any(p.startswith(f"{FAKE}:{line}: ") and what in p for p in problems), (line, what, problems)
    assert "did you mean --png?" in problems[0]


def test_flags_of_usage_lines_comments_and_pipes_are_read_as_a_shell_and_a_reader_would():
    page = (
        "```text\n"
        "hat-ebm sample RUN [--num N] [--noise | --no-noise] [sampler flags]\n"
        "```\n"
        "```bash\n"
        "hat-ebm sample runs/digits --num 3  # not a flag: --whatever\n"
        "hat-ebm sample runs/digits --num 3 | grep --count wrote && hat-ebm sample r --png x.png\n"
        "```\n"
        "`hat-ebm sample` alone, and `hat-ebm-tf[serving]`, the package, are no commands.\n"
    )
    assert unknown_flags(FAKE, page, FLAGS) == []


def test_a_missing_path_and_a_stale_module_are_caught_on_their_lines():
    page = (
        "See `hat_ebm_tf/evaluation/analytic.py`, `tests/test_docs.py::test_the_manual_is_there` and `setup.py`.\n"
        "\n"
        "See `hat_ebm_tf/no_such_module.py` and `LICENSE`.\n"  # 3: both missing (no LICENSE in this repository)
        "\n"
        "`hat_ebm_tf.quality.digits` went; `hat_ebm_tf.quality.report.quality_report` and `hat_ebm_tf.FusedAdam` are\n"
        "there, and so are `training/configs/*.yaml` and `hat_ebm_tf/configs/` once installed.\n"
        "\n"
        "```bash\n"
        "hat-ebm train --config training/configs/nothing.yaml --run-dir runs/x\n"  # 9
        "```\n"
    )
    problems = missing_paths(FAKE, page)
    expected = [(3, "hat_ebm_tf/no_such_module.py"), (5, "hat_ebm_tf.quality.digits"), (9, "nothing.yaml")]
    if not (ROOT / "LICENSE").exists():
        expected.append((3, "LICENSE"))
    assert len(problems) == len(expected), problems
    for line, what in expected:
        assert any(p.startswith(f"{FAKE}:{line}: ") and what in p for p in problems), (line, what, problems)


def test_a_changelogs_removed_section_may_name_what_is_gone():
    page = (
        "## 0.2.0\n"
        "### Removed\n"
        "- `hat_ebm_tf.quality.digits` and `hat-ebm sample --old-flag`.\n"
        "### Changed\n"
        "- `hat_ebm_tf/gone.py` and `hat-ebm sample --gone`.\n"  # 5: checked again
    )
    assert [p.split(": ")[0] for p in missing_paths(FAKE, page)] == [f"{FAKE}:5"]
    assert [p.split(": ")[0] for p in unknown_flags(FAKE, page, FLAGS)] == [f"{FAKE}:5"]


def test_conflict_markers_are_caught_on_their_lines():
    page = "# Page\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> main\n\n======= not a marker\n"
    problems = conflict_markers(FAKE, page)
    assert [p.split(": ")[0] for p in problems] == [f"{FAKE}:2", f"{FAKE}:4", f"{FAKE}:6"], problems


def test_a_broken_link_and_anchor_are_caught_on_their_lines():
    page = (
        "# A page\n"
        "\n"
        "[ok](sampling.md#sampler-settings), [ok](../README.md), [web](https://example.com/x.md), [self](#a-page)\n"
        "[gone](nothing.md) and [wrong anchor](sampling.md#no-such-heading)\n"  # 4
        "and `[not a link](nothing.md)` in code.\n"
        "\n"
        "[bad self](#no-heading)\n"  # 7
    )
    assert broken_links(FAKE, page) == [f"{FAKE}:4: the link target 'nothing.md' does not exist (docs/nothing.md)"]
    problems = broken_anchors(FAKE, page)
    assert [p.split(": ")[0] for p in problems] == [f"{FAKE}:4", f"{FAKE}:7"], problems


def test_anchors_are_githubs():
    page = "# Exit codes\n## FID and KID: `hat-ebm fid`\n## A calibrated detector: `--calibrate`\n## Exit codes\n"
    assert anchors(page) == {
        "exit-codes",
        "fid-and-kid-hat-ebm-fid",
        "a-calibrated-detector---calibrate",
        "exit-codes-1",
    }


def test_the_first_python_block_is_found_whole():
    page = "```bash\necho no\n```\n\ntext\n\n```python\nimport math\n\nprint(math.pi)\n```\n```python\nlater\n```\n"
    assert first_python_block(page) == (8, "import math\n\nprint(math.pi)\n")
    assert first_python_block("no code\n") is None
