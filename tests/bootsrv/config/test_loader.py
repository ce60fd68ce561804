"""load_config end to end: a good file, one-line errors naming file and key, the CLI's check-config."""

import pytest

from bootsrv.config import ConfigError, load_config
from tests.support.config_sample import GOOD, refusal, write
from tests.support.cli import run_cli
from tests.support.paths import REPO


def test_good_config_resolves_paths_and_normalises_names(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.server.state_dir == (tmp_path / "state").resolve()
    assert config.disks[0].path == (tmp_path / "disks/scratch.img").resolve()
    assert config.disks[0].size == 1 << 30
    assert [str(p) for p in config.iscsi.portals] == ["127.0.0.1:3260", "[::1]:3261"]
    assert config.targets[0].iqn == "iqn.2026-11.lan.bootsrv:scratch"
    assert config.targets[0].initiators == ("iqn.1991-05.com.microsoft:ws01",)
    assert config.targets[0].chap.secret == "s12345678901"


def test_rbd_disks_are_named_as_qemu_names_them_and_ceph_defaults_as_its_tools(tmp_path):
    config = load_config(write(tmp_path, GOOD.replace('path = "disks/scratch.img"', 'path = "rbd:lab/scratch"')))
    assert str(config.disks[0].path) == "rbd:lab/scratch"  # not a file beside the configuration
    assert (str(config.ceph.conf), config.ceph.id, config.ceph.keyring) == ("/etc/ceph/ceph.conf", "admin", None)
    config = load_config(write(tmp_path, GOOD + '[ceph]\nconf = "ceph/ceph.conf"\nid = "bootsrv"\nkeyring = "k"\n'))
    assert config.ceph.conf == (tmp_path / "ceph/ceph.conf").resolve() and config.ceph.keyring == (tmp_path / "k")
    assert config.node.name == ""  # the host name, at start
    assert load_config(write(tmp_path, GOOD + '[node]\nname = "room-a"\n')).node.name == "room-a"


@pytest.mark.parametrize("change,key,expected", [
    (('portals = ["127.0.0.1:3260", "[::1]:3261"]', 'portals = ["nohost"]'), "iscsi.portals", "host:port"),
    (('luns = ["scratch"]', 'luns = ["nosuch"]'), "target[0].luns", "names of [[disk]]"),
    (('iqn = "iqn.2026-11.lan.bootsrv:Scratch"', 'iqn = "not-an-iqn"'), "target[0].iqn", "iSCSI name"),
    (('secret = "s12345678901"', 'secret = "short"'), "target[0].chap.secret", "12 to 255"),
    (('size = "1GiB"', 'size = "1000"'), "disk[0].size", "multiple of 512"),
    (('state_dir = "state"', 'state_dir = 5'), "server.state_dir", "folder path"),
    (('[server]', '[server]\nstate_dirr = "x"'), "server.state_dirr", "unknown key"),
    (('name = "scratch"', 'name = "bad name!"'), "disk[0].name", "letters"),
    (('s98765432109', 's12345678901'), "target[0].mutual_chap", "different"),
    (('path = "disks/scratch.img"', 'path = "rbd:pool"'), "disk[0].path", "rbd:POOL/IMAGE"),
    (('[server]', '[ceph]\nid = "client.admin"\n[server]'), "ceph.id", "without \"client.\""),
    (('[server]', '[node]\nname = "room a"\n[server]'), "node.name", "letters"),
])
def test_errors_name_file_key_and_expectation(tmp_path, change, key, expected):
    path = write(tmp_path, GOOD.replace(*change))
    message = refusal(path)
    assert key in message and expected in message


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[server\n"))
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def cli(*args, cwd=None):
    return run_cli(*args, cwd=cwd, timeout=60)


def test_cli_version_check_config_and_one_line_errors(tmp_path):
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("bootsrv ")
    ok = cli("check-config", str(write(tmp_path, GOOD)))
    assert ok.returncode == 0 and "ok (1 disks, 1 targets, 0 clients, DHCP off)" in ok.stdout
    bad = cli("check-config", str(write(tmp_path, GOOD.replace('luns = ["scratch"]', 'luns = "scratch"'))))
    assert bad.returncode == 1 and "target[0].luns" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert cli("serve").returncode == 2  # usage error
    missing_disk = GOOD.replace('size = "1GiB"\n', "")
    serve = cli("serve", "--config", str(write(tmp_path, missing_disk)))
    assert serve.returncode == 1 and "does not exist" in serve.stderr and "Traceback" not in serve.stderr


def test_secrets_in_a_file_others_can_read_are_warned_about(tmp_path):
    path = write(tmp_path, GOOD)
    path.chmod(0o644)
    loose = cli("check-config", str(path))
    assert loose.returncode == 0 and f"holds CHAP secrets but is readable by others (mode 644): chmod 600 {path}" \
        in loose.stderr
    assert "s12345678901" not in loose.stderr + loose.stdout  # the warning never quotes the secret
    path.chmod(0o600)
    assert cli("check-config", str(path)).stderr == ""
    no_secrets = write(tmp_path, GOOD.replace('chap = { user = "u", secret = "s12345678901" }\n', "")
                       .replace('mutual_chap = { user = "t", secret = "s98765432109" }\n', ""))
    no_secrets.chmod(0o644)
    assert cli("check-config", str(no_secrets)).stderr == ""


def test_examples_are_valid():
    for example in sorted((REPO / "examples").glob("*.toml")):
        assert cli("check-config", str(example)).returncode == 0, example
