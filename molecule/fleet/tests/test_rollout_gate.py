"""The rollout gate on the fleet (issue 17; roles/pipeline/README.md, "The rollout gate").

lf-fleet-a's gate (host_vars/lf-fleet-a.yml, labforge_rollout_gate) is mmlu_branch on the local
taxonomy's haiku questions, evaluated on lf-fleet-b (the trainer) - offline, on CPU:

* the gate the model passes (converge): the model trained on lf-fleet-b was rolled out, and the
  rollout record names its checkpoint there (what the next gate evaluates as the model in service);
* a gate it cannot pass (the same gate with min_score 1.01, above the maximum score 1.0):
  the previous model keeps serving, and the run report shows both scores;
* a rerun evaluates nothing (the scores are cached by fingerprint).

A second training to make a new candidate costs too much here, so for the impossible gate the
record's `trained` entry names the untrained student (the model lf-fleet-b started from, on
lf-fleet-b's disk) as the checkpoint in service: the gate then compares two different
checkpoints in one mmlu_branch run; the served GGUF itself is not touched, and the record is put
back afterwards.
"""

import base64
import glob
import json
import os
import subprocess

import pytest
import testinfra
import yaml

SERVER, TRAINER = "lf-fleet-a", "lf-fleet-b"
RECORD = "/var/lib/labforge/rollout/serving-main.json"
EVALUATIONS = "/var/lib/instructlab/.local/share/instructlab/evaluations"
MODELS = "/var/lib/instructlab/.cache/instructlab/models"
HOST_VARS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host_vars", "lf-fleet-a.yml")


@pytest.fixture(scope="module")
def server():
    return testinfra.get_host("podman://" + SERVER)


@pytest.fixture(scope="module")
def trainer():
    return testinfra.get_host("podman://" + TRAINER)


def _once(host):
    """Run a fleet-wide test once (the host fixture runs every test per host)."""
    if host.backend.get_hostname() != SERVER:
        pytest.skip("checked once, from the server")


def _manifests(trainer):
    """The manifests of the rollout gate's evaluations on the trainer."""
    return json.loads(trainer.check_output(
        "python3 -c \"import glob,json,sys; json.dump([json.load(open(p)) for p in "
        "sorted(glob.glob('%s/rollout-gate-*/labforge-manifest.json'))], sys.stdout)\"" % EVALUATIONS))


def _converge_reports():
    paths = sorted(glob.glob(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "reports", "run-*.json")))
    reports = [json.load(open(p, encoding="utf-8")) for p in paths]
    return [r for r in reports if "converge.yml" in " ".join(r["run"].get("playbooks", []))]


def test_the_passing_gate_rolled_the_trained_model_out(host, server, trainer):
    _once(host)
    record = json.loads(server.check_output("cat %s" % RECORD))
    trained = record.get("trained") or {}
    assert trained.get("host") == TRAINER, record
    # the checkpoint in service, on the trainer, as ilab model evaluate takes it
    files = trainer.check_output("ls %s" % trained["hf_path"]).split()
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(files), files
    scored = [m for m in _manifests(trainer) if m.get("model") == trained["hf_path"]]
    assert scored and all(m["benchmark"] == "mmlu_branch" and m["score"] is not None for m in scored), scored
    first = _converge_reports()[0]
    decision = first["hosts"][SERVER]["facts"]["labforge_rollout_gate_result"]
    assert decision["rollout"] is True and decision["score"] is not None, decision


def _run_pipeline(gate, report_dir):
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACKS_ENABLED="labforge.instructlab.run_report",
               LABFORGE_REPORT_DIR=report_dir)
    proc = subprocess.run(
        ["ansible-playbook", "-i", inventory, "labforge.instructlab.pipeline", "--limit", "%s,%s" % (SERVER, TRAINER),
         "-e", json.dumps({"labforge_rollout_gate": gate})],
        capture_output=True, text=True, timeout=1800, check=False, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    with open(os.path.join(report_dir, "latest.json"), encoding="utf-8") as f:
        return out, json.load(f)


def _gate_step(report):
    host = report["hosts"][SERVER]
    steps = [a for a in host["artifacts"] if a["action"].endswith("ilab_model_evaluate")]
    assert len(steps) == 1, host["artifacts"]
    return steps[0], host["facts"]["labforge_rollout_gate_result"]


def test_an_impossible_gate_keeps_the_previous_model_and_a_rerun_evaluates_nothing(host, server, trainer, tmp_path):
    _once(host)
    with open(HOST_VARS, encoding="utf-8") as f:
        impossible = dict(yaml.safe_load(f)["labforge_rollout_gate"], min_score=1.01)
    saved = server.check_output("cat %s" % RECORD)
    record = json.loads(saved)
    student = trainer.check_output(
        "find %s -mindepth 2 -maxdepth 2 -path '*student-tiny-llama*' -name tokenizer.json -printf '%%h\\n'" % MODELS)
    student = student.splitlines()[0]
    assert student != record["trained"]["hf_path"]
    unit_before = server.check_output("systemctl cat labforge-ilab-serve-main.service")
    models_before = server.check_output(
        "python3 -c \"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
        "'http://127.0.0.1:8000/v1/models', timeout=10).read().decode())\"")
    in_service = dict(record, trained=dict(record["trained"], hf_path=student))
    _write_record(server, json.dumps(in_service, indent=4) + "\n")
    try:
        out, report = _run_pipeline(impossible, str(tmp_path / "first"))
        step, decision = _gate_step(report)
        assert step["status"] == "changed" and step["benchmark"] == "mmlu_branch", step
        assert (step["model"], step["base_model"]) == (record["trained"]["hf_path"], student), step
        # both scores, side by side, in the report and in the run's own words
        assert step["score"] == decision["score"] and step["base_score"] == decision["current_score"], (step, decision)
        assert decision["rollout"] is False and "below the minimum 1.01" in decision["reason"], decision
        assert "NOT rolled out to %s" % SERVER in out and "The previous model keeps serving." in out, out[-5000:]
        assert "labforge_rollout_gate_result" in open(os.path.join(str(tmp_path / "first"), "latest.md")).read()
        # the previous model keeps serving: same record, same unit, same model listed
        assert json.loads(server.check_output("cat %s" % RECORD)) == in_service
        assert server.check_output("systemctl cat labforge-ilab-serve-main.service") == unit_before
        assert server.service("labforge-ilab-serve-main.service").is_running
        assert server.check_output(
            "python3 -c \"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
            "'http://127.0.0.1:8000/v1/models', timeout=10).read().decode())\"") == models_before
        # a rerun evaluates nothing: the stored scores decide the same
        evaluations = trainer.check_output("ls %s" % EVALUATIONS)
        _out, again = _run_pipeline(impossible, str(tmp_path / "again"))
        step2, decision2 = _gate_step(again)
        assert step2["status"] == "ok" and step2["fingerprint"] == step["fingerprint"], step2
        assert decision2 == decision
        assert trainer.check_output("ls %s" % EVALUATIONS) == evaluations
    finally:
        _write_record(server, saved)


def _write_record(server, text):
    data = base64.b64encode(text.encode()).decode()
    server.check_output(
        "python3 -c \"import base64,os; p='%s'; t=p+'.tmp'; open(t,'wb').write(base64.b64decode('%s')); "
        "os.chmod(t,0o600); os.replace(t,p)\"" % (RECORD, data))
