from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.proxy.identity.pki import Pki

from lacewing.controller.identity.issuer_files import IssuerFiles, load_trust_anchors
from lacewing.errors import CertificateError


def test_reloads_only_when_the_files_change(tmp_path: Path) -> None:
    pki = Pki.make()
    files = IssuerFiles(pki.write_issuer_dir(tmp_path), [pki.anchor.certificate])
    first = files.current()
    assert files.current() is first and files.loads == 1
    pki.rotate_issuer()
    pki.write_issuer_dir(tmp_path)
    second = files.current()
    assert second is not first and second.certificate == pki.issuer_ck.certificate
    assert files.loads == 2


def test_an_issuer_from_another_root_is_refused(tmp_path: Path) -> None:
    ours, theirs = Pki.make(), Pki.make()
    files = IssuerFiles(theirs.write_issuer_dir(tmp_path), [ours.anchor.certificate])
    with pytest.raises(CertificateError, match="not issued by the trust anchors"):
        files.current()


def test_a_non_ca_issuer_is_refused(tmp_path: Path) -> None:
    pki = Pki.make()
    (tmp_path / "tls.crt").write_text(pki.anchor.cert_pem)  # a CA: fine on its own...
    (tmp_path / "tls.key").write_text(pki.anchor.key_pem)
    assert IssuerFiles(tmp_path, [pki.anchor.certificate]).current()
    from lacewing.tls.pki import generate_serving_certificate  # ...a serving cert is not

    leaf = generate_serving_certificate(pki.issuer_ck, "svc", "ns")
    (tmp_path / "tls.crt").write_text(leaf.cert_pem)
    (tmp_path / "tls.key").write_text(leaf.key_pem)
    with pytest.raises(CertificateError, match="not a CA"):
        IssuerFiles(tmp_path).current()


def test_missing_files_say_where_to_mount_the_secret(tmp_path: Path) -> None:
    with pytest.raises(CertificateError) as info:
        IssuerFiles(tmp_path / "nothing").current()
    assert "cannot read the issuer files" in info.value.message
    assert info.value.hint and "tls.crt" in info.value.hint
    with pytest.raises(CertificateError, match="not a PEM bundle"):
        load_trust_anchors(b"junk")
