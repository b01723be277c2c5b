"""Run a GitHub Actions workflow's jobs locally, step by step, as the runner would: each
`run:` step in bash (`bash -e -o pipefail`, as GitHub runs it), with the workflow's, the
job's and the step's `env:` and the runner's own variables (GITHUB_ACTIONS, RUNNER_TEMP,
GITHUB_STEP_SUMMARY, GITHUB_ENV...); a step using this repository's action (action.yml)
runs that action's composite `run:` steps with its inputs. Third-party actions are
emulated where a later step depends on them (`actions/checkout` clones the test's origin
repository) and otherwise skipped, by name, from a fixed list: an unknown action, an
unknown `${{ }}` expression or an unknown `if:` fails the run instead of being ignored.

The action's install step (pip installing the action's checkout) is not run: the test
environment already has this checkout installed, and `.ci/run` builds the package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
OUR_ACTION = re.compile(r"^[\w.-]+/connectly-declare@[\w.-]+$")
SKIPPED_ACTIONS = ("actions/setup-python@", "actions/github-script@",
                   "actions/upload-artifact@")
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_ALWAYS = {"${{ !cancelled() }}", "${{ always() }}"}
_INPUT_SET = re.compile(r"^inputs\.([\w-]+) != ''$")


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def substitute(text: str, context: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in context:
            raise AssertionError(f"the test does not know the expression ${{{{ {name} }}}} "
                                 f"(in {text!r}): teach tests/support/workflow.py")
        return context[name]

    return _EXPRESSION.sub(one, text)


@dataclass
class StepResult:
    name: str
    ran: bool
    returncode: int = 0
    output: str = ""


@dataclass
class JobRun:
    steps: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(s.returncode != 0 for s in self.steps)

    @property
    def output(self) -> str:
        return "\n".join(f"--- {s.name} (exit {s.returncode})\n{s.output}"
                         for s in self.steps if s.ran)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


@dataclass
class Runner:
    """One job's runner: `origin` is the repository `actions/checkout` clones."""

    workflow: dict[str, Any]
    origin: Path
    home: Path
    secrets: Mapping[str, str]
    extra_env: Mapping[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)  # every bash script run, in order

    def run_job(self, name: str, matrix: Mapping[str, str], *, ref: str = "main",
                event: str = "push") -> JobRun:
        job = self.workflow["jobs"][name]
        label = "-".join([name, *matrix.values()])
        base = self.home / f"{label}-{len(list(self.home.iterdir()))}"
        workspace, temp = base / "checkout", base / "temp"
        workspace.mkdir(parents=True)
        temp.mkdir()
        context: dict[str, str] = {f"matrix.{k}": v for k, v in matrix.items()}
        context.update({f"secrets.{k}": v for k, v in self.secrets.items()})
        context.update({"runner.temp": str(temp), "github.run_id": "4242",
                        "github.workspace": str(workspace)})
        env = {k: v for k, v in os.environ.items()
               if k not in ("DECLARE_ENV", "NO_COLOR", "DECLARE_DEBUG", "VIRTUAL_ENV")}
        # The runner's PATH: this test's Python (with connectly-declare installed) first.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update({"CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(temp),
                    "GITHUB_WORKSPACE": str(workspace), "GITHUB_EVENT_NAME": event,
                    "GITHUB_REF": f"refs/heads/{ref}", "GITHUB_RUN_ID": "4242",
                    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
        env.update(self.extra_env)
        for level in (self.workflow.get("env", {}), job.get("env", {})):
            for key, value in level.items():
                value = substitute(str(value), context)
                env[key] = value
                context[f"env.{key}"] = value
        run = JobRun()
        for index, step in enumerate(job["steps"]):
            step_name = step.get("name") or step.get("uses") or f"step {index}"
            condition = step.get("if")
            if condition is not None and condition not in _ALWAYS:
                raise AssertionError(f"the test does not know the condition {condition!r}")
            if run.failed and condition is None:
                run.steps.append(StepResult(step_name, ran=False))
                continue
            run.steps.append(self._step(step, step_name, env, context, workspace, temp, ref))
        return run

    def _step(self, step: Mapping[str, Any], name: str, env: dict[str, str],
              context: dict[str, str], workspace: Path, temp: Path, ref: str) -> StepResult:
        step_env = {**env, **{k: substitute(str(v), context)
                              for k, v in step.get("env", {}).items()}}
        if "run" in step:
            cwd = workspace / substitute(step.get("working-directory", "."), context)
            return self._bash(name, substitute(step["run"], context), cwd, step_env, env, temp)
        uses = str(step["uses"])
        if uses.startswith("actions/checkout@"):
            checkout_ref = (step.get("with") or {}).get("ref", ref)
            done = subprocess.run(["git", "clone", "--quiet", "--branch", checkout_ref,
                                   str(self.origin), str(workspace)], capture_output=True,
                                  text=True, env=step_env, check=False, timeout=120)
            return StepResult(name, True, done.returncode, done.stdout + done.stderr)
        if OUR_ACTION.match(uses):
            return self._our_action(step, name, step_env, env, context, workspace, temp)
        if uses.startswith(SKIPPED_ACTIONS):
            return StepResult(name, ran=False)
        raise AssertionError(f"the test does not know the action {uses!r}")

    def _our_action(self, step: Mapping[str, Any], name: str, step_env: dict[str, str],
                    env: dict[str, str], context: dict[str, str], workspace: Path,
                    temp: Path) -> StepResult:
        action = load(ACTION)
        given = {k: substitute(str(v), context) for k, v in (step.get("with") or {}).items()}
        unknown = set(given) - set(action["inputs"])
        assert not unknown, f"{name}: the action has no input {sorted(unknown)}"
        inputs = {k: str(spec.get("default", "")) for k, spec in action["inputs"].items()}
        inputs.update(given)
        for key, spec in action["inputs"].items():
            assert not spec.get("required") or key in given, f"{name}: {key} is required"
        inner = {**context, **{f"inputs.{k}": v for k, v in inputs.items()},
                 "github.action_path": str(REPO)}
        outputs: list[str] = []
        for sub in action["runs"]["steps"]:
            condition = sub.get("if")
            if condition is not None:
                matched = _INPUT_SET.match(condition)
                assert matched, f"the test does not know the action's condition {condition!r}"
                if not inputs[matched.group(1)]:
                    continue
            if sub.get("id") == "install":
                assert '"$ACTION_PATH"' in sub["run"] and "pip install" in sub["run"]
                continue  # see the module docstring
            if "uses" in sub:
                assert str(sub["uses"]).startswith(SKIPPED_ACTIONS), sub["uses"]
                continue
            sub_env = {**step_env, **{k: substitute(str(v), inner)
                                      for k, v in sub.get("env", {}).items()}}
            cwd = workspace / substitute(sub.get("working-directory", "."), inner)
            result = self._bash(name, substitute(sub["run"], inner), cwd, sub_env, env, temp)
            outputs.append(result.output)
            if result.returncode != 0:
                return StepResult(name, True, result.returncode, "\n".join(outputs))
        return StepResult(name, True, 0, "\n".join(outputs))

    def _bash(self, name: str, script: str, cwd: Path, step_env: dict[str, str],
              job_env: dict[str, str], temp: Path) -> StepResult:
        summary, github_env = temp / "step-summary.md", temp / "github-env"
        github_env.write_text("", encoding="utf-8")
        self.commands.append(script)
        done = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c",
                               script], cwd=cwd, capture_output=True, text=True, timeout=300,
                              env={**step_env, "GITHUB_STEP_SUMMARY": str(summary),
                                   "GITHUB_ENV": str(github_env)}, check=False)
        for line in github_env.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            job_env[key] = value  # later steps of the job see it, as on GitHub
        return StepResult(name, True, done.returncode, done.stdout + done.stderr)
