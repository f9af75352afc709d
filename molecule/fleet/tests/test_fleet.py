"""The fleet converged: the teacher served the trainers, the server serves
the model trained on lf-fleet-b, and the trainers trained."""

import json
import os
import subprocess

import pytest


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
