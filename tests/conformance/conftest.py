"""Fixtures for the conformance suite: one live gateway per session.

The gateway runs from ``$SWITCHYARD_BIN`` (default: ``target/debug/switchyard``
of this checkout) with its embedded simulator as the only upstream, on
loopback and ephemeral ports. Tests talk to it with the official ``openai``
SDK and look at what reached the upstream through the simulator's control
API (``/_sim/*``).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "conformance-admin"
CHAT_ROUTE = "gpt-4o-mini"
EMBED_ROUTE = "text-embedding-3-small"
CHAT_DEPLOYMENT = "chat-sim"
CHAT_MODEL = "sim-chat"  # the model name the chat deployment sends upstream
EMBED_MODEL = "sim-embed"
ANSWER_TOKENS = 12
STARTUP_DEADLINE_S = 30.0
SHUTDOWN_DEADLINE_S = 15.0

# `capabilities` on chat-sim: docs/config.md says requests offering tools,
# images or JSON mode only go to deployments that declare them, and the
# suite sends all three to this route.
CONFIG_TEMPLATE = """\
server: {{ listen: "127.0.0.1:0" }}
storage: {{ url: "sqlite://{db}" }}
admin: {{ bootstrap_token: "{admin}" }}
timeouts: {{ first_token: 2s, total: 5s }}
# One upstream error is one client error here: the suite checks how each
# SDK sees the gateway's error mapping, so no retries, breakers or
# cool-downs stand between the simulator's answer and the client
# (docs/resilience.md; the Rust game-day tests cover those).
resilience: {{ retries: {{ max: 0, max_cooldown: 0s }}, breaker: {{ enabled: false }}, health: {{ enabled: false }} }}
simulator:
  listen: "127.0.0.1:0"
  default: {{ answer_tokens: {answer_tokens} }}
providers:
  - {{ name: sim, kind: openai_compatible, base_url: "sim://" }}
  - {{ name: sim-anthropic, kind: anthropic, base_url: "sim://", api_key: "sk-ant-sim" }}
  - {{ name: sim-gemini, kind: gemini, base_url: "sim://", api_key: "AIza-sim" }}
  - {{ name: sim-azure, kind: azure_openai, base_url: "sim://", api_key: "azure-sim" }}
deployments:
  - {{ name: {chat_dep}, provider: sim, model: {chat_model}, capabilities: [chat, tools, vision, json] }}
  - {{ name: embed-sim, provider: sim, model: {embed_model}, capabilities: [embeddings] }}
  - {{ name: claude-sim, provider: sim-anthropic, model: claude-sim, capabilities: [chat, tools, vision, json] }}
  - {{ name: gemini-sim, provider: sim-gemini, model: gemini-sim, capabilities: [chat, tools, vision, json] }}
  - {{ name: azure-sim, provider: sim-azure, model: azure-sim, capabilities: [chat, tools, vision, json] }}
  - {{ name: gemini-embed-sim, provider: sim-gemini, model: gemini-embed, capabilities: [embeddings] }}
routes:
  - {{ name: {chat_route}, targets: [{chat_dep}] }}
  - {{ name: {embed_route}, targets: [embed-sim] }}
  - {{ name: claude-route, targets: [claude-sim] }}
  - {{ name: gemini-route, targets: [gemini-sim] }}
  - {{ name: azure-route, targets: [azure-sim] }}
  - {{ name: gemini-embed-route, targets: [gemini-embed-sim] }}
