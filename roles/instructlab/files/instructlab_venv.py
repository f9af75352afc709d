"""Build, verify and probe an InstructLab venv (part of labforge.instructlab.instructlab).

Usage:
  instructlab_venv.py probe   < request.json   read the real state, change nothing
  instructlab_venv.py wheels PLAN.json          compile the plan's missing wheelhouse entries
                                                (those built with isolation) with the plan's
                                                builder python, then stop
  instructlab_venv.py locked PLAN.json          first part of install: a NEW venv dir with every
                                                locked wheel (runs while `wheels` compiles)
  instructlab_venv.py install PLAN.json         build a NEW venv dir from a plan (continuing
                                                from `locked` when that part is done)

Standard library only (runs with the target Python 3.11). The last line of
stdout is a JSON object for the role; everything the tools print goes to the
plan's log file.

install steps: create the venv -> install every locked wheel with hashes and
--only-binary (nothing compiled; skipped when `locked` did it for this plan) ->
copy each source-only package's wheel from the wheelhouse into a private
directory, checking it against the sha256 the controller recorded when it was
compiled (the plan's `files`; nothing beside the wheels in a shared wheelhouse
is trusted) -> install those copies -> as the service user: `pip check`,
import torch/llama_cpp/instructlab (and vllm with instructlab_extras [vllm]), `ilab --version`, and on the cuda
accelerator the GPU check (llama.cpp offloads, torch sees gpu_info's GPUs;
on failure the cause: wheel without CUDA, no driver library, missing CUDA
runtime libraries, no device nodes, driver too old) ->
write labforge-manifest.json. The venv stays root's (0755/0644): the service
user can read and run it, never change it. Any failure removes the new
directory; the active venv is never touched.

Root never runs the active venv's python before checking that every entry of
it is root's and writable by no other account (`probe`). Index and proxy
credentials come from root-only files (the plan, pip.conf, uv.toml), never
from the command line, and are masked in the log.
"""

import datetime
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

MANIFEST = "labforge-manifest.json"
# written by `locked` into the new venv: the digest of what it installed
LOCKED_MARK = ".labforge-locked"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Failure(Exception):
    pass


# scheme://userinfo@ in URLs (index and proxy credentials)
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def mask(text):
    """TEXT with the credentials of every URL in it replaced by ********."""
    return _URL_CREDENTIALS.sub(r"\1********@", text)


class Log(object):
    def __init__(self, path):
        self.path = path
        self.host = socket.gethostname()
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.fh = open(path, "a", encoding="utf-8")
        else:
            self.fh = sys.stderr

    def line(self, msg):
        self.fh.write("[%s %s] %s\n" % (now(), self.host, mask(msg)))
        self.fh.flush()

    def append_to(self, other):
        """Copy this log into OTHER in one write (one block, not interleaved) and close it."""
        self.fh.close()
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        other.fh.write(text)
        other.fh.flush()

    def tail(self, n=40):
        if not self.path:
            return ""
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-n:])


def run(log, argv, env=None, cwd=None, what=None):
    """Run argv with its output appended to the log (URL credentials masked); raise Failure on rc != 0."""
    log.line("$ " + " ".join(argv))
    start = time.time()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, universal_newlines=True, errors="replace")
    for text in proc.stdout:
        log.fh.write(mask(text))
        log.fh.flush()
    proc.wait()
    log.line("rc=%d in %.1fs" % (proc.returncode, time.time() - start))
    if proc.returncode != 0:
        raise Failure(mask("%s failed (rc %d): %s" % (what or argv[0], proc.returncode, " ".join(argv))))
    return time.time() - start


def capture(argv, env=None, **kwargs):
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, check=False, universal_newlines=True, **kwargs)
    return proc.returncode, proc.stdout, proc.stderr


def as_user(plan, venv):
    """(subprocess arguments, environment) that run a command as the plan's service user.

    A minimal environment: the user's HOME, the venv's bin first on PATH, nothing
    of root's (no proxies, no credentials, no config files)."""
    name = plan.get("user") or "root"
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise Failure("the service user %s does not exist" % name)
    env = {"HOME": pw.pw_dir, "USER": name, "LOGNAME": name, "LANG": "C.UTF-8",
           "PATH": os.path.join(venv, "bin") + os.pathsep + "/usr/local/bin:/usr/bin:/bin"}
    if pw.pw_uid == os.geteuid():
        return {"cwd": "/"}, env
    # its supplementary groups too, as its services get them (GPU device nodes may be video/render's)
    groups = [g for g in os.getgrouplist(name, pw.pw_gid) if g != pw.pw_gid]
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": groups, "cwd": "/"}, env


