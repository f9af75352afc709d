"""Offline stand-in for pip's get-pip.py, used by ansible-test sanity.

ansible-test bootstraps pip in each of its test venvs with a get-pip.py that
it downloads from a host this network cannot reach. This script does the same
job from what is reachable: ``ensurepip`` installs the bundled pip, which then
installs the requested packages (``pip==X`` etc.) from the package index.
It is copied to ``~/.ansible/test/cache/get_pip_<version>.py`` by
``tools/sanity.sh``.
"""

import subprocess
import sys


def main():
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
                          stdout=subprocess.DEVNULL)
    packages = [a for a in args if not a.startswith("-")]
    options = [a for a in args if a.startswith("-")]
    if packages:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + options + packages)


if __name__ == "__main__":
    main()
