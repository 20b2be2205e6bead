"""The LLM-assisted rubric builder over real HTTP: a canned OpenAI-compatible server of our own on loopback.

The server is real (stdlib http.server in a thread) and the client is the project's real judge
transport; only the model is replaced by scripted replies, so validation and fallback are tested.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli

from grader.config import JudgeSettings
from grader.models import Question
from grader.rubric.build import build_for
from grader.rubric.llm import LLMRubricError, criteria_from_reply
from grader.rubric.store import load_rubric

GOOD_REPLY = {
    "criteria": [
        {"text": "Pruning removes the least important weights.", "weight": 3, "keywords": ["weights", "remove"],
         "full": "Says which weights are removed.", "partial": "Says weights are removed.", "none": "No removal."},
        {"text": "Pruning makes the model smaller and faster.", "weight": 1, "keywords": ["smaller", "faster"],
         "synonyms": ["The pruned net takes less memory and answers sooner.", "  ",
                      "Pruning makes the model smaller and faster.", "Pruning cuts model size and latency."]},
        {"text": "Accuracy is mostly preserved.", "weight": 1, "keywords": []},
    ]
}


class CannedChat:
    """Answers /v1/chat/completions with scripted message contents, then the last one forever."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = deque(replies)
        self.last = replies[-1]
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                content = outer.replies.popleft() if outer.replies else outer.last
                payload = json.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "canned",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> CannedChat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def question() -> Question:
    return Question(
        id="easy-2", bank="t", question="What is pruning in model compression?",
        reference_answer="Pruning removes less important weights. This makes the model smaller and faster.",
    )


@pytest.fixture
def good_server() -> Iterator[CannedChat]:
    with CannedChat([json.dumps(GOOD_REPLY)]) as srv:
        yield srv


def _judge(url: str) -> JudgeSettings:
    return JudgeSettings(backend="openai", base_url=url, model="canned", api_key="x", max_retries=1, timeout=10,
                         cache=False)


def test_llm_builder_over_http(good_server: CannedChat, question: Question) -> None:
    outcome = build_for(question, "llm", _judge(good_server.base_url))
    assert outcome.notes == []
    assert outcome.builder == "llm/rubric/v2@2.0.0 (canned)"
    assert [c.text for c in outcome.criteria] == [
        "Pruning removes the least important weights.", "Pruning makes the model smaller and faster.",
        "Accuracy is mostly preserved."]
    assert [c.weight for c in outcome.criteria] == [0.6, 0.2, 0.2]
    assert all(c.origin == "llm" and c.fingerprint == c.content_hash() for c in outcome.criteria)
    assert outcome.criteria[0].levels is not None and outcome.criteria[0].levels.full == "Says which weights are removed."
    # Without levels in the reply, the same auto-written levels as the deterministic builder's.
    assert outcome.criteria[1].levels is not None and "smaller" in (outcome.criteria[1].levels.partial or "")
    # Accepted phrasings are kept, without blanks or a copy of the point; a point without them has none.
    assert outcome.criteria[1].synonyms == [
        "The pruned net takes less memory and answers sooner.", "Pruning cuts model size and latency."]
    assert outcome.criteria[0].synonyms == []
    sent = json.dumps(good_server.requests[0]["messages"])
    assert "synonyms" in sent
    assert "What is pruning in model compression?" in sent and "This makes the model smaller and faster." in sent


def test_invalid_reply_falls_back_to_deterministic(question: Question) -> None:
    bad = json.dumps({"criteria": [{"text": "", "weight": -1, "keywords": []}]})
    with CannedChat([bad]) as srv:
        outcome = build_for(question, "llm", _judge(srv.base_url))
        # The bad reply was rejected and asked for again (1 + max_retries tries), then given up on.
        assert len(srv.requests) == 2
    assert outcome.builder == "deterministic/v1"
    assert all(c.origin == "auto" for c in outcome.criteria)
    assert len(outcome.notes) == 1
    assert outcome.notes[0].startswith("easy-2: LLM rubric builder failed (")
    assert "criteria[0].text: missing or empty" in outcome.notes[0]
    assert outcome.notes[0].endswith("used the deterministic builder instead")