def sha256_fd(fd, copy_to=None):
    """sha256 of what FD reads, written to COPY_TO (a file object) as it is read."""
    h = hashlib.sha256()
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return h.hexdigest()
        h.update(chunk)
        if copy_to is not None:
            copy_to.write(chunk)


def open_regular(path):
    """A read-only fd of PATH, a regular file reached without following a link at its end."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError("%s is not a regular file" % path)
    return fd


def wheel_files(wheel):
    """{file name: sha256} the controller recorded for a wheelhouse entry ({} when none)."""
    files = wheel.get("files") or {}
    for name in files:
        if os.path.basename(name) != name or not name.endswith(".whl"):
            raise Failure("wheelhouse record for %s names %r, not a wheel file name" % (wheel["dir"], name))
    return files


def wheel_mismatch(wheel):
    """Why a wheelhouse entry cannot be used ('' when every wheel matches the recorded sha256)."""
    files = wheel_files(wheel)
    if not files:
        return "no sha256 recorded on the controller"
    for name, digest in sorted(files.items()):
        path = os.path.join(wheel["dir"], name)
        try:
            fd = open_regular(path)
        except OSError as exc:
            return "%s: %s" % (path, exc.strerror or exc)
        try:
            got = sha256_fd(fd)
        finally:
            os.close(fd)
        if got != digest:
            return "%s has sha256 %s, the controller recorded %s" % (path, got, digest)
    return ""


def wheel_dir_ok(wheel):
    """A wheelhouse entry is usable when every wheel the controller recorded for it matches."""
    return not wheel_mismatch(wheel)


def stage_wheels(wheels, dest):
    """Copy each entry's recorded wheels into DEST (private), checking the sha256 of what was copied.

    Installing from the copies closes the window between the check and the
    install, in which a shared wheelhouse could change."""
    staged = []
    for wheel in wheels:
        for name, digest in sorted(wheel_files(wheel).items()):
            src = os.path.join(wheel["dir"], name)
            target = os.path.join(dest, name)
            fd = open_regular(src)
            try:
                with open(target, "xb") as out:
                    got = sha256_fd(fd, out)
            finally:
                os.close(fd)
            if got != digest:
                raise Failure("wheelhouse file %s has sha256 %s, the controller recorded %s" % (src, got, digest))
            staged.append(target)
    return staged


def build_info(path):
    """Who compiled a wheelhouse entry, and when (its BUILD-INFO.json; informational only)."""
    try:
        with os.fdopen(open_regular(os.path.join(path, "BUILD-INFO.json")), encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        return {"built_by": None, "dir": path}
    out = {k: data.get(k) for k in ("built_by", "started", "finished", "seconds", "cmake_args")}
    out["dir"] = path
    return out


def lock_entry(sdists_file, name):
    """The requirement block (pin + hashes) of NAME in a lock file."""
    with open(sdists_file, encoding="utf-8") as fh:
        text = fh.read()
    for block in re.split(r"\n(?=\S)", text):
        if re.match(r"%s==" % re.escape(name), block):
            return block.strip() + "\n"
    raise Failure("%s is not in %s" % (name, sdists_file))


def base_env(plan):
    env = dict(os.environ)
    env.update(plan.get("env") or {})
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


# ---------------------------------------------------------------- probe


def venv_versions(python, names):
    code = ("import json, importlib.metadata as m\n"
            "out = {}\n"
            "for n in %r:\n"
            "    try:\n"
            "        out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError:\n"
            "        out[n] = None\n"
            "print(json.dumps(out))\n" % (names,))
    rc, out, err = capture([python, "-c", code])
    if rc != 0:
        return None, (err or out).strip()[-400:]
    return json.loads(out.strip().splitlines()[-1]), None


def _foreign(st, ancestor=False):
    """Whether an entry with lstat ST is another account's, or one it can write.

    A sticky directory above (/tmp) is fine: others cannot replace root's entries in it.
    (Root is the account this runs as; a test run by another account trusts itself.)"""
    if st.st_uid not in (0, os.geteuid()):
        return True
    if stat.S_ISLNK(st.st_mode) or (ancestor and st.st_mode & stat.S_ISVTX):
        return False
    return bool(st.st_mode & 0o002 or (st.st_mode & 0o020 and st.st_gid != 0))


def _describe(path, st):
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = "uid %d" % st.st_uid
    return "%s (owner %s, mode %04o)" % (path, owner, stat.S_IMODE(st.st_mode))


def foreign_entry(top):
    """The first path from / down to TOP, or under TOP (links not followed), that
    another account owns or can write; None when root alone controls all of it."""
    real = os.path.realpath(top)
    for named in (os.path.abspath(top), real):
        parts = named.split(os.sep)
        for i in range(1, len(parts)):
            path = os.sep.join(parts[:i]) or os.sep
            st = os.lstat(path)
            if _foreign(st, ancestor=True):
                return _describe(path, st)
    st = os.lstat(real)
    if _foreign(st):
        return _describe(real, st)
    for dirpath, dirnames, filenames in os.walk(real):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if _foreign(st):
                return _describe(path, st)
    return None


def probe(req):
    """Compare the active venv with the desired manifest; list missing wheels.

    Root runs the venv's python here only after foreign_entry() found nothing
    another account could have planted (a .pth file, a module)."""
    venv = req["venv"]
    result = {"install_needed": True, "reason": "", "current": None, "target": None,
              "missing_wheels": [w["name"] for w in req.get("wheels", []) if not wheel_dir_ok(w)]}
    manifest_path = os.path.join(venv, MANIFEST)
    if not os.path.isdir(venv):
        result["reason"] = "no venv at %s" % venv
        return result
    result["target"] = os.path.realpath(venv)
    foreign = foreign_entry(venv)
    if foreign:
        result["reason"] = ("%s is not root's alone: %s; a new root-owned venv replaces it "
                            "(root never runs code another account can change)" % (venv, foreign))
        return result
    if not os.path.isfile(manifest_path):
        result["reason"] = "%s has no %s (not built by this role)" % (venv, MANIFEST)
        return result
    with open(manifest_path, encoding="utf-8") as fh:
        current = json.load(fh)
    result["current"] = current.get("desired")
    if current.get("desired") != req["desired"]:
        changed = sorted(k for k in set(req["desired"]) | set(current.get("desired") or {})
                         if (current.get("desired") or {}).get(k) != req["desired"].get(k))
        result["reason"] = "manifest differs: " + ", ".join(changed)
        return result
    # The manifest matches: check that the venv still holds what it says.
    python = os.path.join(venv, "bin", "python")
    expect = current.get("installed", {}).get("versions", {})
    if not expect:
        result["reason"] = "manifest lists no installed versions"
        return result
    found, err = venv_versions(python, sorted(expect))
    if found is None:
        result["reason"] = "venv python does not run: %s" % err
        return result
    wrong = sorted(n for n in expect if found.get(n) != expect[n])
    if wrong:
        result["reason"] = "installed versions differ from the manifest: " + ", ".join(
            "%s %s != %s" % (n, found.get(n), expect[n]) for n in wrong)
        return result
    if not os.access(os.path.join(venv, "bin", "ilab"), os.X_OK):
        result["reason"] = "bin/ilab is missing"
        return result
    result["install_needed"] = False
    result["reason"] = "installed venv matches (%s)" % result["target"]
    return result


# ---------------------------------------------------------------- install


def _publish(log, tmp, target):
    """Move the new entry TMP to TARGET, replacing an entry there (one the
    controller has no record of, or whose wheels no longer match it)."""
    try:
        os.rename(tmp, target)
        return
    except OSError:
        if not os.path.isdir(target) or os.path.islink(target):
            raise
    old = tempfile.mkdtemp(prefix=".old-%s-" % os.path.basename(target), dir=os.path.dirname(target))
    os.rename(target, os.path.join(old, "entry"))
    os.rename(tmp, target)
    log.line("replaced %s (its wheels were not the ones the controller recorded)" % target)
    shutil.rmtree(old, ignore_errors=True)


def build_wheel(log, plan, py, wheel, env):
    """Compile one source-only package into its wheelhouse dir (atomic rename).

    Returns (seconds, {wheel file name: sha256}): the sha256 is taken from the
    wheel as built, before it is published, for the controller's record."""
    name, target = wheel["name"], wheel["dir"]
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-%s-" % name, dir=parent)
    try:
        req = os.path.join(tmp, "requirement.txt")
        with open(req, "w", encoding="utf-8") as fh:
            fh.write(lock_entry(plan["sdists_file"], name))
        benv = dict(env)
        if wheel.get("native"):
            benv.update(plan.get("build_env") or {})
        # --no-binary for this package only: ":all:" would also compile its build
        # dependencies (scikit-build-core, ...) from source in the isolated build env;
        # --use-pep517: setup.py-only sdists (pylatexenc) get setuptools+wheel there too.
        # The index (and its credentials) comes from PIP_CONFIG_FILE, not the command line.
        argv = [py, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--require-hashes",
                "--no-binary", name, "--use-pep517", "-r", req, "-w", tmp]
        if not wheel.get("isolation", True):
            argv.insert(4, "--no-build-isolation")
        log.line("BUILD START %s==%s -> %s (CMAKE_ARGS=%r)" % (
            name, wheel["version"], target, benv.get("CMAKE_ARGS", "")))
        started = now()
        seconds = run(log, argv, env=benv, what="compiling %s" % name)
        built = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(built) != 1:
            raise Failure("compiling %s gave %d wheels" % (name, len(built)))
        os.unlink(req)
        fd = open_regular(os.path.join(tmp, built[0]))
        try:
            files = {built[0]: sha256_fd(fd)}
        finally:
            os.close(fd)
        with open(os.path.join(tmp, "BUILD-INFO.json"), "w", encoding="utf-8") as fh:
            json.dump({"package": name, "version": wheel["version"], "built_by": log.host,
                       "started": started, "finished": now(), "seconds": round(seconds, 1),
                       "cmake_args": benv.get("CMAKE_ARGS", "") if wheel.get("native") else "",
                       "files": files}, fh, indent=2)
        os.chmod(tmp, 0o755)
        _publish(log, tmp, target)
        log.line("BUILD DONE %s in %.1fs" % (name, seconds))
        return round(seconds, 1), files
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


