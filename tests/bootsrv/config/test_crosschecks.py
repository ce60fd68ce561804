"""Rules relating one table to another, and the client IQN rule they share with bootsrv.clients."""

import pytest

from bootsrv.config import client_target_iqn
from tests.support.config_sample import GOOD, refusal, write

IMAGE = '[[image]]\nname = "golden"\npath = "g.vhd"\n'


def client(name: str) -> str:
    return f'[[client]]\nname = "{name}"\nmac = "52:54:00:12:34:56"\nimage = "golden"\n'


def test_client_target_iqn_is_base_colon_name():
    assert client_target_iqn("iqn.2026-11.lan.bootsrv", "ws01") == "iqn.2026-11.lan.bootsrv:ws01"


@pytest.mark.parametrize("text,expected", [
    ('[dhcp]\nunknown_clients = "nosuch"\n' + IMAGE,
     'dhcp.unknown_clients: expected "ignore", "lease" or an [[image]] name, got \'nosuch\''),
    (IMAGE + client("scratch"),
     "client 'scratch': its target iqn.2026-11.lan.bootsrv:scratch is also a [[target]] iqn; rename one of them"),
    (GOOD.replace(":Scratch", ":other") + IMAGE + client("scratch"),
     "client 'scratch': a [[disk]] has that name too"),
])
def test_cross_checks_name_both_sides(tmp_path, text, expected):
    path = write(tmp_path, (GOOD if "[server]" not in text else "") + text)
    assert expected in refusal(path)
