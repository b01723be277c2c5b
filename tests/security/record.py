"""Re-record the expected output of corpus cases after a reviewed change of wording.

    .venv/bin/python -m tests.security.record CASE [CASE...]   # show what would change
    .venv/bin/python -m tests.security.record --write CASE...  # and rewrite expect.yaml

Only the observed exit code and error text are replaced; the commands, bounds, excludes
and Markdown checks stay. A run that crashed (exit 3), timed out, printed a traceback or
was caught by the audit hook is never recorded: that is a bug to fix, not an expectation.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .harness import CANARY_ENV, CORPUS, load_case, materialise, run_cli


def _lines(text: str) -> list[str]:
    return [re.escape(line).replace("\\ ", " ") for line in text.splitlines() if line]


def _observed(run: dict[str, Any], exit_code: int, stdout: str, stderr: str) -> dict[str, Any]:
    new = {k: v for k, v in run.items()
           if k not in ("exit", "stderr", "stderr_lines", "stdout_lines")}
    new["exit"] = exit_code
    if "/tmp/" in stderr or len(stderr) > 20_000:
        new["stderr_lines"] = [re.sub(r"/tmp/[^/']+/", "/.*/", line)
                               for line in _lines(stderr)][:3]
    else:
        new["stderr"] = stderr
    kept = run.get("stdout_lines", [])
    lines = stdout.splitlines()
    if kept and all(any(re.fullmatch(p, line) for line in lines) for p in kept):
        new["stdout_lines"] = kept  # still true: keep what a person chose to check
    elif out := _lines(stdout):
        new["stdout_lines"] = out if exit_code == 1 else out[-1:]
    return new


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def record(name: str, write: bool) -> bool:
    folder = CORPUS / name
    case = load_case(folder)
    spec = yaml.safe_load((folder / "expect.yaml").read_text(encoding="utf-8"))
    scratch = Path(tempfile.mkdtemp(prefix=f"declare-record-{name}-"))
    try:
        workspace = materialise(case, scratch)
        runs = []
        for run, raw in zip(case.runs, spec["runs"], strict=True):
            outcome = run_cli(run.args, workspace, scratch, env={**CANARY_ENV, **case.env},
                              timeout=case.timeout, memory_mb=case.memory_mb)
            both = outcome.stdout + outcome.stderr
            if (outcome.exit in (None, 3) or outcome.audit
                    or "Traceback (most recent call last)" in both):
                print(f"{name}: {run.args} is a bug, not recorded:\n{both[:2000]}"
                      f"{outcome.audit}", file=sys.stderr)
                return False
            runs.append(_observed(raw, outcome.exit, outcome.stdout, outcome.stderr))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if runs == spec["runs"]:
        print(f"{name}: unchanged")
        return True
    spec["runs"] = runs
    text = yaml.dump(spec, Dumper=_NoAliases, sort_keys=False, allow_unicode=False, width=100)
    print(f"{name}: {'rewritten' if write else 'would become'}:\n{text}")
    if write:
        (folder / "expect.yaml").write_text(text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    ok = [record(name, args.write) for name in args.cases]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
