"""``changevg convert change-agent``: the command converts and reports; bad input is exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from flows.cli import main

REF = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "change_agent_mci"


class NotAStateDict:
    """An arbitrary object: ``torch.load(weights_only=True)`` must refuse to rebuild it."""

    def __init__(self) -> None:
        self.weights = torch.zeros(2)


@pytest.fixture
def groups() -> dict[str, dict[str, torch.Tensor]]:
    """The reference's small MCI checkpoint as the authors' three state dicts."""
    if not (REF / "small.safetensors").is_file():
        pytest.skip(f"reference vectors not found at {REF}")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(REF / "small.safetensors")).items():
        group, _, rest = key.partition(".")
        out.setdefault(group, {})[rest] = value
    return out


def _convert(checkpoint: Path, out: Path, vocab: Path = REF / "vocab.json") -> int:
    return main(["convert", "change-agent", str(checkpoint), "--vocab", str(vocab),
                 "--args", str(REF / "small_config.json"), "--out", str(out)])  # fmt: skip


def test_convert_change_agent_command(groups, tmp_path, capsys):
    torch.save(groups, tmp_path / "MCI_small.pth")
    assert _convert(tmp_path / "MCI_small.pth", tmp_path / "vgm") == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'vgm'}" in printed
    assert "keys ignored (never used by the forward pass), e.g. encoder_trans_dict." in printed
    from changevg.mci.model import ChangeAgentMCI
    from changevg.vgm import VisionGuidedModule

    model = VisionGuidedModule.from_pretrained(tmp_path / "vgm")
    assert isinstance(model, ChangeAgentMCI)
    report = json.loads((tmp_path / "vgm" / "conversion.json").read_text())
    assert len(report["ignored"]) == int(printed.split(" checkpoint keys ignored")[0].split()[-1])


def test_missing_group_exits_2_naming_it(groups, tmp_path, capsys):
    torch.save({"decoder_dict": groups["decoder_dict"]}, tmp_path / "x.pth")
    assert _convert(tmp_path / "x.pth", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "changevg: error:" in err and "lacks ['encoder_dict', 'encoder_trans_dict']" in err
    assert not (tmp_path / "o").exists()


def test_pickled_object_exits_2_with_the_reason(tmp_path, capsys):
    torch.save({"encoder_dict": NotAStateDict()}, tmp_path / "x.pth")
    assert _convert(tmp_path / "x.pth", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "torch.load(weights_only=True)" in err and "NotAStateDict" in err


def test_misshaped_key_and_wrong_vocabulary_exit_2(groups, tmp_path, capsys):
    bad = {g: dict(sd) for g, sd in groups.items()}
    bad["decoder_dict"]["Conv1.bias"] = torch.zeros(7)
    torch.save(bad, tmp_path / "bad.pth")
    assert _convert(tmp_path / "bad.pth", tmp_path / "o") == 2
    assert "mis-shaped decoder_dict.Conv1.bias [7] (expected [32])" in capsys.readouterr().err

    torch.save(groups, tmp_path / "ok.pth")
    words = ["<NULL>", "<UNK>", "<START>", "<END>", "road"]
    (tmp_path / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    assert _convert(tmp_path / "ok.pth", tmp_path / "o", tmp_path / "vocab.json") == 2
    assert "5 words but decoder_dict.wdc.weight has 468 rows" in capsys.readouterr().err


def test_convert_needs_vocab_and_out(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convert", "change-agent", "x.pth"])
    assert exc.value.code == 2
    assert "--vocab" in capsys.readouterr().err
