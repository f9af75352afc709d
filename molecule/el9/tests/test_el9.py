def test_el9_family(host):
    info = host.system_info
    assert info.distribution in ("centos", "rocky", "almalinux", "redhat", "rhel")
    assert info.release.startswith("9")


def test_python311_present(host):
    assert host.run("python3.11 -c 'import ssl, sqlite3, ctypes'").rc == 0
