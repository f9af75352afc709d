"""Checks of the cuda install on the simulated A10G host lfgs-1 (after converge
with instructlab_verify_gpu: false)."""

import io
import json
import zipfile

VENV = "/opt/instructlab/venv"
LOG = "/var/log/labforge/instructlab-install.log"


def manifest(host):
    return json.loads(host.file(VENV + "/labforge-manifest.json").content_string)


def needed(host, path):
    out = host.run("readelf -d %s", path)
    assert out.rc == 0, out.stderr
    return [line.split("[", 1)[1].rstrip("]") for line in out.stdout.splitlines() if "(NEEDED)" in line]


def test_cuda_venv_from_the_lock_and_toolkit(host):
    m = manifest(host)
    desired = m["desired"]
    assert desired["accelerator"] == "cuda"
    assert desired["lock"] == "0.26.1/cuda"
    assert desired["cuda_toolkit"] == "12.4.131"
    assert desired["cmake_args"] == "-DGGML_CUDA=on -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined -DGGML_NATIVE=off -DCMAKE_CUDA_ARCHITECTURES=86"
    assert desired["without"] == ["flash-attn"]
    assert m["installed"]["gpu_check"] == "skipped (instructlab_verify_gpu: false)"
    assert m["installed"]["versions"]["torch"] == "2.7.0"
    assert host.file(VENV).linked_to.startswith("/opt/instructlab/venvs/0.26.1-cuda-")


def test_cuda_backend_links_the_cuda_runtime(host):
    """The installed CUDA backend of llama.cpp needs libcudart and libcublas (read from the file)."""
    lib = VENV + "/lib/python3.11/site-packages/llama_cpp/lib/libggml-cuda.so"
    assert host.file(lib).exists
    names = needed(host, lib)
    assert "libcudart.so.12" in names, names
    assert "libcublas.so.12" in names, names
    assert "libcuda.so.1" in names, names
    assert manifest(host)["installed"]["cuda_needed"] == names


def test_cached_wheel_is_the_cuda_build(host):
    """The wheelhouse entry (bind-mounted from $LABFORGE_CACHE/wheelhouse) holds the CUDA wheel."""
    entry = manifest(host)["installed"]["wheels"]["llama-cpp-python"]
    info = json.loads(host.file(entry["dir"] + "/BUILD-INFO.json").content_string)
    assert info["cmake_args"] == "-DGGML_CUDA=on -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined -DGGML_NATIVE=off -DCMAKE_CUDA_ARCHITECTURES=86"
    names = sorted(info["files"])
    assert len(names) == 1 and names[0].startswith("llama_cpp_python-0.3.6-"), names
    wheel = host.file(entry["dir"] + "/" + names[0]).content
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        libs = [n for n in zf.namelist() if n.startswith("llama_cpp/lib/")]
    assert "llama_cpp/lib/libggml-cuda.so" in libs, libs


def test_no_flash_attn_when_left_out(host):
    out = host.run(VENV + "/bin/python -m pip show flash-attn")
    assert out.rc != 0


def test_llama_cuda_build_needs_a_driver_here(host):
    """On this GPU-less host the CUDA build cannot even load: libcuda.so.1 is missing."""
    out = host.run("runuser -u instructlab -- %s/bin/python -c 'import llama_cpp'", VENV)
    assert out.rc != 0
    assert "libcuda.so.1" in out.stdout + out.stderr


def test_the_cuda_wheel_was_compiled_at_most_once(host):
    log = host.file(LOG).content_string
    builds = [line for line in log.splitlines()
              if "BUILD START llama-cpp-python==0.3.6" in line and "GGML_CUDA=on" in line]
    assert len(builds) <= 1, builds