"""

# Routes backed by the simulator speaking each provider's own wire format,
# and the model name each sends upstream (the simulator's knob key).
TRANSLATED_ROUTES = {
    "claude-route": "claude-sim",
    "gemini-route": "gemini-sim",
    "azure-route": "azure-sim",
}

READY_RE = re.compile(r"^switchyard: listening on (http://\S+)\s*$")
SIM_RE = re.compile(r"^switchyard: simulator on (http://\S+)\s*$")


@dataclass
class Gateway:
    url: str  # e.g. http://127.0.0.1:PORT (no /v1)
    sim_url: str
    key: str
    proc: subprocess.Popen
    workdir: Path


def _binary() -> Path:
    env = os.environ.get("SWITCHYARD_BIN")
    path = Path(env) if env else REPO / "target" / "debug" / "switchyard"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"switchyard binary not found at {path}: build it with "
            "`cargo build -p switchyard` or set SWITCHYARD_BIN",
            pytrace=False,
        )
    return path


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=SHUTDOWN_DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=SHUTDOWN_DEADLINE_S)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory) -> Gateway:
    binary = _binary()
    workdir = tmp_path_factory.mktemp("switchyard")
    config = workdir / "switchyard.yaml"
    config.write_text(
        CONFIG_TEMPLATE.format(
            db=workdir / "sy.db",
            admin=ADMIN_TOKEN,
            answer_tokens=ANSWER_TOKENS,
            chat_dep=CHAT_DEPLOYMENT,
            chat_model=CHAT_MODEL,
            embed_model=EMBED_MODEL,
            chat_route=CHAT_ROUTE,
            embed_route=EMBED_ROUTE,
        )
    )
    stderr_path = workdir / "stderr.log"
    stderr_file = open(stderr_path, "wb")
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    proc = subprocess.Popen(
        [str(binary), "serve", "--config", str(config)],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        env=env,
    )

    # Read stdout on a thread so the deadline holds even if nothing is printed,
    # and keep draining it afterwards so the pipe never fills up.
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace"))
        lines.put(None)

    threading.Thread(target=pump, name="switchyard-stdout", daemon=True).start()

    def die(why: str) -> None:
        _stop(proc)
        stderr_file.flush()
        err = stderr_path.read_text(errors="replace")
        pytest.fail(
            f"{why}\nexit code: {proc.returncode}\n--- stdout so far:\n"
            + "".join(seen)
            + f"\n--- stderr:\n{err}",
            pytrace=False,
        )

    seen: list[str] = []
    gw_url = sim_url = None
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while gw_url is None:
        left = deadline - time.monotonic()
        if left <= 0:
            die(f"switchyard did not report ready within {STARTUP_DEADLINE_S:.0f}s")
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            proc.wait(timeout=SHUTDOWN_DEADLINE_S)
            die("switchyard exited before it was ready")
        seen.append(line)
        if m := SIM_RE.match(line):
            sim_url = m.group(1)
        elif m := READY_RE.match(line):
            gw_url = m.group(1)
    if sim_url is None:
        die("switchyard did not print its simulator address")

    try:
        r = httpx.post(
            f"{gw_url}/api/v1/keys",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"name": "conformance"},
            timeout=10,
        )
        if r.status_code != 201:
            die(f"POST /api/v1/keys answered {r.status_code}: {r.text}")
        key = r.json()["key"]
    except Exception as e:  # noqa: BLE001 - report with the server's stderr
        if isinstance(e, pytest.fail.Exception):
            raise
        die(f"creating a key failed: {e!r}")

    gw = Gateway(url=gw_url, sim_url=sim_url, key=key, proc=proc, workdir=workdir)
    try:
        yield gw
    finally:
        _stop(proc)
        stderr_file.close()


class Sim:
    """The simulator's control API."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def set_knobs(self, model: str, **knobs) -> None:
        r = self.http.put(f"/_sim/knobs/{model}", json=knobs)
        assert r.status_code < 300, f"PUT /_sim/knobs/{model}: {r.status_code} {r.text}"

    def reset_knobs(self, model: str) -> None:
        r = self.http.delete(f"/_sim/knobs/{model}")
        assert r.status_code < 300 or r.status_code == 404, (
            f"DELETE /_sim/knobs/{model}: {r.status_code} {r.text}"
        )

    def clear_requests(self) -> None:
        r = self.http.delete("/_sim/requests")
        assert r.status_code < 300, f"DELETE /_sim/requests: {r.status_code} {r.text}"

    def requests(self, path: str | None = None) -> list[dict]:
        r = self.http.get("/_sim/requests")
        assert r.status_code == 200, f"GET /_sim/requests: {r.status_code} {r.text}"
        recs = r.json()
        return [x for x in recs if path is None or x["path"] == path]

    def only_request(self, path: str) -> dict:
        recs = self.requests(path)
        assert len(recs) == 1, f"expected exactly one upstream {path} request, got {recs!r}"
        return recs[0]


@pytest.fixture(scope="session")
def sim_api(gateway: Gateway) -> Sim:
    s = Sim(gateway.sim_url)
    yield s
    s.http.close()


@pytest.fixture
def sim(sim_api: Sim) -> Sim:
    """The simulator with default knobs and an empty request log, restored after the test."""
    models = (CHAT_MODEL, EMBED_MODEL, *TRANSLATED_ROUTES.values())
    for model in models:
        sim_api.reset_knobs(model)
    sim_api.clear_requests()
    yield sim_api
    for model in models:
        sim_api.reset_knobs(model)


@pytest.fixture
def client(gateway: Gateway, sim: Sim) -> openai.OpenAI:
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.key, max_retries=0, timeout=20)
    yield c
    c.close()


@pytest.fixture
def raw(gateway: Gateway, sim: Sim) -> httpx.Client:
    """Plain HTTP to the gateway, no credentials attached."""
    c = httpx.Client(base_url=gateway.url, timeout=20)
    yield c
    c.close()


@pytest.fixture
def claude(gateway: Gateway, sim: Sim):
    """The official Anthropic SDK pointed at the gateway's /v1/messages."""
    import anthropic

    c = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0, timeout=20)
    yield c
    c.close()
