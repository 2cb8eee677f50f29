import copy
import pickle

import pytest

from llmclients import InvalidMessagesError
from llmclients._core.messages import normalize_messages
from llmclients._core.values import Completion, Usage


def test_a_string_is_one_user_turn():
    assert normalize_messages("Hi") == [{"role": "user", "content": "Hi"}]


def test_a_list_is_copied_with_every_key_kept():
    given = [{"role": "system", "content": "Be brief", "name": "x"}, {"role": "user", "content": "Hi"}]
    result = normalize_messages(given)
    assert result == given
    result[0]["content"] = "changed"
    assert given[0]["content"] == "Be brief"


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ("", "empty string"),
        ([], "empty list"),
        (None, "not NoneType"),
        (b"hi", "not bytes"),
        ({"role": "user", "content": "x"}, "not dict"),
        (["hi"], "messages[0] must be a dict"),
        ([{"role": "user", "content": "a"}, {"content": "b"}], "messages[1] has no 'role' key"),
        ([{"role": "user"}], "messages[0] has no 'content' key"),
        ([{"role": "bot", "content": "x"}], "messages[0]['role'] is 'bot'"),
        (
            [{"role": "user", "content": 3}],
            "messages[0]['content'] must be a str or a list of content parts, not int",
        ),
    ],
)
def test_bad_messages_name_the_item_and_key(messages, fragment):
    with pytest.raises(InvalidMessagesError) as caught:
        normalize_messages(messages)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_completion_str_is_its_text():
    reply = Completion(text="Hello", finish_reason="stop", usage=None, model="m", provider="openai")
    assert str(reply) == "Hello"
    assert f"{reply}!" == "Hello!"


def test_usage_ignores_non_integer_counts():
    assert Usage.from_dict({"prompt_tokens": 3, "completion_tokens": "x"}) == Usage(3, None, None)


# Usage keeps the face it had in 0.1: the 3-tuple (prompt, completion, total).
rich_usage = Usage(10, 5, 15, cached_tokens=8, reasoning_tokens=3, cost=0.5, raw={"prompt_tokens": 10})


def test_usage_unpacks_into_its_three_counts():
    prompt, completion, total = rich_usage
    assert (prompt, completion, total) == (10, 5, 15)
    assert list(rich_usage) == [10, 5, 15]


def test_usage_indexes_and_measures_as_the_three_counts():
    assert (rich_usage[0], rich_usage[1], rich_usage[2]) == (10, 5, 15)
    assert rich_usage[-1] == 15 and rich_usage[:2] == (10, 5)
    assert len(rich_usage) == 3
    with pytest.raises(IndexError):
        rich_usage[3]


def test_usage_equals_its_three_tuple_either_way_round():
    assert rich_usage == (10, 5, 15)
    assert (10, 5, 15) == rich_usage  # noqa: SIM300 (the tuple's side first, on purpose)
    assert (rich_usage != (10, 5, 15)) is False
    assert rich_usage != (10, 5, 16)
    assert rich_usage != (10, 5)
    assert rich_usage != [10, 5, 15]
    assert hash(rich_usage) == hash((10, 5, 15))


def test_usages_compare_every_count_but_raw():
    assert rich_usage == Usage(10, 5, 15, cached_tokens=8, reasoning_tokens=3, cost=0.5)
    assert rich_usage != Usage(10, 5, 15)
    assert rich_usage != rich_usage._replace(cost=0.25)
    assert len({rich_usage, Usage(10, 5, 15, cached_tokens=8, reasoning_tokens=3, cost=0.5)}) == 1


def test_usage_keeps_the_other_counts_as_attributes():
    assert (rich_usage.prompt_tokens, rich_usage.completion_tokens, rich_usage.total_tokens) == (10, 5, 15)
    assert (rich_usage.cached_tokens, rich_usage.reasoning_tokens, rich_usage.cost) == (8, 3, 0.5)
    assert rich_usage.raw == {"prompt_tokens": 10}
    assert Usage().cached_tokens is None and Usage() == (None, None, None)
    assert rich_usage._fields == ("prompt_tokens", "completion_tokens", "total_tokens")
    assert rich_usage._replace(total_tokens=16) == Usage(
        10, 5, 16, cached_tokens=8, reasoning_tokens=3, cost=0.5
    )
    with pytest.raises(AttributeError):
        rich_usage.cost = 1.0  # type: ignore[misc]


def test_usage_repr_to_dict_and_copies_are_unchanged():
    assert repr(rich_usage) == (
        "Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, cached_tokens=8, "
        "reasoning_tokens=3, cost=0.5, raw={'prompt_tokens': 10})"
    )
    assert rich_usage.to_dict() == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cached_tokens": 8,
        "reasoning_tokens": 3,
        "cost": 0.5,
    }
    reply = Completion("Hi", "stop", rich_usage, "m", "openai")
    assert reply.to_dict()["usage"] == rich_usage.to_dict()
    for copied in (pickle.loads(pickle.dumps(rich_usage)), copy.copy(rich_usage), copy.deepcopy(rich_usage)):
        assert copied == rich_usage and copied.raw == rich_usage.raw and type(copied) is Usage


def test_a_usage_pickled_as_the_seven_field_tuple_still_loads():
    # What pickle.dumps(Usage(1, 2, 3, 4, 5, 0.5, {"x": 1})) wrote while Usage was a 7-field NamedTuple.
    old = (
        b"\x80\x04\x95?\x00\x00\x00\x00\x00\x00\x00\x8c\x10llmclients.types\x94\x8c\x05Usage\x94\x93\x94"
        b"(K\x01K\x02K\x03K\x04K\x05G?\xe0\x00\x00\x00\x00\x00\x00}\x94\x8c\x01x\x94K\x01st\x94\x81\x94."
    )
    usage = pickle.loads(old)
    assert usage == (1, 2, 3)
    assert (usage.cached_tokens, usage.reasoning_tokens, usage.cost, usage.raw) == (4, 5, 0.5, {"x": 1})
