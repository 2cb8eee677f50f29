import pytest

from llmclients import InvalidMessagesError
from llmclients.types import Completion, Usage, normalize_messages


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
