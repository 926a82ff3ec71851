"""The GitHub workflows in .github/workflows/, checked as far as can be done without GitHub.

Valid against SchemaStore's workflow schema; every action pinned to a commit recorded with its
version and inputs (tests/github/); the jobs the README's "Pull-request workflow" section
describes: the unit and policy tests on pull requests, previews of the deployed stacks with the
policy pack commented on the pull request, deploys per environment on the main branch, the
nightly drift check; least-privilege permissions; every secret and variable documented.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.programrun import stack_names

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
REFERENCE_DIR = ROOT / "tests" / "github"
README = ROOT / "README.md"
README_SECTION = "Pull-request workflow"

# The README's unit and policy test command; the pull-request workflow runs exactly this.
TEST_COMMAND = ".venv/bin/python -m pytest tests/unit tests/policies"
FULL_SUITE_COMMAND = "sudo -E bash .ci/run"
# The stacks users deploy; the offline* stacks are the integration suite's and have no state.
DEPLOYED_STACKS = ("dev", "prod")
PULUMI_ACTION = "pulumi/actions"
PACK_DIR = "policies"
# Pulumi.yaml defaults to file://~, an empty local state on a runner: every Pulumi job must
# name the shared backend.
BACKEND_ENV = "PULUMI_BACKEND_URL"
# Provided by GitHub to every run; nothing to document.
BUILTIN_SECRETS = frozenset({"GITHUB_TOKEN"})

MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}")
CONTEXT_REF = re.compile(r"\b(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(?:#\s*(\S+))?\s*$")
FULL_SHA = re.compile(r"[0-9a-f]{40}")

Document = dict[str, Any]


@dataclass(frozen=True)
class Step:
    workflow: str
    job_id: str
    job: Mapping[str, Any]
    step: Mapping[str, Any]

    @property
    def action(self) -> str:
        """owner/repo of a `uses:` step, '' for a `run:` step."""
        return str(self.step.get("uses", "")).partition("@")[0]

    @property
    def inputs(self) -> Mapping[str, Any]:
        return dict(self.step.get("with") or {})


@dataclass(frozen=True)
class PulumiRun:
    """One pulumi/actions invocation for one matrix entry, `${{ matrix.* }}` substituted."""

    workflow: str
    job_id: str
    job: Mapping[str, Any]
    inputs: Mapping[str, Any]
    runs_on: tuple[str, ...]

    @property
    def stack(self) -> str:
        return str(self.inputs["stack-name"])

    @property
    def command(self) -> str:
        return str(self.inputs["command"])


def load_workflow_text(text: str) -> Document:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    # PyYAML reads YAML 1.1, where a bare `on` is the boolean true; GitHub reads the key "on".
    if True in document:
        document["on"] = document.pop(True)
    return document


def workflow_paths() -> list[Path]:
    return sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])


def load_workflows() -> dict[str, Document]:
    return {p.name: load_workflow_text(p.read_text()) for p in workflow_paths()}


def triggers(document: Document) -> dict[str, Any]:
    on = document["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {event: None for event in on}
    return dict(on)


def workflow_on(workflows: Mapping[str, Document], event: str) -> tuple[str, Document]:
    found = [(name, doc) for name, doc in workflows.items() if event in triggers(doc)]
    assert len(found) == 1, (
        f"expected one workflow triggered by {event}, got {[n for n, _ in found]}"
    )
    return found[0]


def steps(workflows: Mapping[str, Document]) -> Iterator[Step]:
    for name, document in workflows.items():
        for job_id, job in document["jobs"].items():
            for step in job.get("steps", []):
                yield Step(name, job_id, job, step)


def matrix_entries(job: Mapping[str, Any]) -> list[dict[str, str]]:
    """The matrix combinations of a job; the workflows use `include:` lists only."""
    matrix = (job.get("strategy") or {}).get("matrix")
    if matrix is None:
        return [{}]
    assert set(matrix) == {"include"}, f"matrix other than an include list: {matrix}"
    return [{k: str(v) for k, v in entry.items()} for entry in matrix["include"]]


def substitute(value: Any, entry: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    return MATRIX_REF.sub(lambda m: entry[m.group(1)], value)


def runner_labels(job: Mapping[str, Any], entry: Mapping[str, str]) -> tuple[str, ...]:
    runs_on = job["runs-on"]
    labels = [runs_on] if isinstance(runs_on, str) else list(runs_on)
    return tuple(substitute(label, entry) for label in labels)


def pulumi_runs(workflows: Mapping[str, Document]) -> list[PulumiRun]:
    runs = []
    for step in steps(workflows):
        if step.action != PULUMI_ACTION:
            continue
        for entry in matrix_entries(step.job):
            runs.append(
                PulumiRun(
                    step.workflow,
                    step.job_id,
                    step.job,
                    {k: substitute(v, entry) for k, v in step.inputs.items()},
                    runner_labels(step.job, entry),
                )
            )
    return runs


def job_runs(job: Mapping[str, Any]) -> list[str]:
    return [str(s.get("run", "")).strip() for s in job.get("steps", [])]


def upstream_jobs(jobs: Mapping[str, Any], job_id: str) -> set[str]:
    needs = jobs[job_id].get("needs", [])
    direct = {needs} if isinstance(needs, str) else set(needs)
    return direct.union(*(upstream_jobs(jobs, n) for n in direct))


def pack_config(stack: str) -> str:
    """The pack config file a stack's runs pass, as test_program_graph.py uses it."""
    path = ROOT / PACK_DIR / "config" / f"{stack}.json"
    return str(path.relative_to(ROOT)) if path.exists() else ""


