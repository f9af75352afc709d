def test_systemd_is_pid1(host):
    assert host.process.get(pid=1).comm == "systemd"