# Run by the venv's python as the service user: imports the stack like ilab
# does; the GPU checks only when asked. Prints one JSON object.
VERIFY_CODE = r"""
import json, sys
check_gpu, import_llama = sys.argv[1] == "1", sys.argv[2] == "1"
out = {}
def err(exc):
    return "%s: %s" % (type(exc).__name__, exc)
try:
    import torch
    out["torch"] = torch.__version__
    out["torch_cuda"] = torch.version.cuda
    if check_gpu:
        out["torch_devices"] = torch.cuda.device_count()
except Exception as exc:  # noqa: BLE001 - reported, not raised
    out["torch_error"] = err(exc)
if import_llama:
    try:
        import llama_cpp
        out["llama_cpp"] = llama_cpp.__version__
        out["gpu_offload"] = bool(llama_cpp.llama_supports_gpu_offload())
    except Exception as exc:  # noqa: BLE001
        out["llama_error"] = err(exc)
try:
    import instructlab
except Exception as exc:  # noqa: BLE001
    out["instructlab_error"] = err(exc)
# the modules of the extras the plan installs (instructlab_extras), each imported for real
for mod in [m for m in (sys.argv[3] if len(sys.argv) > 3 else "").split(",") if m]:
    try:
        imported = __import__(mod)
        out.setdefault("extras", {})[mod] = getattr(imported, "__version__", "")
    except Exception as exc:  # noqa: BLE001
        out.setdefault("extras_errors", []).append("import %s: %s" % (mod, err(exc)))
print(json.dumps(out))
"""
# The module each extra (instructlab_extras) must make importable.
EXTRA_MODULES = {"vllm": "vllm"}

