"""Runs one adversarial case: the real CLI as a subprocess, bounded, watched, checked.

A case is a folder under ``corpus/``: ``workspace/`` (copied to a temporary folder, so a
case can never damage the checkout) and ``expect.yaml``::

    about: what the stranger tries
    generate:                      # files made at test time (big ones are never committed)
      - {kind: repeat, path: big.yaml, head: "x: ", body: "a", times: 52428800}
    env: {NAME: value}             # extra environment for the run
    timeout: 20                    # wall-clock seconds (default 20)
    memory_mb: 512                 # peak RSS bound, also the address-space limit + slack
    runs:
      - args: [validate]
        exit: 1
        stderr: |                  # the exact error output ...
          campaigns/a.yaml:3:1: ...
        stderr_lines: [regex, ...] # ... or lines that must each fullmatch one stderr line
        stdout_lines: [regex, ...]
        excludes: ["text", ...]    # must appear in neither stdout nor stderr
        markdown_safe: true        # stdout rendered by cmark-gfm holds only the report's own
                                   # structure: no data-made tags, links, mentions, cells
        writes: []                 # files the run may create in the workspace (default none)

Every run is also checked for what must never happen whatever the case says: a
traceback, exit 3 (internal error), a crash log, the canary API key or database password
in any output or written file, a network connection, a subprocess, or a file opened
outside the workspace and the Python installation (recorded by an audit hook, see
``audit/sitecustomize.py``).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
AUDIT_DIR = HERE / "audit"
REPO = HERE.parent.parent

CANARY_API_KEY = "ck_live_CANARY_7f3a9d1e5b2c4a6f"
CANARY_PG_PASSWORD = "pg-CANARY-pw-91c4e2"
CANARY_ENV = {
    "CONNECTLY_API_KEY": CANARY_API_KEY,
    "DECLARE_PG_DSN": f"postgresql://declare:{CANARY_PG_PASSWORD}@127.0.0.1:1/declare",
}
DEFAULT_TIMEOUT = 20.0
DEFAULT_MEMORY_MB = 512
# The address-space limit sits well above the RSS bound: CPython, pydantic-core and
# thread stacks reserve far more virtual memory than they touch.
ADDRESS_SPACE_SLACK_MB = 1024


@dataclass(frozen=True)
class Run:
    args: list[str]
    exit: int
    stderr: str | None = None
    stderr_lines: list[str] = field(default_factory=list)
    stdout_lines: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    markdown_safe: bool = False  # stdout is a PR comment: render it as GitHub does and check


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    about: str
    runs: list[Run]
    generate: list[dict[str, Any]]
    env: dict[str, str]
    timeout: float
    memory_mb: int


@dataclass(frozen=True)
class Outcome:
    args: list[str]
    exit: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float
    audit: list[str]


def load_case(folder: Path) -> Case:
    spec = yaml.safe_load((folder / "expect.yaml").read_text(encoding="utf-8"))
    runs = [Run(**run) for run in spec["runs"]]
    return Case(
        name=folder.name,
        folder=folder,
        about=spec["about"],
        runs=runs,
        generate=spec.get("generate", []),
        env={k: str(v) for k, v in spec.get("env", {}).items()},
        timeout=float(spec.get("timeout", DEFAULT_TIMEOUT)),
        memory_mb=int(spec.get("memory_mb", DEFAULT_MEMORY_MB)),
    )


def all_cases() -> list[Case]:
    return [load_case(p) for p in sorted(CORPUS.iterdir()) if (p / "expect.yaml").is_file()]


# --- generated files --------------------------------------------------------------------


def _write_repeat(path: Path, spec: dict[str, Any]) -> None:
    """head + body * times + tail, written in chunks (50 MB never sits in memory)."""
    body = spec["body"].encode("utf-8")
    times = int(spec["times"])
    with path.open("wb") as out:
        out.write(spec.get("head", "").encode("utf-8"))
        chunk = max(1, (1 << 20) // max(1, len(body)))
        while times > 0:
            n = min(chunk, times)
            out.write(body * n)
            times -= n
        out.write(spec.get("tail", "").encode("utf-8"))


def _write_bytes(path: Path, spec: dict[str, Any]) -> None:
    """Exact bytes, written as a Python bytes literal (NUL, Latin-1, UTF-16...)."""
    path.write_bytes(spec["literal"].encode("latin-1").decode("unicode_escape").encode("latin-1"))


def _write_symlink(path: Path, spec: dict[str, Any]) -> None:
    path.symlink_to(spec["target"])


def _write_fifo(path: Path, spec: dict[str, Any]) -> None:
    os.mkfifo(path)


GENERATORS: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "repeat": _write_repeat,
    "bytes": _write_bytes,
    "symlink": _write_symlink,
    "fifo": _write_fifo,
}


def materialise(case: Case, dest: Path) -> Path:
    """The case's workspace, copied under `dest` with its generated files; returns it."""
    workspace = dest / "workspace"
    shutil.copytree(case.folder / "workspace", workspace, symlinks=True)
    for spec in case.generate:
        path = workspace / spec["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        GENERATORS[spec["kind"]](path, spec)
    return workspace


# --- running ----------------------------------------------------------------------------


def _limits(memory_mb: int, timeout: float) -> Callable[[], None]:
    def apply() -> None:
        address_space = (memory_mb + ADDRESS_SPACE_SLACK_MB) << 20
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        cpu = int(timeout) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()  # so a timeout kills the whole group

    return apply


def _python_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(REPO / "connectly_declare"), str(AUDIT_DIR)}
    for entry in sys.path:
        if entry and Path(entry).is_dir() and "site-packages" in entry:
            roots.add(entry)
    return sorted(os.path.realpath(r) for r in roots)


