"""Modes are StrEnums equal to their TOML words; each default is the model's own."""

import pytest

from bootsrv.config import (DhcpConfig, DhcpMode, Digests, ExportMode, IscsiConfig, LogLevel,
                            UnknownClients, load_config)
from tests.support.config_sample import GOOD, refusal, write

FULL_DHCP = '[dhcp]\nmode = "full"\ninterface = "eth0"\npool = "10.0.0.10-10.0.0.20"\nunknown_clients = "lease"\n'


def test_parsed_modes_are_members_and_equal_their_words(tmp_path):
    config = load_config(write(tmp_path, GOOD + FULL_DHCP))
    assert config.dhcp.mode is DhcpMode.FULL and config.dhcp.mode == "full" and f"{config.dhcp.mode}" == "full"
    assert config.dhcp.unknown_clients is UnknownClients.LEASE
    assert config.iscsi.digests is Digests.PREFER and config.server.log_level is LogLevel.INFO
    # Models built with the bare words, as tests and benches do, equal parsed ones.
    assert config.dhcp == DhcpConfig("full", "eth0", "", ("10.0.0.10", "10.0.0.20"), unknown_clients="lease")


def test_an_image_name_for_unknown_clients_stays_a_plain_name(tmp_path):
    text = GOOD + FULL_DHCP.replace('"lease"', '"golden"') + '[[image]]\nname = "golden"\npath = "g.vhd"\n'
    unknown = load_config(write(tmp_path, text)).dhcp.unknown_clients
    assert unknown == "golden" and not isinstance(unknown, UnknownClients)


def test_defaults_of_an_empty_file_are_the_models(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.iscsi == IscsiConfig() and config.dhcp == DhcpConfig()
    assert config.iscsi.queue_depth == 64


@pytest.mark.parametrize("key,word,choices", [
    ("[dhcp]\nmode", "sometimes", DhcpMode), ("[iscsi]\ndigests", "always", Digests),
    ("[server]\nlog_level", "loud", LogLevel),
])
def test_a_word_outside_the_enum_is_refused_with_the_choices(tmp_path, key, word, choices):
    path = write(tmp_path, f'{key} = "{word}"\n')
    message = refusal(path)
    assert all(f'"{member}"' in message for member in choices) and repr(word) in message


def test_export_modes_cover_the_schedule_words():
    assert [str(m) for m in ExportMode] == ["none", "full", "incremental"]
