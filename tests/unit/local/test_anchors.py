"""`lacewing local rotate-anchor add|issuer|remove` on a cluster's identity files."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from lacewing.controller.identity.issuer_files import IssuerFiles
from lacewing.errors import CertificateError
from lacewing.local import anchors
from lacewing.local.controlplane import write_identity_material
from lacewing.tls.bundle import TrustBundle


def _issuer(directory: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / "issuer" / "tls.crt").read_bytes())


def test_the_three_steps_in_order_and_what_the_controller_accepts(tmp_path: Path) -> None:
    write_identity_material(tmp_path)
    (old,) = anchors.bundle_of(tmp_path)
    bundle = TrustBundle.from_file(tmp_path / "ca-bundle.crt", interval=0)
    files = IssuerFiles(tmp_path / "issuer", bundle.anchors(), bundle)
    first = files.current()

    new = anchors.add_anchor(tmp_path)
    assert anchors.bundle_of(tmp_path) == [old, new]
    assert len(bundle.anchors()) == 2 and bundle.generation == 2
    with pytest.raises(CertificateError, match="already holds 2"):
        anchors.add_anchor(tmp_path)  # a second add in the middle of a rotation
    with pytest.raises(CertificateError, match="issuer step"):
        anchors.remove_old(tmp_path)  # removing before the issuer is re-signed

    issuer = anchors.resign_issuer(tmp_path)
    issuer.verify_directly_issued_by(new)
    assert _issuer(tmp_path) == issuer
    assert files.current() is not first  # accepted: signed by an anchor of the bundle
    assert files.current().certificate == issuer

    assert anchors.remove_old(tmp_path) == new
    assert anchors.bundle_of(tmp_path) == [new]
    assert files.current().certificate == issuer  # still good against the new anchor alone
    # the new anchor's key is the cluster's anchor key now: a later issuer rotation uses it
    assert not (tmp_path / "anchor" / "next.key").exists()
    with pytest.raises(CertificateError, match="no new anchor"):
        anchors.resign_issuer(tmp_path)


def test_an_issuer_of_an_anchor_not_in_the_bundle_is_not_taken(tmp_path: Path) -> None:
    write_identity_material(tmp_path)
    bundle = TrustBundle.from_file(tmp_path / "ca-bundle.crt", interval=0)
    files = IssuerFiles(tmp_path / "issuer", bundle.anchors(), bundle)
    first = files.current()
    anchors.add_anchor(tmp_path)
    old = anchors.bundle_of(tmp_path)[0]  # someone undoes the add behind our back
    (tmp_path / "ca-bundle.crt").write_bytes(old.public_bytes(Encoding.PEM))
    # the issuer step refuses: there is no new anchor in the bundle
    with pytest.raises(CertificateError, match="no new anchor"):
        anchors.resign_issuer(tmp_path)
    assert files.current() is first