def reference(name: str) -> Any:
    return json.loads((REFERENCE_DIR / name).read_text())


def readme_section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        pytest.fail(
            f'README.md has no "## {title}" section: it documents the workflows, their secrets '
            "and variables, and the self-hosted runners, which these tests check."
        )
    return match.group(1)


def documented_names(section: str) -> dict[str, str]:
    """`NAME` → kind (secret or variable) from the section's table rows."""
    names = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[1] in ("secret", "variable"):
            name = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", cells[0])
            assert name, f"table row without a `NAME` in its first cell: {line}"
            names[name.group(1)] = cells[1]
    return names


def schema_errors(document: Document) -> list[str]:
    schema = reference("github-workflow.json")
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = validator_class(schema).iter_errors(document)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


@pytest.fixture(scope="module")
def workflows() -> dict[str, Document]:
    found = load_workflows()
    assert found, f"no workflow in {WORKFLOWS_DIR}"
    return found


# --- parsing and schema ---------------------------------------------------------------------


def test_on_is_read_as_the_trigger_key_not_as_true() -> None:
    document = load_workflow_text("on:\n  pull_request:\njobs: {}\n")
    assert triggers(document) == {"pull_request": None}
    assert sorted(document) == ["jobs", "on"]


def test_every_workflow_is_valid_against_the_github_workflow_schema(
    workflows: dict[str, Document],
) -> None:
    for name, document in workflows.items():
        assert schema_errors(document) == [], name


def test_the_schema_refuses_a_broken_workflow() -> None:
    broken = load_workflow_text(
        "on: pull_request\n"
        "jobs:\n"
        "  tests:\n"
        "    runs_on: ubuntu-24.04\n"  # `runs-on` misspelt
        "    steps:\n"
        "      - run: true\n"
        "permissions:\n"
        "  pull-requests: maybe\n"
    )
    errors = schema_errors(broken)
    assert any(e.startswith("jobs/tests") for e in errors), errors
    assert any(e.startswith("permissions") for e in errors), errors


