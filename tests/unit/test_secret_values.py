"""Secret environment properties: sealing, opening, masking and scrubbing."""

from __future__ import annotations

import stat

import pytest

from beanpole.adapters.secrets import SecretBox
from beanpole.api.views import EffectiveSettingView
from beanpole.core.errors import ComponentError
from beanpole.core.secrets import MASK, is_sealed, mask, scrub
from beanpole.server.eb.protocol import render


def test_sealed_values_open_with_their_key_only(tmp_path):
    box = SecretBox(tmp_path / "secret.key")
    sealed = box.seal("s3cret-value")
    assert is_sealed(sealed) and "s3cret-value" not in sealed
    assert box.seal("s3cret-value") != sealed  # a fresh nonce each time
    assert box.open(sealed) == "s3cret-value"
    assert box.open("plain") == "plain"
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    # a second box on the same file shares the key; a new key cannot open it
    assert SecretBox(tmp_path / "secret.key").reveal({"K": sealed, "P": "x"}) == {
        "K": "s3cret-value",
        "P": "x",
    }
    (tmp_path / "secret.key").unlink()
    with pytest.raises(ComponentError, match=r"cannot be decrypted.*--secret"):
        SecretBox(tmp_path / "secret.key").open(sealed)


def test_mask_hides_sealed_values_in_any_structure_and_scrub_hides_the_values(tmp_path):
    sealed = SecretBox(tmp_path / "k").seal("v")
    data = {"a": [sealed, ("x", f"before {sealed} after")], sealed: 1, "n": 2}
    assert mask(data) == {"a": [MASK, ("x", f"before {MASK} after")], MASK: 1, "n": 2}
    assert scrub("token=abcd1234 and abcd1234xyz, ab", ["abcd1234", "abcd1234xyz", "ab"]) == (
        f"token={MASK} and {MASK}, ab"  # the longest first; too short to scrub: kept
    )


def test_views_and_eb_answers_never_show_a_sealed_value(tmp_path):
    sealed = SecretBox(tmp_path / "k").seal("v")
    view = EffectiveSettingView(namespace="n", option="K", value=sealed, source="direct")
    assert view.model_dump()["value"] == MASK
    assert sealed not in view.model_dump_json()
    xml = render("DescribeThing", {"Value": sealed}, "req-1").decode()
    assert sealed not in xml and MASK in xml
