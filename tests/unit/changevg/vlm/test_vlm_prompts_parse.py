"""Prompt layout, question classification, answer parsing and ChangeResult assembly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from _changevg_vlm_tiny import tokenizer

from changevg.result import GRID_CELLS, ChangeObject
from changevg.vlm.parse import parse_answer, to_change_result
from changevg.vlm.prompts import (
    QUESTIONS,
    SYSTEM_PROMPT,
    TASKS,
    build_messages,
    classify_question,
    format_answer,
    format_vgm_text,
)


def test_prompt_layout_is_exactly_as_documented():
    text = tokenizer().apply_chat_template(
        build_messages("caption", vgm_text="two new buildings."),
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text == (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>"
        "Please refer to this description: two new buildings. Modify or correct it.\n"
        "<|vgm_start|><|vgm_pad|><|vgm_end|>\n"
        f"{QUESTIONS['caption']}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    plain = tokenizer().apply_chat_template(
        build_messages("yes_no"), tokenize=False, add_generation_prompt=False
    )
    assert "<|vision_end|>Are there any changes" in plain and "vgm" not in plain


def test_vgm_text_from_a_description():
    desc = SimpleNamespace(
        caption="some houses are built.", counts={"building": 3, "road": 0},
        cells=["center", "top left corner"],
    )  # fmt: skip
    assert format_vgm_text(desc.caption, desc.counts, desc.cells) == (
        "some houses are built; new buildings: 3; new roads: 0; locations: top left corner, center"
    )
    text = build_messages("locate", vgm_text=desc)[1]["content"][2]["text"]
    assert text.startswith("Please refer to this description: some houses are built; new")
    assert text.endswith("locations: top left corner, center. Modify or correct it.\n")


def test_multi_turn_puts_images_in_the_first_turn_only():
    msgs = build_messages(
        "count_road", vgm_text="x", history=[("caption", "A road."), ("yes_no", "Yes")]
    )
    roles = [m["role"] for m in msgs]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    images = [p for m in msgs if isinstance(m["content"], list) for p in m["content"]]
    assert sum(p["type"] == "image" for p in images) == 2
    assert msgs[3]["content"] == QUESTIONS["yes_no"]
    assert msgs[-1]["content"] == QUESTIONS["count_road"]


@pytest.mark.parametrize(
    ("question", "task"),
    [
        *[(q, t) for t, q in QUESTIONS.items()],
        ("How many buildings were built?", "count_building"),
        ("how many new roads are there", "count_road"),
        ("Has anything changed?", "yes_no"),
        ("Is there any change between the images?", "yes_no"),
        ("In which part of the image are the changes?", "locate"),
        ("Describe what changed.", "caption"),
        ("What color are the roofs?", None),
        ("How many trees are there?", None),
    ],
)
def test_classify_question(question, task):
    assert classify_question(question) == task


YES_NO = {
    "Yes": True, "yes.": True, "Yes, two new buildings.": True, "Yeah": True,
    "There are some changes.": True, "The buildings have changed.": True,
    "No": False, "no.": False, "No, nothing changed.": False, "There are no changes.": False,
    "Nothing has changed.": False, "The scene remains the same.": False,
    "Yes and no": None, "maybe": None, "blue": None, "": None, "\ufffd\ufffd": None,
}  # fmt: skip
COUNTS = {
    "3": 3, "There are 3 new buildings.": 3, "three": 3, "Three.": 3, "twenty-one": 21,
    "There is one new road.": 1, "a new building": 1, "no new buildings": 0, "None.": 0,
    "0": 0, "zero": 0, "2 or 3": None, "several": None, "buildings": None, "": None,
}  # fmt: skip
LOCATIONS = {
    "top left corner, center": ["top left corner", "center"],
    "center, top left corner": ["top left corner", "center"],
    "No change": [], "no changes.": [], "Nowhere": [],
    "Upper-left and bottom right": ["top left corner", "lower right corner"],
    "the middle": ["center"], "top": ["top"], "lower": ["lower"],
    "top right corner, left, lower left corner": ["top right corner", "left", "lower left corner"],
    "No change in the top": None, "everywhere": None, "": None,
}  # fmt: skip


@pytest.mark.parametrize(("text", "value"), YES_NO.items())
def test_parse_yes_no(text, value):
    assert parse_answer("yes_no", text) is value


@pytest.mark.parametrize(("text", "value"), COUNTS.items())
def test_parse_counts(text, value):
    assert parse_answer("count_building", text) == value
    assert parse_answer("count_road", text) == value


@pytest.mark.parametrize(("text", "value"), LOCATIONS.items())
def test_parse_locations(text, value):
    assert parse_answer("locate", text) == value


def test_parse_captions_and_free_text():
    assert parse_answer("caption", '  "A road  is built."<|im_end|>') == "A road is built."
    assert parse_answer("caption", "...") is None
    assert parse_answer(None, "Red roofs.") == "Red roofs."
    with pytest.raises(ValueError):
        parse_answer("colour", "red")


def test_canonical_answers_parse_back():
    for cells in ([], ["center"], list(GRID_CELLS)):
        assert parse_answer("locate", format_answer("locate", cells)) == cells
    for task, value in (("yes_no", True), ("yes_no", False), ("count_road", 7)):
        assert parse_answer(task, format_answer(task, value)) == value
    assert set(TASKS) == set(QUESTIONS)


def test_to_change_result_precedence():
    obj = ChangeObject("building", [(0, 0), (1, 0), (1, 1)], (0, 0, 2, 2), 4, 0.9, "top")
    vgm = SimpleNamespace(
        caption="vgm caption", changed=True, change_score=0.8,
        counts={"building": 5, "road": 1}, cells=["top"], objects=[obj],
    )  # fmt: skip
    answers = {
        "caption": "Two buildings are built.",
        "yes_no": "Yes",
        "count_building": "lots of them",
        "locate": "top, center",
        "extra question": "free text",
    }
    result = to_change_result(answers, vgm=vgm)
    assert result.caption == "Two buildings are built."
    assert result.changed is True and result.change_score == 0.8
    assert result.counts == {"building": 5, "road": 1}  # unparsed / not asked: VGM fallback
    assert result.locations == ["top", "center"]
    assert result.unparsed == ["count_building"]
    assert result.answers == answers and result.objects == [obj]

    alone = to_change_result({"yes_no": "No", "count_road": "gibberish", "caption": "\ufffd"})
    assert alone.changed is False and alone.change_score == 0.0
    assert alone.counts == {"building": 0, "road": 0} and alone.caption == ""
    assert alone.unparsed == ["caption", "count_road"]
    assert to_change_result({"count_road": "two"}).changed is True


def test_prompt_styles_v1_and_v2():
    from changevg.result import ChangeObject
    from changevg.vlm.prompts import (
        STYLES,
        build_messages,
        classify_question,
        describe_hint,
        format_vgm_text,
        get_style,
    )

    assert set(STYLES) >= {"changevg-v1", "changevg-v2"}
    assert get_style(None).version == "changevg-v1"
    with pytest.raises(ValueError, match="changevg-v2"):
        get_style("nope")
    counts, cells = {"building": 3, "road": 1}, ["center"]
    v1 = format_vgm_text("houses are built", counts, cells)
    assert v1 == "houses are built; new buildings: 3; new roads: 1; locations: center"
    kinds = {"building": {"new": 2, "demolished": 1}, "road": {"new": 1, "removed": 0}}
    v2 = format_vgm_text("houses are built", counts, cells, kinds=kinds, style="changevg-v2")
    assert v2 == (
        "houses are built; changed buildings: 3 (new 2, demolished 1); "
        "changed roads: 1 (new 1, removed 0); locations: center"
    )
    assert "new" not in format_vgm_text("x", counts, cells, style="changevg-v2")

    def obj(cls, change):
        return ChangeObject(cls, [], (0, 0, 1, 1), 1, 1.0, "center", change)

    class Desc:
        caption = "houses are built"
        counts = {"building": 2, "road": 0}
        cells = ["center"]
        objects = [obj("building", "new"), obj("building", "demolished")]

    assert "changed buildings: 2 (new 1, demolished 1)" in describe_hint(Desc(), "changevg-v2")
    Desc.objects = [obj("building", None), obj("building", None)]  # no change-type channel
    assert "changed buildings: 2;" in describe_hint(Desc(), "changevg-v2")
    msgs = build_messages("count_building", vgm_text=Desc(), style="changevg-v2")
    question = msgs[1]["content"][-1]["text"]
    assert question == "How many buildings have changed in the two images?"
    assert classify_question(question) == "count_building"
