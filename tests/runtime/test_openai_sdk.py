"""The official `openai` SDK, unchanged, through the passthrough route (streaming included).

`base_url` is the runtime's `/v/openai/v1` and `api_key` a consumer token;
the TLS upstream speaks the chat completions shape and accepts only the
real key, which it also echoes back: the SDK must never see it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.auth_runtime import running
from support.bundles import BEARER, TOKEN
from support.inprocess import InProcessRuntime
from support.tls_app import TlsApp, tls_app

HOST = "api.openai.com"
REAL_KEY = "sk-proj-canary-real-openai-key-0123456789"
received: list[str] = []


def _completion(text: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def _stream(request: web.Request, words: list[str]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_chunk({"role": "assistant", "content": ""}))
    for word in words:
        await response.write(_chunk({"content": word}))
    await response.write(_chunk({}, "stop"))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def handler(request: web.Request) -> web.StreamResponse:
    """Chat completions for the real key only; the answer quotes the key."""
    received.append(request.headers.get("Authorization", ""))
    if request.headers.get("Authorization") != f"Bearer {REAL_KEY}":
        return web.json_response({"error": {"message": "bad key", "type": "auth"}}, status=401)
    if request.path != "/v1/chat/completions":
        return web.json_response({"error": {"message": "no route"}}, status=404)
    body = await request.json()
    prompt = body["messages"][-1]["content"]
    words = ["echo: ", prompt, " key=", REAL_KEY]
    if body.get("stream"):
        return await _stream(request, words)
    return web.json_response(_completion("".join(words)), headers={"X-Echo-Key": REAL_KEY})


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    with tls_app(tmp_path_factory.mktemp("openai-app"), handler, (HOST,)) as app:
        yield app


@pytest.fixture
def client(tmp_path: Path, app: TlsApp) -> Iterator[openai.OpenAI]:
    received.clear()
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    creds = {"openai": Cred((HOST,), {"header": BEARER}, "OPENAI_API_KEY")}
    bundles.publish(tmp_path / "bundles", 1, creds, {"OPENAI_API_KEY": REAL_KEY})
    with running(tmp_path, bundles.runtime_options((HOST, app)), [REAL_KEY]) as runtime:
        yield _sdk(runtime)


def _sdk(runtime: InProcessRuntime) -> openai.OpenAI:
    return openai.OpenAI(api_key=TOKEN, base_url=f"{runtime.url}/v/openai/v1", max_retries=0)


def test_chat_completion_through_the_runtime(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello key=[REDACTED]"
    assert REAL_KEY not in raw.text
    assert all(REAL_KEY not in f"{k}: {v}" for k, v in raw.headers.items())
    assert received == [f"Bearer {REAL_KEY}"]


def test_streaming_chat_completion_through_the_runtime(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "echo: hi key=[REDACTED]"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(REAL_KEY not in chunk.model_dump_json() for chunk in chunks)
    assert received == [f"Bearer {REAL_KEY}"]


def test_a_wrong_consumer_token_never_reaches_the_upstream(client: openai.OpenAI) -> None:
    wrong = openai.OpenAI(
        api_key="not-a-consumer-token", base_url=str(client.base_url), max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 401
    assert received == []
