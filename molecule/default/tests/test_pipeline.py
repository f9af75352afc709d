"""The whole pipeline converged for real on the default host.

Checks the host (services, endpoint, datasets, trained model) and the run
reports the run_report callback wrote for the converge and idempotence runs.
"""

import glob
import json
import os
import re

import pytest

PIPELINE_STEPS = [
    "Initialise and hold the InstructLab configuration",
    "Place the model",
    "Serve the teacher model",
    "Deploy the taxonomy",
    "Generate synthetic data",
    "Train",
    "Serve the trained model",
    "Health check with a chat smoke test",
]
PROVISION_ROLES = ["labforge.instructlab.python", "labforge.instructlab.nvidia_driver",
                   "labforge.instructlab.instructlab"]


def _reports():
    pattern = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "reports", "run-*.json")
    paths = sorted(glob.glob(pattern), key=os.path.getmtime)
    reports = [json.load(open(p, encoding="utf-8")) for p in paths]
    return [r for r in reports if "converge.yml" in " ".join(r["run"].get("playbooks", []))]


@pytest.fixture(scope="module")
def reports():
    found = _reports()
    assert len(found) >= 2, "expected the converge and idempotence run reports, found %d" % len(found)
    return found


def _artifact(host_report, key):
    for art in host_report.get("artifacts", []):
        if key in art:
            yield art[key]


def test_services_enabled_and_running(host):
    for unit in ("labforge-ilab-serve-teacher.service", "labforge-ilab-serve-main.service"):
        svc = host.service(unit)
        assert svc.is_enabled, unit
        assert svc.is_running, unit


def test_endpoint_answers(host):
    out = host.check_output("python3 -c \"import urllib.request,sys; "
                            "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:8000/v1/models', timeout=10).read().decode())\"")
    models = json.loads(out)
    assert models["data"], out


def test_serve_units_exposure(host):
    """`systemd-analyze security` of the rendered serve units: exposure at most 2.5 (printed)."""
    for unit in ("labforge-ilab-serve-teacher.service", "labforge-ilab-serve-main.service"):
        out = host.check_output("systemd-analyze security --no-pager %s" % unit)
        level = re.search(r"Overall exposure level for \S+: ([0-9.]+) \S+", out)
        assert level, out[-2000:]
        print(level.group(0))
        assert float(level.group(1)) <= 2.5, out


def test_ilab_on_service_user_path(host):
    out = host.check_output("runuser -l instructlab -s /bin/bash -c 'ilab --version'")
    assert "0.26.1" in out


def test_first_run_report_lists_every_step(reports):
    first = reports[0]
    assert first["run"]["status"] == "ok"
    (name, hrep), = first["hosts"].items()
    tasks = [s["task"] for s in hrep["steps"]]
    for step in PIPELINE_STEPS:
        assert any(t.startswith(step) for t in tasks), "step %r missing from the report" % step
    roles = {s.get("role") for s in hrep["steps"]}
    for role in PROVISION_ROLES:
        assert role in roles or role.rsplit(".", maxsplit=1)[-1] in roles, role
    assert hrep["endpoint"].startswith("http://127.0.0.1:8000")
    assert hrep["versions"]["instructlab"] == "0.26.1"


def test_dataset_and_trained_model_exist(host, reports):
    (name, hrep), = reports[0]["hosts"].items()
    rows = list(_artifact(hrep, "rows"))
    assert rows and all(v for v in rows[0].values()), rows
    gguf = list(_artifact(hrep, "gguf_path"))
    assert gguf, "no trained GGUF in the report"
    assert host.file(gguf[0]).is_file and host.file(gguf[0]).size > 100000
    final_loss = list(_artifact(hrep, "final_loss"))
    assert final_loss and final_loss[0] is not None
    for dataset_dir in _artifact(hrep, "dataset_dir"):
        assert host.file(dataset_dir).is_directory


def test_second_run_changed_nothing(reports):
    second = reports[-1]
    (name, hrep), = second["hosts"].items()
    changed = [s["task"] for s in hrep["steps"] if s["status"] == "changed"]
    assert changed == []


def test_second_run_started_no_chat_and_no_taxonomy_check(reports):
    """A rerun that changes nothing generates no chat text (the served model did not change)
    and validates no taxonomy file again (the validation is remembered by fingerprint)."""
    second = reports[-1]
    (name, hrep), = second["hosts"].items()
    chat = [s["status"] for s in hrep["steps"] if s["task"].startswith("Health check with a chat smoke test")]
    assert chat == ["skipped"], chat
    validations = list(_artifact(hrep, "validation"))
    assert validations == ["cached"], validations
