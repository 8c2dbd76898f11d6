"""changevg.screening: the nodata blanking, the screen score and the rule that sends pairs on."""

from __future__ import annotations

import numpy as np

from changevg.result import NO_CHANGE, ChangeObject
from changevg.screening import (
    blank_nodata,
    needs_vlm,
    screen_score,
    screened_out,
    without_mask,
)
from changevg.vgm import VGMDescription


def _description(change_score: float, *object_scores: float, changed: bool = False):
    objects = [
        ChangeObject(
            cls="building",
            polygon=[(0, 0), (2, 0), (2, 2), (0, 2)],
            bbox=(0, 0, 2, 2),
            area_px=4,
            score=s,
            cell="top left",
        )
        for s in object_scores
    ]
    return VGMDescription(
        caption="a house is built.",
        change_score=change_score,
        changed=changed,
        counts={"building": len(objects), "road": 0},
        cells=["top left"] if objects else [],
        objects=objects,
        mask=np.ones((8, 8), np.uint8),
    )


def test_blank_nodata_clears_both_dates_where_either_has_none():
    before = np.full((3, 4, 4), 100, np.uint8)
    after = np.full((3, 4, 4), 120, np.uint8)
    before[:, 0, 0] = 0  # nodata in the before date
    after[:, 3, :] = 0  # the after footprint ends early
    b, a = blank_nodata(before, after)
    invalid = np.zeros((4, 4), bool)
    invalid[0, 0] = invalid[3, :] = True
    assert (b[:, invalid] == 0).all() and (a[:, invalid] == 0).all()
    assert (b[:, ~invalid] == 100).all() and (a[:, ~invalid] == 120).all()
    assert before[0, 3, 0] == 100  # inputs untouched
    dark = before.copy()
    dark[0, 1, 1] = 0  # one band 0 is data, not nodata
    assert blank_nodata(dark, after)[0][1, 1, 1] == 100


def test_screen_score_takes_either_branch():
    assert screen_score(_description(0.1)) == 0.1
    assert screen_score(_description(0.1, 0.8, 0.3)) == 0.8
    assert screen_score(_description(0.9, 0.2)) == 0.9


def test_needs_vlm_at_or_above_the_threshold_or_for_every_tile():
    assert needs_vlm(_description(0.5), 0.5)
    assert needs_vlm(_description(0.1, 0.6), 0.5)  # the mask alone is enough
    assert not needs_vlm(_description(0.49), 0.5)
    assert needs_vlm(_description(0.0), 0.5, all_tiles=True)


def test_screened_out_is_unchanged_with_no_objects():
    quiet = screened_out(_description(0.2, 0.3))
    assert not quiet.changed and quiet.objects == [] and quiet.change_score == 0.2
    assert quiet.counts == {"building": 0, "road": 0}
    assert quiet.caption == "a house is built."  # the VGM said unchanged: its caption stays
    overruled = screened_out(_description(0.45, changed=True))
    assert overruled.caption == f"{NO_CHANGE}."


def test_without_mask_keeps_everything_but_the_mask():
    full = _description(0.7, 0.9)
    light = without_mask(full)
    assert light.mask.shape == (0, 0) and full.mask.shape == (8, 8)
    assert (light.caption, light.change_score, light.objects) == (
        full.caption,
        full.change_score,
        full.objects,
    )
