"""Conformance of Switchyard's OpenAI-compatible API, driven by the official
``openai`` Python SDK (and raw HTTP where the SDK cannot send the request).

Every test starts with the simulator at its default knobs and an empty
request log (the ``sim`` fixture), so tests can run in any order.
"""

from __future__ import annotations

import json
import math
import uuid

import httpx
import openai
import pytest

from conftest import (
    ANSWER_TOKENS,
    CHAT_DEPLOYMENT,
    CHAT_MODEL,
    CHAT_ROUTE,
    EMBED_MODEL,
    EMBED_ROUTE,
)

CHAT_PATH = "/v1/chat/completions"
EMBED_PATH = "/v1/embeddings"
HELLO = [{"role": "user", "content": "Say hello."}]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}

# A 1x1 transparent PNG.
PNG_DATA_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def assert_openai_error_shape(body: object) -> dict:
    """`{"error": {"message", "type", "param", "code"}}`, as OpenAI sends it."""
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err, dict), body
    for field in ("message", "type", "param", "code"):
        assert field in err, f"error object lacks {field!r}: {body!r}"
    assert isinstance(err["message"], str) and err["message"], body
    assert isinstance(err["type"], str) and err["type"], body
    assert err["param"] is None or isinstance(err["param"], str), body
    assert err["code"] is None or isinstance(err["code"], str), body
    return err


def sdk_error_body(exc: openai.APIStatusError) -> dict:
    """The full JSON body of an SDK error (``exc.body`` is only its ``error`` member)."""
    return exc.response.json()


# --------------------------------------------------------------------------
# Chat completions
# --------------------------------------------------------------------------


def test_chat_non_stream(client: openai.OpenAI):
    raw = client.chat.completions.with_raw_response.create(model=CHAT_ROUTE, messages=HELLO)
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.id
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )

    assert raw.headers.get("x-request-id"), dict(raw.headers)
    assert raw.headers.get("x-switchyard-route") == CHAT_DEPLOYMENT, dict(raw.headers)
    overhead = raw.headers.get("x-switchyard-overhead-ms")
    assert overhead is not None, dict(raw.headers)
    assert math.isfinite(float(overhead)) and float(overhead) >= 0, overhead


def test_client_request_id_is_echoed(client: openai.OpenAI, sim):
    rid = f"conformance-{uuid.uuid4()}"
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT_ROUTE, messages=HELLO, extra_headers={"x-request-id": rid}
    )
    assert raw.headers.get("x-request-id") == rid
    assert raw.parse().choices[0].message.content
    # And it is propagated upstream, so upstream logs can be joined.
    assert sim.only_request(CHAT_PATH)["request_id"] == rid


def test_request_ids_are_unique_when_not_provided(client: openai.OpenAI):
    a = client.chat.completions.with_raw_response.create(model=CHAT_ROUTE, messages=HELLO)
    b = client.chat.completions.with_raw_response.create(model=CHAT_ROUTE, messages=HELLO)
    assert a.headers.get("x-request-id") and b.headers.get("x-request-id")
    assert a.headers["x-request-id"] != b.headers["x-request-id"]


def test_stream_with_include_usage(client: openai.OpenAI):
    with client.chat.completions.with_streaming_response.create(
        model=CHAT_ROUTE,
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers.get("x-switchyard-route") == CHAT_DEPLOYMENT
        assert response.headers.get("content-type", "").startswith("text/event-stream")
        chunks = list(response.parse())

    assert chunks, "no chunks"
    for c in chunks:
        assert c.object == "chat.completion.chunk"
    text = "".join(
        (ch.delta.content or "") for c in chunks for ch in c.choices if ch.index == 0
    )
    assert text.strip(), "deltas concatenate to empty text"
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop"], finishes

    last = chunks[-1]
    assert last.choices == [], last
    assert last.usage is not None, last
    assert last.usage.completion_tokens == ANSWER_TOKENS
    assert last.usage.prompt_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    # Only the final chunk carries usage.
    assert all(c.usage is None for c in chunks[:-1]), [c.usage for c in chunks[:-1]]


def test_stream_without_include_usage_has_no_usage(client: openai.OpenAI, sim):
    stream = client.chat.completions.create(model=CHAT_ROUTE, messages=HELLO, stream=True)
    chunks = list(stream)

    assert chunks
    text = "".join((ch.delta.content or "") for c in chunks for ch in c.choices)
    assert text.strip()
    assert [c.usage for c in chunks if c.usage is not None] == []
    assert all(c.choices for c in chunks), "a usage-only chunk (choices == []) was sent"
    assert chunks[-1].choices[0].finish_reason == "stop"

    # The scenario that makes this test meaningful: the gateway asks the
    # upstream for usage on its own (to account tokens), so it must strip the
    # usage chunk the client did not ask for.
    rec = sim.only_request(CHAT_PATH)
    assert rec["body"].get("stream") is True
    assert (rec["body"].get("stream_options") or {}).get("include_usage") is True, rec["body"]


# --------------------------------------------------------------------------
# Tool calls
# --------------------------------------------------------------------------


def _tool_result_turn(client: openai.OpenAI, call_id: str, name: str, arguments: str):
    """Second turn: the assistant's tool call and its result; the model answers in text."""
    return [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"temp_c": 21, "sky": "clear"})},
    ]