# Run by the venv's python as the service user, in a process of its own (no
# torch loaded that could satisfy a library): what the CUDA build of llama.cpp
# needs at run time and what this host offers. Standard library only.
GPU_DIAG_CODE = r"""
import ctypes, glob, importlib.util, json, os, struct
out = {"dev_nodes": sorted(glob.glob("/dev/nvidia*")), "libs": {}}
try:
    with open("/proc/driver/nvidia/version") as fh:
        out["kernel_module"] = fh.readline().strip()
except OSError:
    out["kernel_module"] = None
spec = importlib.util.find_spec("llama_cpp")
libdir = os.path.join(list(spec.submodule_search_locations)[0], "lib") if spec else None
cuda = sorted(glob.glob(os.path.join(libdir, "libggml-cuda.so*"))) if libdir else []
out["libdir"], out["cuda_lib"] = libdir, (cuda[0] if cuda else None)
def needed(path):
    # DT_NEEDED entries of a 64-bit little-endian ELF file
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return []
        shoff, = struct.unpack_from("<Q", head, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
        fh.seek(shoff)
        table = fh.read(shentsize * shnum)
        secs = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
        for sec in secs:
            if sec[1] != 6:  # SHT_DYNAMIC
                continue
            fh.seek(secs[sec[6]][4])
            strtab = fh.read(secs[sec[6]][5])
            fh.seek(sec[4])
            dyn = fh.read(sec[5])
            names = []
            for off in range(0, len(dyn) - 15, 16):
                tag, val = struct.unpack_from("<qQ", dyn, off)
                if tag == 0:
                    break
                if tag == 1:
                    names.append(strtab[val:strtab.index(b"\0", val)].decode())
            return names
    return []
if out["cuda_lib"]:
    out["needed"] = needed(out["cuda_lib"])
    for name in out["needed"]:
        if os.path.exists(os.path.join(libdir, name)):
            continue  # next to it ($ORIGIN)
        try:
            ctypes.CDLL(name)
            out["libs"][name] = None
        except OSError as exc:
            out["libs"][name] = str(exc)
for name in [n for n in out.get("needed", []) if n.startswith("libcudart.so")][:1]:
    try:
        version = ctypes.c_int(0)
        ctypes.CDLL(name).cudaRuntimeGetVersion(ctypes.byref(version))
        out["runtime_version"] = version.value
    except (OSError, AttributeError):
        pass
try:
    libcuda = ctypes.CDLL("libcuda.so.1")
    version = ctypes.c_int(0)
    libcuda.cuDriverGetVersion(ctypes.byref(version))
    out["driver_cuda_version"] = version.value
    rc = libcuda.cuInit(0)
    out["cu_init"] = rc
    if rc:
        name = ctypes.c_char_p()
        libcuda.cuGetErrorName(rc, ctypes.byref(name))
        out["cu_init_error"] = (name.value or b"").decode()
except OSError as exc:
    out["libcuda_error"] = str(exc)
print(json.dumps(out))
"""


