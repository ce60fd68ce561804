"""The TFTP resolver and the DNS answers, without sockets."""

from dnslib import QTYPE, RCODE, DNSRecord
from hypothesis import given, settings, strategies as st

from bootsrv.dns import FORWARD, DnsAnswers
from bootsrv.tftp import resolve
from tests.support.faults_summary import record


def test_resolve_stays_inside_its_roots(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.kpxe").write_bytes(b"a")
    (root / "sub" / "b.efi").write_bytes(b"b")
    (tmp_path / "outside").write_text("no")
    (root / "link-out").symlink_to(tmp_path / "outside")
    (root / "link-in").symlink_to(root / "a.kpxe")
    roots = [root]
    assert resolve(roots, "a.kpxe") == (root / "a.kpxe").resolve()
    assert resolve(roots, "/sub/b.efi") == (root / "sub" / "b.efi").resolve()
    assert resolve(roots, "sub\\b.efi") == (root / "sub" / "b.efi").resolve()  # Windows-style clients
    assert resolve(roots, "link-in") is not None
    (root / "loop").symlink_to(root / "loop")
    for bad in ("link-out", "../outside", "sub/../../outside", "", "/", "sub", "a.kpxe\0x",
                "x" * 300, "sub/" + "y" * 5000, "loop"):  # found by bench/soak.py: long names raised
        assert resolve(roots, bad) is None, bad


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_resolve_never_escapes(tmp_path_factory, name):
    record("protocol fuzzing", inputs=1)
    root = tmp_path_factory.mktemp("r")
    (root / "f").write_bytes(b"x")
    found = resolve([root], name)
    assert found is None or root.resolve() in found.parents


def ask(answers, name, qtype="A"):
    return DNSRecord.parse(answers.answer(DNSRecord.question(name, qtype).pack()))


def test_dns_answers_clients_and_refuses_the_world():
    answers = DnsAnswers("lab", lambda: {"ws01": "10.77.0.101"})
    reply = ask(answers, "ws01.lab")
    assert str(reply.rr[0].rdata) == "10.77.0.101"
    assert str(ask(answers, "101.0.77.10.in-addr.arpa", "PTR").rr[0].rdata) == "ws01.lab."
    assert ask(answers, "ws99.lab").header.rcode == RCODE.NXDOMAIN
    assert ask(answers, "example.org").header.rcode == RCODE.REFUSED
    assert ask(answers, "ws01.lab", "AAAA").rr == []  # the name exists, no IPv6 address
    query = DNSRecord.question("example.org").pack()
    assert answers.answer(query, forwarding=True) is FORWARD  # with forwarders, the world goes there
    assert answers.answer(DNSRecord.question("ws01.lab").pack(), forwarding=True) is not FORWARD


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_dns_garbage_gets_no_answer_and_no_exception(blob):
    record("protocol fuzzing", inputs=1)
    DnsAnswers("lab", lambda: {"ws01": "10.77.0.101"}).answer(blob)


def test_dns_question_that_cannot_be_answered_back_gets_no_answer():
    # Found by bench/soak.py: dnslib parses a name its own writer refuses (over 255 bytes).
    query = bytes.fromhex("7b94010000010000000000005b31303101300237375f313007696e2d6164647200005b313031013002"
                          "37375f313007696e2d616464720237375f313007696e2d6164647200005b31303101300237375f3130"
                          "07696e2d616464720237375f313007696e2d6164647200005b31303101300237375f313007696e2d61"
                          "646472")
    assert DnsAnswers("lab", lambda: {"ws01": "10.77.0.101"}).answer(query) is None