def test_tool_call_non_stream_then_tool_result(client: openai.OpenAI, sim):
    first = client.chat.completions.create(
        model=CHAT_ROUTE,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls, choice.message
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args, dict) and "city" in args, args

    # The tool definition reached the upstream unchanged.
    rec = sim.only_request(CHAT_PATH)
    assert rec["body"]["tools"] == [WEATHER_TOOL]

    second = client.chat.completions.create(
        model=CHAT_ROUTE,
        messages=_tool_result_turn(client, call.id, call.function.name, call.function.arguments),
        tools=[WEATHER_TOOL],
    )
    answer = second.choices[0]
    assert answer.finish_reason == "stop"
    assert not answer.message.tool_calls
    assert isinstance(answer.message.content, str) and answer.message.content.strip()


def test_tool_call_stream_then_tool_result(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model=CHAT_ROUTE,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for ch in chunk.choices:
            if ch.finish_reason:
                finish = ch.finish_reason
            for tc in ch.delta.tool_calls or []:
                acc = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                if tc.id:
                    acc["id"] = tc.id
                if tc.function is not None:
                    if tc.function.name:
                        acc["name"] += tc.function.name
                    if tc.function.arguments:
                        acc["arguments"] += tc.function.arguments

    assert finish == "tool_calls"
    assert sorted(calls) == [0], calls
    call = calls[0]
    assert call["id"], call
    assert call["name"] == "get_weather", call
    args = json.loads(call["arguments"])
    assert isinstance(args, dict) and "city" in args, args

    stream = client.chat.completions.create(
        model=CHAT_ROUTE,
        messages=_tool_result_turn(client, call["id"], call["name"], call["arguments"]),
        tools=[WEATHER_TOOL],
        stream=True,
    )
    text, finish, saw_tool_call = "", None, False
    for chunk in stream:
        for ch in chunk.choices:
            text += ch.delta.content or ""
            saw_tool_call |= bool(ch.delta.tool_calls)
            finish = ch.finish_reason or finish
    assert not saw_tool_call
    assert finish == "stop"
    assert text.strip()


# --------------------------------------------------------------------------
# Pass-through of request fields
# --------------------------------------------------------------------------


def test_request_fields_pass_through(client: openai.OpenAI, gateway, sim):
    params = dict(
        messages=[
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "Give me a JSON object with a greeting."},
        ],
        seed=1234,
        stop=["\n\n", "END"],
        user="conformance-user-7",
        n=2,
        response_format={"type": "json_object"},
        logprobs=True,
        top_logprobs=2,
        temperature=0.25,
        top_p=0.5,
        max_tokens=64,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logit_bias={"50256": -100},
    )
    completion = client.chat.completions.create(model=CHAT_ROUTE, **params)

    assert len(completion.choices) == 2
    assert sorted(ch.index for ch in completion.choices) == [0, 1]
    for ch in completion.choices:
        assert ch.message.content and ch.finish_reason == "stop"

    rec = sim.only_request(CHAT_PATH)
    assert rec["model"] == CHAT_MODEL
    body = rec["body"]
    assert body["model"] == CHAT_MODEL
    for field, value in params.items():
        assert field in body, f"{field} did not reach the upstream: {body!r}"
        assert body[field] == value, f"{field}: sent {value!r}, upstream got {body[field]!r}"
    # Nothing the client did not send was added, except what a gateway may
    # legitimately add for streaming (not the case here).
    assert set(body) == set(params) | {"model"}, sorted(set(body) - set(params) - {"model"})
    # The client's gateway key is not forwarded to the upstream (the sim
    # provider has no api_key, so no Authorization at all).
    assert gateway.key not in (rec.get("authorization") or "")
    assert rec.get("authorization") is None, rec.get("authorization")