def test_a_second_try_can_succeed(question: Question) -> None:
    with CannedChat(["not json at all", json.dumps(GOOD_REPLY)]) as srv:
        outcome = build_for(question, "llm", _judge(srv.base_url))
    assert outcome.builder.startswith("llm/") and outcome.notes == []


def test_unreachable_endpoint_falls_back(question: Question) -> None:
    with CannedChat(["{}"]) as srv:
        url = srv.base_url  # the port is closed once the server is shut down
    judge = _judge(url).model_copy(update={"max_retries": 0, "timeout": 2})
    outcome = build_for(question, "auto", judge)
    assert outcome.builder == "deterministic/v1"
    assert "LLM rubric builder failed" in outcome.notes[0]


def test_import_with_llm_builder_via_cli(good_server: CannedChat, tmp_path: Path) -> None:
    bank = tmp_path / "b.json"
    bank.write_text(json.dumps([{"id": "q1", "question": "What is pruning?",
                                 "reference_answer": "Pruning removes weights. It shrinks models."}]))
    r = run_cli("bank", "import", bank, "--out", tmp_path / "r", "--builder", "llm",
                "--base-url", good_server.base_url, "--model", "canned")
    assert r.code == 0, r.err
    rubric = load_rubric(tmp_path / "r" / "b" / "q1.yaml")
    assert rubric.builder == "llm/rubric/v2@2.0.0 (canned)"
    assert [c.origin for c in rubric.criteria] == ["llm", "llm", "llm"]


def test_llm_builder_needs_an_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GRADER_JUDGE__BASE_URL", "GRADER_JUDGE__API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no grader.toml here
    bank = tmp_path / "b.json"
    bank.write_text(json.dumps([{"id": "q1", "question": "What?", "reference_answer": "An answer here."}]))
    r = run_cli("bank", "import", bank, "--out", tmp_path / "r", "--builder", "llm")
    assert r.code == 2
    assert r.err.startswith("error: --builder: --builder llm needs a judge endpoint")
    r = run_cli("bank", "import", bank, "--out", tmp_path / "r")  # auto without endpoint: deterministic
    assert r.code == 0 and "(builder: deterministic/v1)" in r.out


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({}, "reply has no 'criteria' list"),
        ({"criteria": []}, "empty 'criteria' list"),
        ({"criteria": ["x"]}, "criteria[0]: expected an object"),
        ({"criteria": [{"text": "A point.", "weight": "1", "keywords": []}]}, "criteria[0].weight"),
        ({"criteria": [{"text": "A point.", "weight": True, "keywords": []}]}, "criteria[0].weight"),
        ({"criteria": [{"text": "A point.", "weight": 1, "keywords": [1]}]}, "criteria[0].keywords"),
        ({"criteria": [{"text": "A point.", "weight": 1, "keywords": [], "full": 3}]}, "criteria[0].full"),
        ({"criteria": [{"text": "A point.", "weight": 1, "keywords": [], "synonyms": "A way."}]},
         "criteria[0].synonyms"),
    ],
)
def test_reply_validation(reply: dict, message: str) -> None:
    with pytest.raises(LLMRubricError, match=message.replace("[", r"\[").replace("]", r"\]")):
        criteria_from_reply(reply)


@pytest.mark.llm
@pytest.mark.slow
def test_llm_builder_against_local_llama_cpp(local_llm, question: Question) -> None:  # type: ignore[no-untyped-def]
    """The real llama.cpp server (SmolLM2-135M): the grammar-constrained reply validates into criteria.

    A 135M model writes poor key points; this proves the plumbing (prompt, schema as grammar, validation).
    """
    before = local_llm.completions_served()
    judge = JudgeSettings(backend="openai", base_url=local_llm.base_url, max_tokens=1500, timeout=240,
                          max_retries=1, cache=False)
    outcome = build_for(question, "llm", judge)
    assert outcome.notes == [], outcome.notes
    assert outcome.builder.startswith("llm/rubric/v2@2.0.0")
    assert 1 <= len(outcome.criteria) <= 12
    assert all(c.origin == "llm" and c.text.strip() and c.weight > 0 for c in outcome.criteria)
    assert round(sum(c.weight for c in outcome.criteria), 6) == 1.0
    assert local_llm.completions_served() > before
