"""The official ``openai`` SDK against routes backed by the simulator
speaking Anthropic's, Gemini's and Azure OpenAI's wire formats: the gateway
translates both ways, and the SDK must not notice.
"""

from __future__ import annotations

import base64
import json
import struct

import openai
import pytest

from conftest import ANSWER_TOKENS, TRANSLATED_ROUTES

ROUTES = list(TRANSLATED_ROUTES)
FORMATS = {"claude-route": "anthropic", "gemini-route": "gemini", "azure-route": "azure"}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize("route", ROUTES)
def test_text(client: openai.OpenAI, sim, route: str):
    r = client.chat.completions.create(
        model=route,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
        max_tokens=100,
    )
    assert r.object == "chat.completion"
    assert len(r.choices[0].message.content.split()) == ANSWER_TOKENS
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == ANSWER_TOKENS
    assert r.usage.prompt_tokens > 0
    seen = sim.requests()
    assert [s["format"] for s in seen] == [FORMATS[route]]


@pytest.mark.parametrize("route", ROUTES)
def test_stream(client: openai.OpenAI, route: str):
    stream = client.chat.completions.create(
        model=route,
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == ANSWER_TOKENS
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == ANSWER_TOKENS


@pytest.mark.parametrize("route", ROUTES)
def test_tools_non_stream_then_result(client: openai.OpenAI, route: str):
    r = client.chat.completions.create(
        model=route, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER]
    )
    assert r.choices[0].finish_reason == "tool_calls"
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args["city"], str)

    follow = client.chat.completions.create(
        model=route,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            r.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18C"},
        ],
    )
    assert follow.choices[0].finish_reason == "stop"
    assert follow.choices[0].message.content


@pytest.mark.parametrize("route", ROUTES)
def test_tool_arguments_split_across_chunks(client: openai.OpenAI, route: str):
    stream = client.chat.completions.create(
        model=route,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    pieces: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    finish = None
    for c in stream:
        if not c.choices:
            continue
        for tc in c.choices[0].delta.tool_calls or []:
            if tc.function and tc.function.name:
                names[tc.index] = tc.function.name
            pieces.setdefault(tc.index, []).append((tc.function and tc.function.arguments) or "")
        finish = c.choices[0].finish_reason or finish
    assert names == {0: "get_weather"}
    assert isinstance(json.loads("".join(pieces[0]))["city"], str)
    assert finish == "tool_calls"


def test_gemini_embeddings_float_and_base64(client: openai.OpenAI):
    f = client.embeddings.create(model="gemini-embed-route", input=["alpha", "beta"], encoding_format="float")
    assert len(f.data) == 2
    vec = f.data[0].embedding
    assert len(vec) > 0
    # The SDK's default asks for base64 and decodes it itself.
    b = client.embeddings.create(model="gemini-embed-route", input=["alpha", "beta"])
    assert b.data[0].embedding == pytest.approx(vec, rel=1e-6)
    raw = client.embeddings.with_raw_response.create(
        model="gemini-embed-route", input="alpha", encoding_format="base64"
    ).http_response.json()
    floats = struct.unpack(f"<{len(vec)}f", base64.b64decode(raw["data"][0]["embedding"]))
    assert list(floats) == pytest.approx(vec, rel=1e-6)


@pytest.mark.parametrize("route", ROUTES)
def test_upstream_rate_limit_is_openai_429(client: openai.OpenAI, sim, route: str):
    sim.set_knobs(TRANSLATED_ROUTES[route], rate_limit_next=1, retry_after_s=3, answer_tokens=ANSWER_TOKENS)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=route, messages=[{"role": "user", "content": "hi"}])
    assert e.value.response.headers["retry-after"] == "3"


def test_untranslatable_field_is_refused_by_name(client: openai.OpenAI, sim):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="claude-route", messages=[{"role": "user", "content": "hi"}], logit_bias={"50256": -100}
        )
    assert e.value.body["param"] == "logit_bias"
    assert sim.requests() == []


PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("route", ["claude-route", "gemini-route"])
def test_json_schema_answers_are_json(client: openai.OpenAI, sim, route: str):
    r = client.chat.completions.create(
        model=route,
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA}},
    )
    sent = sim.requests()[0]["body"]
    if route == "claude-route":
        # Anthropic has no JSON mode: one forced tool carries the schema,
        # and its input comes back as the answer's text.
        assert sent["tool_choice"] == {"type": "tool", "name": "switchyard_json_output"}
        assert sent["tools"][0]["input_schema"]["required"] == ["name", "age"]
        person = json.loads(r.choices[0].message.content)
        assert isinstance(person["name"], str) and isinstance(person["age"], int)
        assert r.choices[0].finish_reason == "stop"
        assert r.choices[0].message.tool_calls is None
    else:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"


@pytest.mark.parametrize("route", ["claude-route", "gemini-route"])
def test_images_and_sampling_reach_the_provider_translated(client: openai.OpenAI, sim, route: str):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    client.chat.completions.create(
        model=route,
        messages=[
            {"role": "system", "content": "Describe images."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            },
        ],
        temperature=1.5,
        top_p=0.9,
        stop=["END"],
        max_completion_tokens=77,
    )
    sent = sim.requests()[0]["body"]
    if route == "claude-route":
        image = sent["messages"][0]["content"][1]
        assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
        assert sent["temperature"] == 1.0  # Anthropic's range is 0-1: clamped
        assert sent["top_p"] == 0.9 and sent["stop_sequences"] == ["END"] and sent["max_tokens"] == 77
    else:
        image = sent["contents"][0]["parts"][1]
        assert image == {"inlineData": {"mimeType": "image/png", "data": png}}
        cfg = sent["generationConfig"]
        assert cfg["temperature"] == 1.5 and cfg["topP"] == 0.9
        assert cfg["stopSequences"] == ["END"] and cfg["maxOutputTokens"] == 77


@pytest.mark.parametrize("route", ["claude-route", "gemini-route"])
def test_tool_choice_variants_translate(client: openai.OpenAI, sim, route: str):
    expected = {
        "claude-route": [{"type": "auto"}, {"type": "none"}, {"type": "any"}, {"type": "tool", "name": "get_weather"}],
        "gemini-route": [
            {"functionCallingConfig": {"mode": "AUTO"}},
            {"functionCallingConfig": {"mode": "NONE"}},
            {"functionCallingConfig": {"mode": "ANY"}},
            {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        ],
    }[route]
    choices = ["auto", "none", "required", {"type": "function", "function": {"name": "get_weather"}}]
    for choice in choices:
        client.chat.completions.create(
            model=route, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER], tool_choice=choice
        )
    field = "tool_choice" if route == "claude-route" else "toolConfig"
    assert [s["body"][field] for s in sim.requests()] == expected