def base_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


def run_cli(
    args: list[str],
    workspace: Path,
    scratch: Path,
    *,
    env: dict[str, str],
    timeout: float,
    memory_mb: int,
    module: str = "connectly_declare",
) -> Outcome:
    """`python -m connectly_declare ARGS` in `workspace`, bounded and audited."""
    audit_log = scratch / f"audit-{time.monotonic_ns()}.log"
    full_env = base_env(scratch / "home")
    (scratch / "home").mkdir(exist_ok=True)
    full_env.update(env)
    full_env.update({
        "PYTHONPATH": str(AUDIT_DIR),
        "DECLARE_AUDIT_LOG": str(audit_log),
        "DECLARE_AUDIT_ALLOW": os.pathsep.join([os.path.realpath(workspace), *_python_roots()]),
    })
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=workspace,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_limits(memory_mb, timeout),
    )
    chunks: dict[str, list[bytes]] = {"out": [], "err": []}

    def drain(stream: Any, into: list[bytes]) -> None:
        # Keep at most 8 MB of output: a case printing without bound must not take the
        # test process down with it; the check on the text still sees the excess.
        kept = 0
        for block in iter(lambda: stream.read(65536), b""):
            if kept < 8 << 20:
                into.append(block)
                kept += len(block)

    readers = [threading.Thread(target=drain, args=(proc.stdout, chunks["out"])),
               threading.Thread(target=drain, args=(proc.stderr, chunks["err"]))]
    for reader in readers:
        reader.start()
    status: int | None = None
    rusage: Any = None
    while True:
        pid, wait_status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = os.waitstatus_to_exitcode(wait_status)
            break
        if time.monotonic() - started > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            _, wait_status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    proc.returncode = status if status is not None else -9  # wait4 reaped it
    for reader in readers:
        reader.join()
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()
    audit = audit_log.read_text(encoding="utf-8").splitlines() if audit_log.exists() else []
    return Outcome(
        args=args,
        exit=status,
        stdout=b"".join(chunks["out"]).decode("utf-8", "replace"),
        stderr=b"".join(chunks["err"]).decode("utf-8", "replace"),
        seconds=time.monotonic() - started,
        max_rss_mb=rusage.ru_maxrss / 1024 if rusage is not None else 0.0,
        audit=audit,
    )


