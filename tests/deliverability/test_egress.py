"""check_egress reports an open port and a refused one (loopback targets only)."""

import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from config.redis_server import free_port
from deliverability.egress import check_egress


def test_a_listening_port_is_reported_open():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        result = check_egress("127.0.0.1", server.getsockname()[1], timeout=2)
    assert result.open and "NOT restricted" in result.detail


def test_a_refused_connection_is_reported_blocked(capsys):
    result = check_egress("127.0.0.1", free_port(), timeout=2)
    assert not result.open and "in force" in result.detail
    call_command("check_egress", "--target", f"127.0.0.1:{free_port()}")
    assert capsys.readouterr().out.startswith("blocked:")


def test_the_command_exits_1_when_open():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with pytest.raises(SystemExit) as exit_info:
            call_command("check_egress", "--target", f"127.0.0.1:{server.getsockname()[1]}")
    assert exit_info.value.code == 1


def test_a_bad_target_is_a_clear_error():
    with pytest.raises(CommandError, match="host:port"):
        call_command("check_egress", "--target", "nonsense")


def test_the_rule_files_only_let_senders_open_smtp():
    from tests.helpers import ROOT

    nft = (ROOT / "docker/egress/nftables.conf").read_text()
    assert "meta skuid $SENDERS accept" in nft and "reject with tcp reset" in nft
    assert nft.index("skuid $SENDERS accept") < nft.index("reject with tcp reset")
    ipt = (ROOT / "docker/egress/iptables.sh").read_text()
    assert "--uid-owner" in ipt and "for port in 25 465 587" in ipt
