"""The default (``nuisance="mild"``, ``gsd=0.5``) output is pinned byte for byte.

Models, the demo and many tests were built on these regions; new options must not change them.
If a deliberate change to the default renderer is ever made, update the hashes in the same
commit and say so in its message.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from catalogs.synth import synthesize_region

PINNED = {
    "plain": (
        {"size_km": 0.3, "seed": 11},
        {
            "before.tif": "5fd316c4ac0e59850227c171474f8a12c0526a1ebdb224cb6ff642515b05b4e1",
            "after.tif": "d6c02901e5b6688637dcc122a8b2e9031f08693540191c6b12833c519609ee6c",
            "truth.parquet": "333b0a1dada6c3d588bb4a21abd1933dcc680a3f70f2fa79539df5d8ce2694c2",
            "truth.json": "b95d6072a6c511c7b7143b1128823f0c5d9083d04a427e4d8f07050d15b39ffc",
            "collection.json": "38a6105c5acedd1e69b51dd6de85400d6890701722e15a3dac0d1d52bd038a51",
            "items": "065fa751bacb4935d40bbbd23096436b3a1e5c9553fa421f1d04a97b9e9e0480",
        },
    ),
    "mosaic16": (
        {
            "size_km": 0.25,
            "seed": 3,
            "split": 2,
            "dtype": "uint16",
            "misregistration_in_metadata": False,
        },
        {
            "after_r0_c0.tif": "59ce0e5d3c9475d801bf3d456cd11af3bfbdf6ea1e5fdd6fdd71a970f1804b95",
            "after_r0_c1.tif": "8f4909c169ac4f833f1aec3b689ce07644d0e138d566b2d38bc524632aaeba92",
            "after_r1_c0.tif": "a28a28c586ace0e37a9e191363cd45e55763acfe11d7014c186b44eb696cfedf",
            "after_r1_c1.tif": "0b06376c3b78501cdd4737a1931991b70a09dc00e408e4c22d3b267a480b485e",
            "before_r0_c0.tif": "b0cb05094a5b5ceac5f7af81511f288103e2bbf3e00d73b9b423807a34030f51",
            "before_r0_c1.tif": "58879fc24317ace980e2763c83552561b222c868f6dffe926905d7e4d5f15c56",
            "before_r1_c0.tif": "7e1992cca2f7ba1624440e0cf415eb86427a7b41860478440579777285292b6d",
            "before_r1_c1.tif": "a344d5cf48f43df41982e547648104a5dc39af109c373be5217e23710d62eb58",
            "collection.json": "82064eebedfee9480589a25cb4e99302cf11e47d38a4c808d74d1f8385357fe1",
            "truth.json": "e59fb386a4d665d70427def1ff0ce31865c9a6bdf5865d718bb5e5f16d239ce2",
            "truth.parquet": "5b99749be9145e313437dc2d0191f670d7e7b9f754ff8026075e007181986ff4",
            "items": "d196c70bf7e7f76efa7c303b691aebdf897caea7e3bd9ec71fd127952694713c",
        },
    ),
}


def _items_digest(root: Path) -> str:
    """Hash of ``items.ndjson`` with the (machine-dependent) absolute hrefs blanked."""
    lines = []
    for line in (root / "items.ndjson").read_text().splitlines():
        item = json.loads(line)
        for asset in item["assets"].values():
            asset["href"] = Path(asset["href"]).name
        lines.append(json.dumps(item, sort_keys=True))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _digests(root: Path) -> dict[str, str]:
    out = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.iterdir())
        if p.suffix in (".tif", ".parquet") or p.name in ("truth.json", "collection.json")
    }
    out["items"] = _items_digest(root)
    return out


@pytest.mark.parametrize("case", sorted(PINNED))
def test_default_output_is_byte_identical(tmp_path, case):
    kwargs, expected = PINNED[case]
    region = synthesize_region(tmp_path / case, **kwargs)
    got = _digests(region.root)
    assert got == expected, json.dumps(got, indent=2)
