"""Run the examples in docs/*.rst, so the docs cannot drift from the code.

The convention (also described in docs/index.rst, "Writing examples in these
docs"):

* A runnable example is a ``.. code-block:: python`` block.
* The blocks of one page run in order, in one fresh Python process per page
  (a later block may use names an earlier one defined), with a time limit of
  PAGE_TIMEOUT seconds for the whole page.
* If a python block is followed directly (only blank lines between) by a
  ``.. code-block:: text`` block, the python block's stdout must equal that
  text. Trailing whitespace on each line, and blank lines at the start and
  end, are ignored.
* A python block containing the comment ``# not-run`` is not executed (nor is
  its expected output checked).

There is one test per page that has at least one runnable block, named after
the page. Tracebacks from an example point at the line in the .rst file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = REPO_ROOT / "docs"
PAGE_TIMEOUT = 60.0
NOT_RUN_MARKER = "# not-run"

_DIRECTIVE_RE = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*(?P<lang>\S*)[ \t]*$")


@dataclass
class Example:
    page: Path
    line: int  # 1-based line in the .rst file of the block's first code line
    code: str
    expected: str | None  # stdout the block must print, or None: not checked


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _read_block(lines: list[str], start: int) -> tuple[str, str, int, str, int]:
    """Parse the code-block directive at lines[start].

    Returns (lang, indent, first_code_line_index, code, index_after_block).
    """
    m = _DIRECTIVE_RE.match(lines[start])
    assert m is not None
    indent = len(m["indent"])
    i = start + 1
    # Directive options (":caption: ...", ":linenos:") come before the body.
    while i < len(lines) and lines[i].strip().startswith(":") and _indent_width(lines[i]) > indent:
        i += 1
    body_start = None
    body: list[str] = []
    while i < len(lines):
        line = lines[i]
        if line.strip() and _indent_width(line) <= indent:
            break
        if line.strip() and body_start is None:
            body_start = i
        if body_start is not None:
            body.append(line)
        i += 1
    code = textwrap.dedent("\n".join(body)).strip("\n")
    return m["lang"], m["indent"], (body_start if body_start is not None else start), code, i


def _normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def collect_examples(page: Path) -> list[Example]:
    """The runnable python blocks of one page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    examples: list[Example] = []
    i = 0
    while i < len(lines):
        if not _DIRECTIVE_RE.match(lines[i]):
            i += 1
            continue
        lang, indent, first, code, i = _read_block(lines, i)
        if lang not in ("python", "python3", "py"):
            continue
        # Is it directly followed by a `code-block:: text` with the expected output?
        expected = None
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines):
            m = _DIRECTIVE_RE.match(lines[j])
            if m and m["lang"] == "text" and m["indent"] == indent:
                _, _, _, expected, i = _read_block(lines, j)
        if NOT_RUN_MARKER in code:
            continue
        examples.append(Example(page, first + 1, code, expected))
    return examples


# Runs in the child process: execute each block in one shared __main__
# namespace; after each block, write a separator line to stdout so that the
# parent can split the output per block.  Each block is compiled with the .rst
# file as its filename and padded so that line numbers match the file.
_DRIVER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1], encoding="utf-8"))
sep = sys.argv[2]
ns = {"__name__": "__main__", "__builtins__": __builtins__}
for n, b in enumerate(blocks):
    try:
        exec(compile("\n" * (b["line"] - 1) + b["code"], b["page"], "exec"), ns)
    except BaseException:
        sys.stdout.flush()
        print("\nexample at %s:%d raised:" % (b["page"], b["line"]), file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)
    sys.stdout.flush()
    sys.stdout.write("\n%s %d\n" % (sep, n))
    sys.stdout.flush()
"""


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


def _pages_with_examples() -> list[Path]:
    return [p for p in sorted(DOCS_DIR.glob("*.rst")) if collect_examples(p)]


@pytest.mark.parametrize(
    "page", _pages_with_examples(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix()
)
def test_docs_examples(page: Path, tmp_path: Path) -> None:
    examples = collect_examples(page)
    blocks_file = tmp_path / "blocks.json"
    blocks_file.write_text(
        json.dumps([{"page": str(e.page), "line": e.line, "code": e.code} for e in examples]),
        encoding="utf-8",
    )
    sep = "----- nursery-docs-example-end-%s -----" % os.urandom(8).hex()

    env = dict(os.environ)
    # Examples import the checkout under test, even without an install.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("PYTHONSTARTUP", None)

    timed_out = False
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DRIVER, str(blocks_file), sep],
            cwd=tmp_path,  # examples that write files write them here
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=PAGE_TIMEOUT,
        )
        stdout, stderr, returncode = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        timed_out = True
        stdout, stderr, returncode = _text(exc.stdout), _text(exc.stderr), None

    # Split stdout at the separators: outputs[n] is what block n printed.
    outputs: list[str] = []
    rest = stdout
    for n in range(len(examples)):
        head, found, tail = rest.partition(f"\n{sep} {n}\n")
        if not found:
            break
        outputs.append(head)
        rest = tail
    # The block that was running when the process stopped, if any.
    current = examples[len(outputs)] if len(outputs) < len(examples) else None
    where = f"{page.name}:{current.line}" if current else page.name

    if timed_out:
        pytest.fail(
            f"the examples in {page.name} did not finish within {PAGE_TIMEOUT:g}s; "
            f"the one at {where} was running\n"
            f"--- its stdout ---\n{rest}\n--- stderr ---\n{stderr}",
            pytrace=False,
        )
    if returncode != 0:
        pytest.fail(
            f"example at {where} failed (exit code {returncode})\n"
            f"--- its stdout ---\n{rest}\n--- stderr ---\n{stderr}",
            pytrace=False,
        )
    assert current is None, (
        f"the examples in {page.name} stopped early, at {where}\n"
        f"--- its stdout ---\n{rest}\n--- stderr ---\n{stderr}"
    )

    for example, output in zip(examples, outputs):
        if example.expected is None:
            continue
        got, want = _normalize(output), _normalize(example.expected)
        if got != want:
            pytest.fail(
                f"example at {page.name}:{example.line} printed\n"
                f"{textwrap.indent(got, '    ') or '    (nothing)'}\n"
                f"but the docs say it prints\n{textwrap.indent(want, '    ')}\n"
                f"--- stderr ---\n{stderr}",
                pytrace=False,
            )