# --- checking ---------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        stat = path.stat()
        out[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return out


def _describe(outcome: Outcome) -> str:
    return (f"`connectly-declare {' '.join(outcome.args)}` exit {outcome.exit} "
            f"in {outcome.seconds:.1f}s, RSS {outcome.max_rss_mb:.0f} MB\n"
            f"--- stdout ---\n{outcome.stdout[:3000]}\n--- stderr ---\n{outcome.stderr[:3000]}\n"
            f"--- audit ---\n" + "\n".join(outcome.audit[:20]))


def _files_containing(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > 100 << 20:
            continue
        data = path.read_bytes()
        for needle in needles:
            if needle.encode() in data:
                found.append(f"{path}: {needle}")
    return found


def check_run(case: Case, run: Run, workspace: Path, scratch: Path) -> Outcome:
    before = _snapshot(workspace)
    env = {**CANARY_ENV, **case.env}
    outcome = run_cli(run.args, workspace, scratch, env=env, timeout=case.timeout,
                      memory_mb=case.memory_mb)
    about = f"case {case.name} ({case.about})\n" + _describe(outcome)
    both = outcome.stdout + outcome.stderr

    assert outcome.exit is not None, f"killed at the {case.timeout:.0f}s limit: {about}"
    assert outcome.max_rss_mb <= case.memory_mb, f"over {case.memory_mb} MB: {about}"
    assert "Traceback (most recent call last)" not in both, about
    assert outcome.exit != 3, f"internal error: {about}"
    assert outcome.exit == run.exit, f"expected exit {run.exit}: {about}"
    assert not outcome.audit, f"forbidden access: {about}"
    for secret in (CANARY_API_KEY, CANARY_PG_PASSWORD):
        assert secret not in both, f"secret printed: {about}"
    assert not _files_containing(scratch, [CANARY_API_KEY, CANARY_PG_PASSWORD]), about

    if run.stderr is not None:
        assert outcome.stderr == run.stderr, about
    err_lines = outcome.stderr.splitlines()
    for pattern in run.stderr_lines:
        assert any(re.fullmatch(pattern, line) for line in err_lines), (
            f"no stderr line matches {pattern!r}: {about}")
    out_lines = outcome.stdout.splitlines()
    for pattern in run.stdout_lines:
        assert any(re.fullmatch(pattern, line) for line in out_lines), (
            f"no stdout line matches {pattern!r}: {about}")
    for text in run.excludes:
        assert text not in both, f"{text!r} in the output: {about}"

    if run.markdown_safe:
        problems = markdown_problems(outcome.stdout)
        assert not problems, f"unsafe Markdown {problems}: {about}"

    after = _snapshot(workspace)
    written = sorted(set(after) - set(before))
    changed = sorted(p for p in before if p in after and after[p] != before[p])
    allowed = [re.compile(p) for p in run.writes]
    unexpected = [p for p in written if not any(a.fullmatch(p) for a in allowed)]
    assert not unexpected and not changed, (
        f"files written {unexpected}, changed {changed}: {about}")
    return outcome


# --- Markdown: what GitHub would render ----------------------------------------------------

# The tags a plan comment is made of; anything else came from data.
REPORT_TAGS = {"h3", "p", "strong", "table", "thead", "tbody", "tr", "th", "td", "details",
               "summary", "code", "pre", "sub", "ul", "li", "em", "br", "hr", "blockquote"}
_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9-]+)?")
# GitHub links `#123`, `owner/repo#123` and `GH-123` in text nodes outside code and links,
# after character references are decoded (`&#35;1` is `#1` there).
_REFERENCE = re.compile(r"#[0-9]+|(?i:\bgh-[0-9]+)")


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.cells: list[int] = []  # cells per table row
        self.links: list[str] = []
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("code", "pre"):
            self._code += 1
        elif tag == "tr":
            self.cells.append(0)
        elif tag in ("td", "th") and self.cells:
            self.cells[-1] += 1
        elif tag in ("a", "img"):
            self.links.append(str(dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.tags.append("/" + tag)
        if tag in ("code", "pre"):
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if not self._code:
            self.text.append(data)


def markdown_problems(markdown: str) -> list[str]:
    """What in `markdown`, rendered by GitHub's parser with raw HTML allowed, did not come
    from the report: foreign tags, links, images, mentions, issue references, controls,
    unbalanced <details>, table rows of another width than their header."""
    import cmarkgfm
    from cmarkgfm.cmark import Options

    html = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    parsed = _Html()
    parsed.feed(html)
    problems = [f"tag <{t}>" for t in sorted({t.lstrip("/") for t in parsed.tags} - REPORT_TAGS)]
    problems += [f"link {link}" for link in parsed.links]
    text = "".join(parsed.text)
    problems += [f"mention {m}" for m in _MENTION.findall(text)]
    problems += [f"issue reference {m}" for m in _REFERENCE.findall(text)]
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", html):
        problems.append("control or bidi character in the HTML")
    if parsed.tags.count("details") != parsed.tags.count("/details"):
        problems.append("unbalanced <details>")
    tables = re.findall(r"<table>.*?</table>", html, flags=re.S)
    for table in tables:
        t = _Html()
        t.feed(table)
        if len(set(t.cells)) > 1:
            problems.append(f"table rows of different widths {t.cells}")
    return problems