def test_one_workflow_per_trigger(workflows: dict[str, Document]) -> None:
    workflow_on(workflows, "pull_request")
    workflow_on(workflows, "push")
    workflow_on(workflows, "schedule")
    assert not any("pull_request_target" in triggers(d) for d in workflows.values()), (
        "pull_request_target runs a fork's code with the repository's secrets"
    )


# --- actions: pinned, real inputs -----------------------------------------------------------


def test_every_action_is_pinned_to_the_recorded_commit_and_version() -> None:
    pins = reference("actions.json")
    seen = set()
    for path in workflow_paths():
        for line in path.read_text().splitlines():
            match = USES_LINE.match(line)
            if not match or match.group(1).startswith("./"):
                continue
            action, _, ref = match.group(1).partition("@")
            assert action in pins, f"{path.name}: {action} is not recorded in actions.json"
            assert FULL_SHA.fullmatch(ref), f"{path.name}: {action}@{ref} is not a commit"
            assert ref == pins[action]["commit"], f"{path.name}: {action}@{ref}"
            assert match.group(2) == pins[action]["version"], (
                f"{path.name}: {action}@{ref} must say its version, # {pins[action]['version']}"
            )
            seen.add(action)
    assert seen == set(pins), "actions.json records only the actions the workflows use"


def test_every_uses_line_is_read_by_the_pin_check(workflows: dict[str, Document]) -> None:
    parsed = sorted(str(s.step["uses"]) for s in steps(workflows) if "uses" in s.step)
    lines = sorted(
        m.group(1)
        for p in workflow_paths()
        for m in map(USES_LINE.match, p.read_text().splitlines())
        if m
    )
    assert parsed == lines


def test_with_keys_are_inputs_of_the_pinned_action_version(
    workflows: dict[str, Document],
) -> None:
    pins = reference("actions.json")
    for step in steps(workflows):
        if step.action:
            unknown = set(step.inputs) - set(pins[step.action]["inputs"])
            assert not unknown, f"{step.workflow} {step.job_id}: {step.action} has no {unknown}"


def test_the_recorded_pulumi_action_has_the_inputs_the_workflows_rely_on() -> None:
    inputs = set(reference("actions.json")[PULUMI_ACTION]["inputs"])
    assert {
        "command",
        "stack-name",
        "comment-on-pr",
        "policyPacks",
        "policyPackConfigs",
        "cloud-url",
        "refresh",
        "expect-no-changes",
    } <= inputs
    # Spellings from other tools or older guesses that the action would ignore.
    assert not {"policy-packs", "stack", "working-directory", "expectNoChanges"} & inputs


def test_checkouts_leave_no_token_behind(workflows: dict[str, Document]) -> None:
    checkouts = [s for s in steps(workflows) if s.action == "actions/checkout"]
    assert checkouts
    for step in checkouts:
        assert step.inputs.get("persist-credentials") is False, f"{step.workflow} {step.job_id}"


def test_python_is_3_11_with_the_pip_cache_keyed_on_both_requirement_files(
    workflows: dict[str, Document],
) -> None:
    setups = [s for s in steps(workflows) if s.action == "actions/setup-python"]
    jobs = {(s.workflow, s.job_id) for s in steps(workflows)}
    assert {(s.workflow, s.job_id) for s in setups} == jobs, "every job sets up Python"
    for step in setups:
        assert step.inputs["python-version"] == "3.11"
        assert step.inputs["cache"] == "pip"
        assert set(str(step.inputs["cache-dependency-path"]).split()) == {
            "requirements.txt",
            f"{PACK_DIR}/requirements.txt",
        }


# --- pull requests --------------------------------------------------------------------------


def test_pull_requests_run_the_readme_unit_and_policy_test_command(
    workflows: dict[str, Document],
) -> None:
    name, document = workflow_on(workflows, "pull_request")
    runs = [str(s.step.get("run", "")) for s in steps({name: document})]
    assert TEST_COMMAND in [r.strip() for r in runs]
    install = next(r for r in runs if "pip install" in r)
    assert "python -m venv .venv" in install
    assert ".venv/bin/pip install -r requirements.txt -r policies/requirements.txt" in install
    assert runs.index(install) < [r.strip() for r in runs].index(TEST_COMMAND)
    assert TEST_COMMAND in readme_section(README.read_text(), README_SECTION)