def _cuda_version(number):
    """12040 -> '12.4' (CUDA's integer versions)."""
    return "%d.%d" % (number // 1000, (number % 1000) // 10) if number else None


def _last_json(text):
    lines = (text or "").strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError:
        return None


def gpu_cause(plan, info, diag):
    """Why a cuda venv cannot use the GPU, from the verification (INFO) and the host facts (DIAG).

    None when llama.cpp offloads and torch sees gpu_info's GPUs. Pure function (unit-tested)."""
    gpu = plan.get("gpu") or {}
    want = int(gpu.get("count") or 0)
    offload = info.get("gpu_offload")
    devices = info.get("torch_devices")
    if offload and devices == want and not info.get("llama_error"):
        return None
    if diag.get("cuda_lib") is None:
        return ("the llama-cpp-python wheel was built without CUDA: %s has no libggml-cuda.so "
                "(CMAKE_ARGS %r did not reach its build)" % (diag.get("libdir"), plan["desired"]["cmake_args"]))
    causes = []
    smi = ("nvidia-smi reports driver %s (CUDA %s)" % (gpu.get("driver_version"), gpu.get("driver_cuda"))
           if gpu.get("status") == "ok" else "gpu_info: %s" % (gpu.get("reason") or gpu.get("status")))
    libcuda_error = diag.get("libcuda_error")
    if libcuda_error:
        if gpu.get("status") == "ok":
            causes.append("the GPU runtime is missing: %s, but libcuda.so.1 (the CUDA driver library that comes "
                          "with the NVIDIA driver) cannot be loaded (%s)" % (smi, libcuda_error))
        else:
            causes.append("no NVIDIA driver on this host: libcuda.so.1 (the CUDA driver library) cannot be "
                          "loaded (%s); %s" % (libcuda_error, smi))
    missing = sorted(n for n, e in (diag.get("libs") or {}).items() if e and not n.startswith("libcuda.so"))
    if missing:
        causes.append("the CUDA runtime libraries this build links cannot be found: %s (add the toolkit's "
                      "library directory, %s/lib64, to the dynamic loader: /etc/ld.so.conf.d/ and ldconfig)"
                      % (", ".join(missing), gpu.get("cuda_home") or "the CUDA toolkit"))
    if not diag.get("dev_nodes"):
        module = diag.get("kernel_module")
        causes.append("no /dev/nvidia* device nodes (%s)" % (
            "kernel module loaded: %s" % module if module
            else "the NVIDIA kernel module is not loaded: no /proc/driver/nvidia/version"))
    runtime = _cuda_version(diag.get("runtime_version"))
    driver_cuda = _cuda_version(diag.get("driver_cuda_version")) or gpu.get("driver_cuda") or None
    if runtime and driver_cuda and int(driver_cuda.split(".")[0]) < int(runtime.split(".")[0]):
        need = (gpu.get("min_driver") or {}).get(runtime.split(".")[0])
        causes.append("driver %s (CUDA %s) is older than this build's CUDA %s runtime needs%s" % (
            gpu.get("driver_version") or "?", driver_cuda, runtime, " (driver %s or newer)" % need if need else ""))
    if diag.get("cu_init"):
        causes.append("cuInit failed: %s (%s)" % (diag.get("cu_init_error") or "?", diag["cu_init"]))
    if info.get("llama_error"):
        causes.append("import llama_cpp failed: %s" % info["llama_error"])
    elif not offload:
        causes.append("llama_cpp.llama_supports_gpu_offload() is False")
    if devices is not None and devices != want:
        causes.append("torch.cuda.device_count() is %d, gpu_info found %d GPU(s)" % (devices, want))
    if info.get("torch_error"):
        causes.append("import torch failed: %s" % info["torch_error"])
    return "; ".join(causes)


def verify(log, plan, venv):
    """As the service user: pip check, import the stack, ilab --version, and on the cuda
    accelerator the GPU check (instructlab_verify_gpu)."""
    py = os.path.join(venv, "bin", "python")
    kwargs, env = as_user(plan, venv)
    who = plan.get("user") or "root"
    rc, out, err = capture([py, "-m", "pip", "check"], env=env, **kwargs)
    log.line("pip check (as %s) rc=%d %s %s" % (who, rc, out.strip(), err.strip()[-2000:]))
    if rc != 0:
        raise Failure("pip check (as %s) failed: %s" % (who, (out + err).strip()[-600:]))
    check_gpu = bool(plan.get("verify_gpu"))
    cuda = plan["desired"]["accelerator"] == "cuda"
    # a cuda build loads libcuda.so.1 with llama_cpp: a GPU-less builder (verify_gpu false) cannot import it
    import_llama = check_gpu or not cuda
    extras = ",".join(EXTRA_MODULES[e] for e in plan["desired"].get("extras", []))
    rc, out, err = capture([py, "-c", VERIFY_CODE, "1" if check_gpu else "0", "1" if import_llama else "0", extras],
                           env=env, **kwargs)
    log.line("verify imports (as %s) rc=%d %s %s" % (who, rc, out.strip(), err.strip()[-2000:]))
    info = _last_json(out) if rc == 0 else None
    if info is None:
        raise Failure("import torch, llama_cpp, instructlab (as %s) failed (rc %d): %s" % (
            who, rc, (err or out).strip()[-600:]))
    broken = [info[k] for k in ("torch_error", "instructlab_error") if info.get(k)]
    if info.get("llama_error") and not check_gpu:
        broken.append(info["llama_error"])
    broken.extend(info.get("extras_errors", []))
    if broken:
        raise Failure("import torch, llama_cpp, instructlab%s (as %s) failed: %s" % (
            "".join(", " + m for m in extras.split(",") if m), who, "; ".join(broken)))
    rc, out, err = capture([os.path.join(venv, "bin", "ilab"), "--version"], env=env, **kwargs)
    log.line("ilab --version (as %s) rc=%d %s %s" % (who, rc, out.strip(), err.strip()[-2000:]))
    if rc != 0:
        raise Failure("ilab --version (as %s) failed: %s" % (who, (err or out).strip()[-600:]))
    info["ilab_version_output"] = out.strip()
    want = plan["desired"]["instructlab_version"]
    if want not in out:
        raise Failure("ilab --version printed %r, expected version %s" % (out.strip(), want))
    if cuda:
        rc, out, err = capture([py, "-c", GPU_DIAG_CODE], env=env, **kwargs)
        diag = _last_json(out) if rc == 0 else None
        log.line("GPU runtime facts rc=%d %s %s" % (rc, json.dumps(diag), err.strip()[-1000:]))
        if diag is None:
            raise Failure("reading the GPU runtime facts as %s failed (rc %d): %s" % (
                who, rc, (err or out).strip()[-600:]))
        if diag.get("cuda_lib") is None:
            raise Failure(gpu_cause(plan, info, diag))
        info["cuda_needed"] = diag.get("needed")
    if not check_gpu:
        info["gpu_check"] = "skipped (instructlab_verify_gpu: false)" if cuda else "not needed (%s)" % (
            plan["desired"]["accelerator"])
        return info
    if cuda:
        cause = gpu_cause(plan, info, diag)
        if cause:
            raise Failure("the GPU check failed (as %s): %s. The cuda install is not usable on this host: fix the "
                          "cause, or set instructlab_verify_gpu: false only for image builds on GPU-less hosts"
                          % (who, cause))
        info["gpu_check"] = "llama.cpp offloads; torch sees %d GPU(s)" % info["torch_devices"]
    elif not info.get("gpu_offload"):
        raise Failure(
            "accelerator %s: llama_cpp.llama_supports_gpu_offload() is False: the llama-cpp-python "
            "build is CPU-only or cannot reach the GPU driver (CMAKE_ARGS %r). A GPU host with a "
            "CPU-only llama.cpp is not a working install." % (
                plan["desired"]["accelerator"], plan["desired"]["cmake_args"]))
    return info


def install_locked(log, plan, venv, env):
    """Create a venv and install every locked package that has a wheel: exact pins, hashes, no compile."""
    run(log, [plan["python"], "-m", "venv", venv], env=env, what="creating the venv")
    py = os.path.join(venv, "bin", "python")
    # The index comes from PIP_CONFIG_FILE / UV_CONFIG_FILE (root-only files), never
    # the command line. Byte code is compiled now, as root: the service user cannot
    # write __pycache__ in a venv it does not own.
    if plan["installer"] == "uv":
        argv = [plan["uv"], "pip", "install", "--python", py, "--no-deps", "--require-hashes",
                "--only-binary", ":all:", "--compile-bytecode", "-r", plan["requirements"]]
    else:
        argv = [py, "-m", "pip", "install", "--no-deps", "--require-hashes",
                "--only-binary", ":all:", "-r", plan["requirements"]]
    run(log, argv, env=env, what="installing the lock")
    return py


def locked_digest(plan):
    """What the locked part of a venv depends on: the lock file, the interpreter, installer, index."""
    with open(plan["requirements"], "rb") as fh:
        lock = hashlib.sha256(fh.read()).hexdigest()
    key = json.dumps([lock, plan["python"], plan["installer"], plan.get("index_url") or ""])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_locked_venv(log, plan, venv, env):
    """A new venv dir holding every locked wheel, marked with locked_digest."""
    if os.path.exists(venv):
        log.line("removing leftover %s" % venv)
        shutil.rmtree(venv)
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    py = install_locked(log, plan, venv, env)
    with open(os.path.join(venv, LOCKED_MARK), "w", encoding="utf-8") as fh:
        fh.write(locked_digest(plan) + "\n")
    return py


def has_locked(venv, plan):
    try:
        with open(os.path.join(venv, LOCKED_MARK), encoding="utf-8") as fh:
            return fh.read().strip() == locked_digest(plan)
    except OSError:
        return False


def failed(log, result, exc, remove=None):
    """RESULT marked failed with EXC and the log's tail; REMOVE (a new venv dir) deleted."""
    log.line("FAILED: %s" % exc)
    if remove:
        shutil.rmtree(remove, ignore_errors=True)
    result.update({"failed": True, "msg": str(exc), "log_tail": log.tail()})
    return result


def locked(plan):
    """First part of an install, run while the wheelhouse compiles elsewhere or in parallel."""
    log = Log(plan.get("log"))
    venv = plan["venv_dir"]
    result = {"changed": True, "venv_dir": venv, "log": plan.get("log"), "timings": {}}
    t0 = time.time()
    log.line("==== locked wheels of %s (%s) into %s" % (plan["desired"]["instructlab_version"],
                                                        plan["desired"]["accelerator"], venv))
    try:
        new_locked_venv(log, plan, venv, base_env(plan))
        result["timings"]["locked_wheels"] = round(time.time() - t0, 1)
        log.line("==== locked wheels done in %.1fs" % (time.time() - t0))
        return result
    except (Failure, OSError, ValueError) as exc:
        return failed(log, result, exc, remove=venv)


def close_venv(venv):
    """Leave nothing in a new venv that another account could write: uv creates its
    lock file world-writable (0666)."""
    lock = os.path.join(venv, ".lock")
    if os.path.lexists(lock) and not os.path.islink(lock):
        os.chmod(lock, 0o644)


def install(plan):
    log = Log(plan.get("log"))
    venv = plan["venv_dir"]
    result = {"changed": True, "venv_dir": venv, "log": plan.get("log"), "from_wheelhouse": [],
              "timings": {}}
    env = base_env(plan)
    t0 = time.time()
    log.line("==== install %s (%s) into %s" % (plan["desired"]["instructlab_version"],
                                               plan["desired"]["accelerator"], venv))
    stage = None
    try:
        unusable = [(w, wheel_mismatch(w)) for w in plan.get("wheels", [])]
        unusable = [(w, why) for w, why in unusable if why]
        if unusable:
            # fail before spending minutes on a venv that cannot be completed
            raise Failure("%s not usable from the wheelhouse (%s)%s" % (
                ", ".join("%s==%s" % (w["name"], w["version"]) for w, _why in unusable),
                "; ".join(why for _wheel, why in unusable),
                "" if plan.get("build") else
                ": this host is not the one that compiles them (did the building host fail?)"))
        if has_locked(venv, plan):
            log.line("the locked wheels are already in %s" % venv)
            py = os.path.join(venv, "bin", "python")
        else:
            py = new_locked_venv(log, plan, venv, env)
            result["timings"]["locked_wheels"] = round(time.time() - t0, 1)
        # 2. source-only packages: private copies of the wheelhouse wheels, each checked
        #    against the sha256 the controller recorded when it was compiled
        stage = tempfile.mkdtemp(prefix=".wheels-", dir=os.path.dirname(venv))
        wheels = stage_wheels(plan.get("wheels", []), stage)
        for wheel in plan.get("wheels", []):
            result["from_wheelhouse"].append(wheel["name"])
            log.line("WHEELHOUSE HIT %s==%s (%s, sha256 as recorded)" % (wheel["name"], wheel["version"], wheel["dir"]))
        if wheels:
            if plan["installer"] == "uv":
                argv = [plan["uv"], "pip", "install", "--python", py, "--no-deps", "--no-index",
                        "--compile-bytecode"] + wheels
            else:
                argv = [py, "-m", "pip", "install", "--no-deps", "--no-index"] + wheels
            run(log, argv, env=env, what="installing the wheelhouse wheels")
        close_venv(venv)
        # 3. consistency and a real import, as the service user
        info = verify(log, plan, venv)
        names = ["instructlab", "llama-cpp-python", "torch", "transformers", "numpy"]
        versions, err = venv_versions(py, names)
        if versions is None:
            raise Failure("reading installed versions failed: %s" % err)
        info["versions"] = versions
        info["built_at"] = now()
        info["host"] = log.host
        info["wheels"] = {w["name"]: build_info(w["dir"]) for w in plan.get("wheels", [])}
        os.unlink(os.path.join(venv, LOCKED_MARK))
        with open(os.path.join(venv, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump({"desired": plan["desired"], "installed": info}, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(venv, 0o755)
        result["installed"] = info
        result["timings"]["total"] = round(time.time() - t0, 1)
        log.line("==== done in %.1fs" % (time.time() - t0))
        return result
    except (Failure, OSError, ValueError) as exc:
        return failed(log, result, exc, remove=venv)
    finally:
        if stage:
            shutil.rmtree(stage, ignore_errors=True)


def build_beside(log, plan, todo, env, result):
    """Compile TODO one after the other, each into its own log appended to LOG when done.

    Runs in a thread beside the native compile, whose output streams into LOG."""
    for wheel in todo:
        fd, path = tempfile.mkstemp(prefix=".build-%s-" % wheel["name"], suffix=".log",
                                    dir=os.path.dirname(log.path) if log.path else None)
        os.close(fd)
        part = Log(path)
        try:
            _built(result, wheel, build_wheel(part, plan, plan["builder_python"], wheel, env))
        except (Failure, OSError, ValueError) as exc:
            result["beside_error"] = str(exc)
            return
        finally:
            part.append_to(log)
            os.unlink(path)


def _built(result, wheel, outcome):
    """Note in RESULT what compiling WHEEL gave: its seconds, and the sha256 of its wheels
    under the entry's record key (the role records them on the controller)."""
    seconds, files = outcome
    result["built"][wheel["name"]] = seconds
    result["hashes"][wheel.get("record_key") or wheel["dir"]] = {
        "name": wheel["name"], "version": wheel["version"], "files": files, "built_by": socket.gethostname(),
        "recorded": now()}


def wheels(plan):
    """Fill the wheelhouse (the fleet's one compile), before any host installs."""
    log = Log(plan.get("log"))
    result = {"changed": False, "built": {}, "hashes": {}, "log": plan.get("log")}
    log.line("==== wheelhouse for %s (%s)" % (plan["desired"]["instructlab_version"], plan["desired"]["accelerator"]))
    try:
        env = base_env(plan)
        missing = [w for w in plan.get("wheels", []) if not wheel_dir_ok(w)]
        isolated = [w for w in missing if w.get("isolation", True)]
        # the small pure-Python sdists build beside the native compile (not after it)
        small = [w for w in isolated if not w.get("native")]
        beside = threading.Thread(target=build_beside, args=(log, plan, small, env, result), daemon=True)
        beside.start()
        try:
            for wheel in [w for w in isolated if w.get("native")]:
                _built(result, wheel, build_wheel(log, plan, plan["builder_python"], wheel, env))
        finally:
            beside.join()
        if result.get("beside_error"):
            raise Failure(result.pop("beside_error"))
        rest = [w for w in missing if not w.get("isolation", True)]
        if rest:
            # built against the lock's torch (flash-attn): in a throw-away venv of the lock
            build_venv = plan["venv_dir"] + ".wheelbuild"
            try:
                py = install_locked(log, plan, build_venv, env)
                for wheel in rest:
                    _built(result, wheel, build_wheel(log, plan, py, wheel, env))
            finally:
                shutil.rmtree(build_venv, ignore_errors=True)
        result["changed"] = bool(result["built"])
        return result
    except (Failure, OSError, ValueError) as exc:
        return failed(log, result, exc)


def _terminated(signum, _frame):
    raise Failure("terminated by signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, _terminated)
    # what root creates (venv, wheelhouse entries, logs) is writable by root alone
    os.umask(0o022)
    if len(sys.argv) < 2 or sys.argv[1] not in ("probe", "locked", "install", "wheels"):
        sys.stderr.write(__doc__)
        return 2
    if sys.argv[1] == "probe":
        print(json.dumps(probe(json.load(sys.stdin))))
        return 0
    with open(sys.argv[2], encoding="utf-8") as fh:
        plan = json.load(fh)
    result = {"locked": locked, "install": install, "wheels": wheels}[sys.argv[1]](plan)
    print(json.dumps(result))
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
