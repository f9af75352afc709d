"""After converge (role skipped, forced run stopped at the kernel check): nothing NVIDIA on the host."""


def test_no_nvidia_packages(host):
    out = host.check_output("dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n'")
    installed = [line.split()[-1] for line in out.splitlines() if line.startswith('ii')]
    assert installed, 'dpkg-query listed nothing'
    offending = [p for p in installed if p.startswith(('nvidia', 'cuda', 'libnvidia', 'dkms', 'linux-headers'))]
    assert offending == []


def test_no_nvidia_repository_or_config(host):
    for path in ('/etc/apt/sources.list.d/cuda-debian12-x86_64.list',
                 '/usr/share/keyrings/cuda-archive-keyring.gpg',
                 '/etc/modprobe.d/blacklist-nouveau.conf',
                 '/etc/yum.repos.d/cuda-rhel9.repo'):
        assert not host.file(path).exists, path
    assert not host.exists('nvidia-smi')


def test_no_persistenced_unit(host):
    assert not host.service('nvidia-persistenced').is_enabled