def test_pull_requests_preview_each_deployed_stack_with_the_pack_and_comment(
    workflows: dict[str, Document],
) -> None:
    name, document = workflow_on(workflows, "pull_request")
    previews = pulumi_runs({name: document})
    assert sorted(r.stack for r in previews) == sorted(DEPLOYED_STACKS)
    assert set(DEPLOYED_STACKS) <= set(stack_names()), "every previewed stack has its file"
    for run in previews:
        assert run.command == "preview"
        assert run.inputs["comment-on-pr"] is True
        assert run.inputs["policyPacks"] == PACK_DIR
        assert run.inputs.get("policyPackConfigs", "") == pack_config(run.stack), run.stack
        # A hosted runner has no access to the stack's engine: nothing live is read.
        assert not run.inputs.get("refresh", False)
        assert "self-hosted" not in run.runs_on
        # The preview waits for the tests and skips forks, which get no secrets.
        assert run.job["needs"] == "tests"
        assert "head.repo.full_name == github.repository" in run.job["if"]


def test_the_packs_virtualenv_and_the_programs_are_installed_before_pulumi_runs(
    workflows: dict[str, Document],
) -> None:
    for run in pulumi_runs(workflows):
        commands = "\n".join(str(s.get("run", "")) for s in run.job["steps"])
        # The virtualenvs Pulumi.yaml and policies/PulumiPolicy.yaml name.
        assert ".venv/bin/pip install -r requirements.txt" in commands
        assert "python -m venv policies/venv" in commands
        assert "policies/venv/bin/pip install -r policies/requirements.txt" in commands


def test_a_new_push_cancels_the_pull_requests_previous_run(
    workflows: dict[str, Document],
) -> None:
    _, document = workflow_on(workflows, "pull_request")
    assert document["concurrency"]["cancel-in-progress"] is True
    assert "github.event.pull_request.number" in document["concurrency"]["group"]


# --- main branch ----------------------------------------------------------------------------


def test_main_runs_the_same_tests_and_the_full_suite_before_deploying(
    workflows: dict[str, Document],
) -> None:
    name, document = workflow_on(workflows, "push")
    assert triggers(document)["push"] == {"branches": ["main"]}
    runs = [str(s.step.get("run", "")).strip() for s in steps({name: document})]
    assert TEST_COMMAND in runs
    assert FULL_SUITE_COMMAND in runs
    jobs = document["jobs"]
    full_suite = next(j for j in jobs if any(FULL_SUITE_COMMAND == r for r in job_runs(jobs[j])))
    for run in pulumi_runs({name: document}):
        assert full_suite in upstream_jobs(jobs, run.job_id), run.job_id


def assert_guarded_on_its_runner(run: PulumiRun, stack: str) -> None:
    """A deployed stack's run: the policy pack with the stack's config, on the self-hosted
    runner labelled for the stack (the docker provider drives the engine of the machine
    running Pulumi)."""
    assert run.inputs["policyPacks"] == PACK_DIR
    assert run.inputs.get("policyPackConfigs", "") == pack_config(stack), stack
    assert "self-hosted" in run.runs_on and f"patroni-citus-{stack}" in run.runs_on


def test_main_deploys_each_stack_in_its_environment_on_its_own_runner(
    workflows: dict[str, Document],
) -> None:
    name, document = workflow_on(workflows, "push")
    ups = {r.stack: r for r in pulumi_runs({name: document})}
    assert set(ups) == set(DEPLOYED_STACKS)
    for stack, run in ups.items():
        assert run.command == "up"
        assert_guarded_on_its_runner(run, stack)
        assert run.job["environment"] == stack
        # Serialised per stack; a running update is never cancelled.
        assert run.job["concurrency"]["group"].endswith(stack)
        assert run.job["concurrency"]["cancel-in-progress"] is False
    groups = [r.job["concurrency"]["group"] for r in ups.values()]
    assert len(set(groups)) == len(groups)
    assert ups["dev"].job_id in upstream_jobs(document["jobs"], ups["prod"].job_id)


