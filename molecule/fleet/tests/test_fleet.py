"""The fleet converged: the teacher served the trainers, the server serves
the model trained on lf-fleet-b, and the trainers trained."""

import json


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