def test_vendor_extension_fields_pass_through(client: openai.OpenAI, sim):
    """Fields the SDK does not know (vLLM's ``top_k``, …) reach an openai_compatible upstream."""
    client.chat.completions.create(
        model=CHAT_ROUTE,
        messages=HELLO,
        extra_body={"top_k": 5, "repetition_penalty": 1.1, "chat_template_kwargs": {"x": [1, 2]}},
    )
    body = sim.only_request(CHAT_PATH)["body"]
    assert body.get("top_k") == 5, body
    assert body.get("repetition_penalty") == 1.1, body
    assert body.get("chat_template_kwargs") == {"x": [1, 2]}, body


def test_image_content_part_passes_through(client: openai.OpenAI, sim):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "low"}},
            ],
        }
    ]
    completion = client.chat.completions.create(model=CHAT_ROUTE, messages=messages)
    assert completion.choices[0].message.content

    body = sim.only_request(CHAT_PATH)["body"]
    assert body["messages"] == messages
    assert body["model"] == CHAT_MODEL


def test_upstream_request_carries_the_request_id(client: openai.OpenAI, sim):
    raw = client.chat.completions.with_raw_response.create(model=CHAT_ROUTE, messages=HELLO)
    rec = sim.only_request(CHAT_PATH)
    assert rec["request_id"] == raw.headers.get("x-request-id")


# --------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------


def test_embeddings_float_and_base64_agree(client: openai.OpenAI, sim):
    text = "The quick brown fox jumps over the lazy dog."
    as_float = client.embeddings.create(
        model=EMBED_ROUTE, input=text, dimensions=64, encoding_format="float"
    )
    # The SDK's default asks for base64 and decodes it itself.
    as_default = client.embeddings.create(model=EMBED_ROUTE, input=text, dimensions=64)

    recs = sim.requests(EMBED_PATH)
    assert [r["body"].get("encoding_format") for r in recs] == ["float", "base64"], recs
    assert all(r["model"] == EMBED_MODEL and r["body"]["model"] == EMBED_MODEL for r in recs)
    assert all(r["body"].get("dimensions") == 64 for r in recs)

    for resp in (as_float, as_default):
        assert resp.object == "list"
        assert len(resp.data) == 1
        assert resp.data[0].index == 0
        assert resp.data[0].object == "embedding"
        assert len(resp.data[0].embedding) == 64
        assert all(isinstance(x, float) for x in resp.data[0].embedding)
        assert resp.usage is not None and resp.usage.prompt_tokens > 0

    a, b = as_float.data[0].embedding, as_default.data[0].embedding
    assert any(x != 0 for x in a)
    for x, y in zip(a, b):
        assert math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7), (x, y)


def test_embeddings_list_input(client: openai.OpenAI):
    inputs = ["first", "second", "third"]
    resp = client.embeddings.create(model=EMBED_ROUTE, input=inputs, dimensions=64)
    assert len(resp.data) == len(inputs)
    assert [d.index for d in resp.data] == [0, 1, 2]
    for d in resp.data:
        assert len(d.embedding) == 64
    # Different inputs give different vectors; the same input, the same one.
    assert resp.data[0].embedding != resp.data[1].embedding
    again = client.embeddings.create(model=EMBED_ROUTE, input="second", dimensions=64)
    assert again.data[0].embedding == pytest.approx(resp.data[1].embedding, rel=1e-6, abs=1e-7)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def test_models_list_and_retrieve(client: openai.OpenAI):
    ids = [m.id for m in client.models.list()]
    assert CHAT_ROUTE in ids and EMBED_ROUTE in ids, ids

    model = client.models.retrieve(CHAT_ROUTE)
    assert model.id == CHAT_ROUTE
    assert model.object == "model"

    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_wrong_key_is_authentication_error(gateway):
    bad = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-sy-not-a-real-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as ei:
        bad.chat.completions.create(model=CHAT_ROUTE, messages=HELLO)
    assert ei.value.status_code == 401
    assert_openai_error_shape(sdk_error_body(ei.value))
    # A wrong key also can't list models.
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_missing_key_is_401_with_openai_error(raw: httpx.Client, sim):
    r = raw.post(CHAT_PATH, json={"model": CHAT_ROUTE, "messages": HELLO})
    assert r.status_code == 401, r.text
    assert r.headers.get("content-type", "").startswith("application/json")
    assert_openai_error_shape(r.json())
    assert sim.requests(CHAT_PATH) == [], "an unauthenticated request reached the upstream"