# --- schedule -------------------------------------------------------------------------------


def test_a_schedule_checks_every_deployed_stack_for_drift_on_its_runner(
    workflows: dict[str, Document],
) -> None:
    name, document = workflow_on(workflows, "schedule")
    checks = {r.stack: r for r in pulumi_runs({name: document})}
    assert set(checks) == set(DEPLOYED_STACKS)
    for stack, run in checks.items():
        assert run.command == "preview"
        assert run.inputs["refresh"] is True
        assert run.inputs["expect-no-changes"] is True
        assert_guarded_on_its_runner(run, stack)
        # An approval per night would be noise; the deploy environments are not used.
        assert "environment" not in run.job
    deploy_groups = {
        r.job["concurrency"]["group"] for r in pulumi_runs(workflows) if r.command == "up"
    }
    drift_groups = {
        substitute(r.job["concurrency"]["group"], {"stack": r.stack}) for r in checks.values()
    }
    # A queued drift check must never cancel a deploy waiting in the same group.
    assert not deploy_groups & drift_groups


# --- every Pulumi run -----------------------------------------------------------------------


def test_every_pulumi_run_names_the_shared_backend(workflows: dict[str, Document]) -> None:
    for run in pulumi_runs(workflows):
        env = run.job["env"]
        assert f"vars.{BACKEND_ENV}" in env[BACKEND_ENV], run.job_id
        assert run.inputs["cloud-url"] == f"${{{{ env.{BACKEND_ENV} }}}}", run.job_id
        assert env["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
        assert env["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"


def test_permissions_are_least_privilege(workflows: dict[str, Document]) -> None:
    for name, document in workflows.items():
        assert document["permissions"] == {"contents": "read"}, name
        for job_id, job in document["jobs"].items():
            comments = any(
                (s.get("with") or {}).get("comment-on-pr") is True for s in job.get("steps", [])
            )
            expected = {"contents": "read", "pull-requests": "write"} if comments else None
            assert job.get("permissions") == expected, f"{name} {job_id}"


# --- documentation --------------------------------------------------------------------------


def test_every_secret_and_variable_is_documented_in_the_readme_section() -> None:
    used: dict[str, str] = {}
    for path in workflow_paths():
        for kind, ref in CONTEXT_REF.findall(path.read_text()):
            if ref not in BUILTIN_SECRETS:
                used[ref] = "secret" if kind == "secrets" else "variable"
    assert used, "the workflows use the backend's secrets and variable"
    documented = documented_names(readme_section(README.read_text(), README_SECTION))
    assert documented == used


def test_every_self_hosted_runner_label_is_documented(workflows: dict[str, Document]) -> None:
    section = readme_section(README.read_text(), README_SECTION)
    labels = {
        label
        for run in pulumi_runs(workflows)
        if "self-hosted" in run.runs_on
        for label in run.runs_on
        if label not in ("self-hosted", "linux")
    }
    assert labels == {f"patroni-citus-{stack}" for stack in DEPLOYED_STACKS}
    for label in labels:
        assert f"`{label}`" in section, label


def test_the_readme_section_parser_reports_a_missing_section() -> None:
    with pytest.raises(pytest.fail.Exception, match='no "## Pull-request workflow" section'):
        readme_section("# Title\n\n## Quick start\n", README_SECTION)
    text = "## Pull-request workflow\n| `A` | secret | x |\n| `B` | variable | y |\n## Next\n"
    assert documented_names(readme_section(text, README_SECTION)) == {
        "A": "secret",
        "B": "variable",
    }
