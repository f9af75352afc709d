"""The fleet converged: the teacher served the trainers, the server serves
the model trained on lf-fleet-b (the original recipe's `--pipeline full
--device cpu`), and the trainers trained."""

import json
import os
import subprocess

import pytest
import testinfra


def test_roles_of_each_host(host):
    name = host.backend.get_hostname()
    serve_units = host.check_output("systemctl list-units --all --plain --no-legend 'labforge-ilab-serve-*' || true")
    if name == "lf-fleet-a":
        assert "labforge-ilab-serve-teacher.service" in serve_units
        assert "labforge-ilab-serve-main.service" in serve_units
        assert host.service("labforge-ilab-serve-main.service").is_enabled
        out = host.check_output("python3 -c \"import urllib.request,sys; sys.stdout.write("
                                "urllib.request.urlopen('http://127.0.0.1:8000/v1/models', timeout=10).read().decode())\"")
        assert json.loads(out)["data"]
    else:
        assert "labforge-ilab-serve" not in serve_units
        ggufs = host.check_output(
            "find /var/lib/instructlab/.local/share/instructlab/trained -name '*.gguf'").split()
        assert ggufs, "no trained model on %s" % name


def test_teacher_listens_for_the_fleet(host):
    if host.backend.get_hostname() == "lf-fleet-a":
        assert host.socket("tcp://0.0.0.0:8100").is_listening


def test_llama_cpp_compiled_at_most_once_in_the_fleet(wheelhouse_compiled_once):
    wheels = wheelhouse_compiled_once(["lf-fleet-a", "lf-fleet-b", "lf-fleet-c"])
    assert "llama-cpp-python" in wheels


def test_wrong_teacher_address_fails_before_generating(host):
    """The pipeline with a wrong teacher address stops at the reachability
    check, naming the trainer, the URL and the reason, before generating."""
    if host.backend.get_hostname() != "lf-fleet-b":
        pytest.skip("run once, on one trainer")
    url = "http://lf-fleet-nowhere:8100/v1"
    generate_logs = "ls -l --time-style=full-iso /var/lib/instructlab/.local/state/labforge/logs/ilab-data-generate-*"
    before = host.check_output(generate_logs)
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    proc = subprocess.run(
        ["ansible-playbook", "-i", inventory, "labforge.instructlab.pipeline", "--limit", "lf-fleet-b",
         "-e", "labforge_teacher_endpoint=" + url],
        capture_output=True, text=True, timeout=600, check=False,
        env=dict(os.environ, ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_NOCOLOR="1"))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert ("lf-fleet-b cannot reach the teacher at %s: the name lf-fleet-nowhere does not resolve" % url) in out, out
    assert "TASK [Generate synthetic data" not in out, out
    assert host.check_output(generate_logs) == before, "a generate log changed: generation started"


def test_server_serves_the_full_pipelines_model_and_it_answers(host):
    """The original recipe's training (`ilab model train --pipeline full --device cpu`, on
    lf-fleet-b) reaches the server: what lf-fleet-a serves is the GGUF InstructLab wrote
    beside the epoch's checkpoint, and it answers a chat request."""
    if host.backend.get_hostname() != "lf-fleet-a":
        pytest.skip("checked from the server")
    trainer = testinfra.get_host("podman://lf-fleet-b")
    found = trainer.check_output(
        "find /var/lib/instructlab/.local/share/instructlab/trained -path '*/hf_format/samples_*' -name '*.gguf' "
        "-exec sha256sum {} +").splitlines()
    names = sorted(os.path.basename(line.split()[1]) for line in found)
    assert names == ["pytorch_model-Q4_K_M.gguf", "pytorch_model.gguf"], found
    full_gguf = [line.split()[0] for line in found if line.endswith("/pytorch_model.gguf")][0]
    record = json.loads(host.check_output("cat /var/lib/labforge/rollout/serving-main.json"))
    served = host.check_output("sha256sum %s" % record["model_path"]).split()[0]
    assert served == full_gguf, "the server does not serve lf-fleet-b's full-pipeline GGUF: %s" % record
    out = host.check_output(
        "python3 -c \"import json,urllib.request,sys; base='http://127.0.0.1:8000/v1'; "
        "m=json.load(urllib.request.urlopen(base+'/models', timeout=10))['data'][0]['id']; "
        "req=urllib.request.Request(base+'/chat/completions', json.dumps(dict(model=m, max_tokens=16, "
        "messages=[dict(role='user', content='Write a haiku about the sea.')])).encode(), "
        "{'Content-Type': 'application/json'}); "
        "sys.stdout.write(json.dumps(json.load(urllib.request.urlopen(req, timeout=120))))\"")
    answer = json.loads(out)
    assert answer["choices"] and "message" in answer["choices"][0], answer
