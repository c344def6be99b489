"""Rubric files: strict validation with file:line and field, rendering, content hash."""

from __future__ import annotations

import json

import pytest
import yaml

from judge.errors import RubricError
from judge.rubric import load_rubric, parse_rubric
from judge.verdict import parse_verdict
from tests.judge.conftest import RUBRICS

MINIMAL = """\
name: tiny
version: 1
mode: pairwise
instructions: Judge fairly. {{criteria}}
criteria:
  - name: accuracy
    description: Correct.
template: |
  {{prompt}}
  A: {{response_a}}
  B: {{response_b}}
"""


def rubric_text(**changes: object) -> str:
    data = yaml.safe_load(MINIMAL)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize("path", sorted(RUBRICS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_rubric_loads_renders_and_its_examples_parse(path):
    rubric = load_rubric(path)
    messages = rubric.render(
        prompt="My Lumen lamp flickers. I'm Ana.",
        response_a="Hi Ana, 1. Unplug it. — Brightwell Support",
        response_b="Try turning it off and on.",
        reference="Unplug for 10 seconds, then update the firmware.",
        category="support",
    )
    assert messages[0]["role"] == "system"
    assert "{{" not in json.dumps(messages)
    assert "My Lumen lamp flickers" in messages[-1]["content"]
    assert "Try turning it off and on." in messages[-1]["content"]
    # Few-shot answers are sent as assistant turns and must parse under the rubric's own rules.
    for turn in messages[1:-1]:
        if turn["role"] == "assistant":
            assert parse_verdict(rubric, turn["content"]).parsed


def test_shipped_rubrics_cover_the_required_kinds():
    rubrics = {p.stem: load_rubric(p) for p in RUBRICS.glob("*.yaml")}
    assert rubrics["pointwise-quality"].mode == "pointwise"
    assert {c.name for c in rubrics["pointwise-quality"].criteria} == {
        "accuracy",
        "helpfulness",
        "tone",
        "format",
    }
    assert "reference" in rubrics["reference-pairwise"].variables
    assert {"accuracy", "helpfulness", "harmlessness"} <= {
        c.name for c in rubrics["general-pairwise"].criteria
    }
    style = rubrics["lumen-support-style"]
    text = " ".join(c.description for c in style.criteria)
    assert "— Brightwell Support" in text and "30-day" in text and "2-year" in text


def test_unknown_top_level_key_is_rejected_with_file_line_and_allowed_keys():
    text = MINIMAL + "temprature: 0\n"
    with pytest.raises(RubricError) as info:
        parse_rubric(text, source="rubrics/tiny.yaml")
    message = str(info.value)
    assert message.startswith("rubrics/tiny.yaml:12: temprature: unknown key")
    assert "instructions" in message


def test_unknown_key_inside_a_criterion_names_its_position(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(MINIMAL.replace("    description: Correct.\n", "    descripton: Correct.\n"))
    with pytest.raises(RubricError, match=r"r\.yaml:7: criteria\[0\]\.descripton: unknown key"):
        load_rubric(path)


@pytest.mark.parametrize("key", ["name", "version", "mode", "instructions", "template", "criteria"])
def test_missing_required_key_is_named(key):
    with pytest.raises(RubricError, match=f"missing required key '{key}'"):
        parse_rubric(rubric_text(**{key: None}))


def test_unknown_template_variable_is_named():
    text = rubric_text(template="{{prompt}} {{response_a}} {{response_b}} {{answer_key}}")
    with pytest.raises(RubricError, match=r"template: unknown variable \{\{answer_key\}\}"):
        parse_rubric(text)


def test_template_that_never_shows_response_b_is_rejected():
    with pytest.raises(RubricError, match=r"never uses \{\{response_b\}\}"):
        parse_rubric(rubric_text(template="{{prompt}} {{response_a}}"))


def test_rendering_without_a_variable_the_rubric_needs_names_it():
    rubric = load_rubric(RUBRICS / "reference-pairwise.yaml")
    with pytest.raises(RubricError, match="needs reference"):
        rubric.render(prompt="p", response_a="a", response_b="b", reference=None)


def test_item_text_with_braces_is_not_substituted_again():
    rubric = parse_rubric(MINIMAL)
    messages = rubric.render(
        prompt="Explain {{response_b}} in Jinja", response_a="x", response_b="y"
    )
    assert "Explain {{response_b}} in Jinja" in messages[-1]["content"]


def test_content_hash_changes_with_content_not_with_comments_or_layout():
    base = parse_rubric(MINIMAL)
    commented = parse_rubric("# a comment\n" + MINIMAL.replace("version: 1", "version:    1"))
    edited = parse_rubric(MINIMAL.replace("Judge fairly.", "Judge very fairly."))
    assert base.content_hash == commented.content_hash
    assert edited.content_hash != base.content_hash
    assert len(base.content_hash) == 64


def test_few_shot_examples_become_conversation_turns():
    example = {
        "prompt": "2+2?",
        "response_a": "4",
        "response_b": "5",
        "answer": {"explanation": "A is right.", "winner": "A"},
    }
    rubric = parse_rubric(rubric_text(examples=[example]))
    messages = rubric.render(prompt="3+3?", response_a="6", response_b="7")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "2+2?" in messages[1]["content"]
    assert json.loads(messages[2]["content"])["winner"] == "A"


def test_an_example_answer_is_written_as_typed_not_as_unicode_escapes():
    example = {
        "prompt": "Boiling point in Fahrenheit?",
        "response_a": "212 °F.",
        "response_b": "100 °F.",
        "answer": {"explanation": "A is right: 212 °F.", "winner": "A"},
    }
    rubric = parse_rubric(rubric_text(examples=[example]))
    answer = rubric.render(prompt="q", response_a="a", response_b="b")[2]["content"]
    assert "212 °F" in answer and "\\u00b0" not in answer
    assert json.loads(answer)["explanation"] == "A is right: 212 °F."


def test_example_answer_that_breaks_the_output_schema_is_rejected():
    example = {
        "prompt": "2+2?",
        "response_a": "4",
        "response_b": "5",
        "answer": {"explanation": "A is right.", "winner": "first"},
    }
    with pytest.raises(RubricError, match=r"examples\[0\]\.answer: label 'first'"):
        parse_rubric(rubric_text(examples=[example]))


def test_pointwise_criterion_needs_a_scale_and_pairwise_refuses_one():
    pointwise = rubric_text(mode="pointwise")
    with pytest.raises(RubricError, match=r"criteria\[0\]: pointwise criteria need a scale"):
        parse_rubric(pointwise)
    scaled = rubric_text(criteria=[{"name": "a", "description": "d", "scale": [1, 5]}])
    with pytest.raises(RubricError, match="only pointwise criteria take scale"):
        parse_rubric(scaled)


def test_pointwise_schema_lists_every_criterion_with_its_scale(pointwise):
    schema = pointwise.output_schema()
    per_response = schema["properties"]["scores"]["properties"]["A"]
    assert per_response["required"] == ["accuracy", "helpfulness", "tone", "format"]
    assert per_response["properties"]["tone"]["enum"] == [1, 2, 3, 4, 5]
    assert schema["required"] == ["explanation", "scores"]


def test_disallowing_ties_removes_tie_from_the_schema():
    rubric = parse_rubric(rubric_text(allow_tie=False))
    assert rubric.output_schema()["properties"]["winner"]["enum"] == ["A", "B"]


def test_invalid_yaml_names_the_line():
    with pytest.raises(RubricError, match=r"<rubric>:3: not valid YAML"):
        parse_rubric("name: x\nversion: 1\n\tmode: pairwise\n")


def test_a_key_given_twice_is_refused_not_silently_dropped():
    text = rubric_text(allow_tie=False).replace("name:", "name: first\nname:", 1)
    with pytest.raises(RubricError, match=r"<rubric>:\d+: key 'name' appears twice"):
        parse_rubric(text)


def test_anchors_that_expand_without_bound_are_refused_before_expanding():
    # Each level repeats the one above ten times: nine levels are a billion values.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    with pytest.raises(RubricError, match="expands to more than 100000 values"):
        parse_rubric("\n".join(lines) + "\n")


def test_unreadable_file_is_a_rubric_error(tmp_path):
    with pytest.raises(RubricError, match="cannot read rubric"):
        load_rubric(tmp_path / "missing.yaml")


def test_an_empty_response_renders_it_is_a_valid_answer():
    rubric = load_rubric(RUBRICS / "lumen-support-style.yaml")
    messages = rubric.render(prompt="p", response_a="", response_b="b", reference="r")
    assert "[Reply A]\n\n\n[Reply B]\nb" in messages[-1]["content"]
