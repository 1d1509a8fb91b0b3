"""The official ``anthropic`` SDK against ``POST /v1/messages``.

The gateway's Anthropic-compatible ingress serves any route: the OpenAI
simulator (``gpt-4o-mini``), the Anthropic one (``claude-route``) and the
Gemini one (``gemini-route``) must all look like Anthropic to the SDK.
"""

from __future__ import annotations

import json

import anthropic
import pytest

from conftest import ANSWER_TOKENS, CHAT_ROUTE

ROUTES = [CHAT_ROUTE, "claude-route", "gemini-route"]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}


@pytest.mark.parametrize("route", ROUTES)
def test_text(claude: anthropic.Anthropic, route: str):
    msg = claude.messages.create(
        model=route,
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.content[0].type == "text"
    assert len(msg.content[0].text.split()) == ANSWER_TOKENS
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == ANSWER_TOKENS
    assert msg.usage.input_tokens > 0


@pytest.mark.parametrize("route", ROUTES)
def test_stream(claude: anthropic.Anthropic, route: str):
    with claude.messages.stream(
        model=route,
        max_tokens=256,
        messages=[{"role": "user", "content": "Say hello"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(text.split()) == ANSWER_TOKENS
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == ANSWER_TOKENS


@pytest.mark.parametrize("route", ROUTES)
def test_tools_and_tool_result(claude: anthropic.Anthropic, route: str):
    msg = claude.messages.create(
        model=route,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert use.name == "get_weather"
    assert isinstance(use.input["city"], str)

    follow = claude.messages.create(
        model=route,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C"}]},
        ],
    )
    assert follow.stop_reason == "end_turn"
    assert follow.content[0].type == "text"


@pytest.mark.parametrize("route", ROUTES)
def test_streamed_tool_input_arrives_in_pieces(claude: anthropic.Anthropic, route: str):
    with claude.messages.stream(
        model=route,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        pieces = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert json.loads("".join(pieces)) == use.input
    assert final.stop_reason == "tool_use"


def test_count_tokens(claude: anthropic.Anthropic):
    counted = claude.messages.count_tokens(
        model="claude-route",
        messages=[{"role": "user", "content": "Hello, how are you today?"}],
    )
    assert counted.input_tokens >= 5


def test_wrong_key_is_authentication_error(gateway):
    c = anthropic.Anthropic(base_url=gateway.url, api_key="sk-wrong", max_retries=0, timeout=20)
    with pytest.raises(anthropic.AuthenticationError) as e:
        c.messages.create(model=CHAT_ROUTE, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 401
    assert e.value.body["error"]["type"] == "authentication_error"


def test_unknown_model_is_not_found(claude: anthropic.Anthropic):
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="no-such-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["error"]["type"] == "not_found_error"


def test_bad_request_names_the_problem(claude: anthropic.Anthropic):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(
            model="gemini-route",
            max_tokens=16,
            messages=[{"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x", "media_type": "text/plain"}}]}],
        )
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "messages[0].content[0]" in e.value.body["error"]["message"]


def test_upstream_overload_is_an_anthropic_error(claude: anthropic.Anthropic, sim):
    sim.set_knobs("claude-sim", fail_next=1, error_status=529, answer_tokens=ANSWER_TOKENS)
    with pytest.raises(anthropic.APIStatusError) as e:
        claude.messages.create(model="claude-route", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code >= 500
    assert e.value.body["type"] == "error"


def test_models_list(claude: anthropic.Anthropic):
    ids = [m.id for m in claude.models.list()]
    assert CHAT_ROUTE in ids and "claude-route" in ids, ids
    model = claude.models.retrieve("claude-route")
    assert model.id == "claude-route"
    assert model.type == "model"