def test_unknown_model_is_not_found(client: openai.OpenAI, sim):
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert ei.value.status_code == 404
    assert ei.value.code == "model_not_found"
    assert_openai_error_shape(sdk_error_body(ei.value))
    assert sim.requests(CHAT_PATH) == []


def test_missing_messages_is_bad_request(client: openai.OpenAI, sim):
    with pytest.raises(openai.BadRequestError) as ei:
        client.post("/chat/completions", body={"model": CHAT_ROUTE}, cast_to=object)
    assert ei.value.status_code == 400
    assert ei.value.param == "messages"
    assert_openai_error_shape(sdk_error_body(ei.value))
    assert sim.requests(CHAT_PATH) == []


def test_malformed_json_is_400_with_openai_error(raw: httpx.Client, gateway, sim):
    r = raw.post(
        CHAT_PATH,
        content=b'{"model": "gpt-4o-mini", "messages": [',
        headers={"Authorization": f"Bearer {gateway.key}", "content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.headers.get("content-type", "").startswith("application/json")
    err = assert_openai_error_shape(r.json())
    assert err["type"] == "invalid_request_error", err
    assert sim.requests(CHAT_PATH) == []


def test_embeddings_route_for_chat_is_bad_request(client: openai.OpenAI, sim):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=EMBED_ROUTE, messages=HELLO)
    assert ei.value.status_code == 400
    assert_openai_error_shape(sdk_error_body(ei.value))
    assert sim.requests() == []


def test_upstream_5xx_is_mapped_to_502(client: openai.OpenAI, sim):
    sim.set_knobs(CHAT_MODEL, fail_next=1, error_status=503, answer_tokens=ANSWER_TOKENS)
    with pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(model=CHAT_ROUTE, messages=HELLO)
    assert ei.value.status_code == 502
    assert isinstance(ei.value, openai.InternalServerError)
    assert_openai_error_shape(sdk_error_body(ei.value))
    recs = sim.requests(CHAT_PATH)
    assert [r["status"] for r in recs] == [503], recs

    # The fault was one-shot: the next request succeeds.
    ok = client.chat.completions.create(model=CHAT_ROUTE, messages=HELLO)
    assert ok.choices[0].message.content


def test_upstream_5xx_on_stream_is_mapped_to_502(client: openai.OpenAI, sim):
    sim.set_knobs(CHAT_MODEL, fail_next=1, error_status=500, answer_tokens=ANSWER_TOKENS)
    with pytest.raises(openai.APIStatusError) as ei:
        stream = client.chat.completions.create(model=CHAT_ROUTE, messages=HELLO, stream=True)
        list(stream)
    assert ei.value.status_code == 502


def test_upstream_429_is_rate_limit_error(client: openai.OpenAI, sim):
    sim.set_knobs(CHAT_MODEL, rate_limit_next=1, retry_after_s=3, answer_tokens=ANSWER_TOKENS)
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model=CHAT_ROUTE, messages=HELLO)
    assert ei.value.status_code == 429
    retry_after = ei.value.response.headers.get("retry-after")
    assert retry_after is not None, dict(ei.value.response.headers)
    assert float(retry_after) > 0
    err = assert_openai_error_shape(sdk_error_body(ei.value))
    assert err["type"] == "rate_limit_error" or err["code"] == "rate_limit_exceeded", err
