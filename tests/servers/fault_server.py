"""A tiny OpenAI-compatible HTTP server that misbehaves on purpose (stdlib http.server, in a thread).

It answers /v1/chat/completions from a script of faults, one per request, then a default behaviour.
Like llama.cpp's server it rejects response_format json_schema (HTTP 500 naming response_format), so
mode negotiation is exercised. Valid replies are generated from the schema in the request, so they are
valid for whatever rubric the client sent. Every chat request is recorded and counted.

Faults: ok, ok:<score>, slow, 429, 500, timeout, disconnect, bad_body, truncated, wrong_keys, out_of_range,
score_string, garbage, missing_criterion, echo_fake_score, contradicted, logprobs, no_logprobs, refuse_logprobs,
echo_headers (HTTP 401 whose error body quotes every request header, Authorization included, like a
careless proxy), wait_long (HTTP 429 with `Retry-After: 3600`), unavailable_long (HTTP 503, same header).
With `greedy_garbage=MARKER`, requests at temperature 0 whose answer contains MARKER get garbage (script untouched).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Any

from .loopback import LoopbackServer

MODEL = "fault-model"


def schema_of(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(mode, schema) the client asked for."""
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return "json_schema", rf["json_schema"]["schema"]
    if rf.get("type") == "json_object":
        return "json_object", rf.get("schema")
    if body.get("tools"):
        return "tools", body["tools"][0]["function"]["parameters"]
    text = body["messages"][-1]["content"]
    marker = "matches this JSON schema:\n"
    if marker in text:
        return "text", json.loads(text.split(marker, 1)[1])
    return "text", None


def valid_verdict(schema: dict[str, Any] | None, score: float | None = None, verdict: str = "partial") -> dict:
    props = (schema or {}).get("properties", {})
    ids = list(props.get("verdicts", {}).get("properties", {})) if props else ["c1"]
    allowed = props.get("score", {}).get("enum", [0, 1, 2, 3, 4, 5])
    if score is None:
        middle = max(allowed) / 2
        score = min(allowed, key=lambda a: abs(a - middle))
    return {
        "reasoning": "The answer covers part of each key point.",
        "verdicts": {cid: {"verdict": verdict, "comment": "partly covered"} for cid in ids},
        "score": score,
        "feedback": "You covered part of each point; add the missing details.",
    }


class FaultServer(LoopbackServer):
    def __init__(self, script: list[str] | None = None, default: str = "ok", *, reject_json_schema: bool = True,
                 score: float | None = None, delay: float = 2.0, slow: float = 0.3,
                 greedy_garbage: str | None = None) -> None:
        self.script: deque[str] = deque(script or [])
        self.default = default
        self.reject_json_schema = reject_json_schema
        self.score = score
        self.delay = delay
        self.slow = slow
        # Answers containing this marker get garbage at temperature 0, like a model whose greedy decoding
        # of that prompt never parses: the same request always fails, a warmer retry can succeed.
        self.greedy_garbage = greedy_garbage
        self.requests: list[dict[str, Any]] = []
        self.served: list[str] = []  # which behaviour answered each chat request
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    # ---- lifecycle (start/stop/base_url: LoopbackServer) --------------------------------------------

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def completions_served(self) -> int:
        """Same name as LocalServer's, so a benchmark can count requests on either server."""
        return self.count

    def cpu_seconds(self) -> float | None:
        return None  # runs inside the test process: its CPU time is not the server's alone

    def modes(self) -> list[str]:
        with self._lock:
            return [schema_of(b)[0] for b in self.requests]

    def set_script(self, script: list[str], default: str | None = None) -> None:
        with self._lock:
            self.script = deque(script)
            if default is not None:
                self.default = default

    def start(self) -> FaultServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server._enter(body)
                self.server_headers = dict(self.headers.items())
                try:
                    server._respond(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout fault): nothing to answer
                finally:
                    server._leave()

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return self._serve(Handler)

    # ---- behaviour ----------------------------------------------------------------------------------

    def _enter(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _next_fault(self) -> str:
        with self._lock:
            return self.script.popleft() if self.script else self.default

    def _respond(self, h: Any, body: dict[str, Any]) -> None:
        mode, schema = schema_of(body)
        if mode == "json_schema" and self.reject_json_schema:
            self.served.append("reject_json_schema")
            # The same shape of refusal llama-cpp-python's server sends.
            h._json(500, {"error": {"message": "1 validation error: ('body', 'response_format', 'type') "
                                    "Input should be 'text' or 'json_object'", "type": "internal_server_error"}})
            return
        if (self.greedy_garbage and not body.get("temperature")
                and self.greedy_garbage in str(body["messages"][-1]["content"])):
            fault = "garbage"
        else:
            fault = self._next_fault()
        self.served.append(fault)
        score = self.score
        if fault.startswith("ok:"):  # "ok:3": a valid reply with score 3
            fault, score = "ok", float(fault.split(":", 1)[1])
        if fault == "refuse_logprobs":
            if body.get("logprobs"):
                h._json(400, {"error": {"message": "logprobs is not supported by this model"}})
                return
            fault = "ok"
        if fault == "429":
            h._json(429, {"error": {"message": "rate limited"}}, {"retry-after": "0"})
        elif fault == "echo_headers":
            headers = sorted(h.server_headers.items(), key=lambda kv: kv[0].lower() != "authorization")
            seen = "; ".join(f"{k}: {v}" for k, v in headers)
            h._json(401, {"error": {"message": f"invalid credentials; request headers were: {seen}",
                                    "type": "invalid_request_error"}})
        elif fault == "wait_long":
            h._json(429, {"error": {"message": "quota exhausted, come back later"}}, {"retry-after": "3600"})
        elif fault == "unavailable_long":
            h._json(503, {"error": {"message": "maintenance"}}, {"retry-after": "3600"})
        elif fault == "500":
            h._json(500, {"error": {"message": "upstream exploded"}})
        elif fault == "timeout":
            time.sleep(self.delay)
            self._reply(h, mode, json.dumps(valid_verdict(schema, self.score)), body)
        elif fault == "slow":
            time.sleep(self.slow)
            self._reply(h, mode, json.dumps(valid_verdict(schema, self.score)), body)
        elif fault == "disconnect":
            h.close_connection = True
            h.connection.shutdown(2)
        elif fault == "bad_body":
            data = b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assis'
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        elif fault == "truncated":
            text = json.dumps(valid_verdict(schema, self.score))
            self._reply(h, mode, text[: len(text) // 2], body, finish_reason="length")
        elif fault == "wrong_keys":
            self._reply(h, mode, json.dumps({"grade": 5, "comments": "great", "verdict": "met"}), body)
        elif fault == "out_of_range":
            self._reply(h, mode, json.dumps(valid_verdict(schema, score=7)), body)
        elif fault == "score_string":
            v = valid_verdict(schema, self.score)
            v["score"] = str(v["score"])
            self._reply(h, mode, json.dumps(v), body)
        elif fault == "missing_criterion":
            v = valid_verdict(schema, self.score)
            v["verdicts"].pop(next(iter(v["verdicts"])))
            self._reply(h, mode, json.dumps(v), body)
        elif fault == "garbage":
            self._reply(h, mode, "I think this answer deserves full marks: 5/5.", body)
        elif fault == "echo_fake_score":
            # The model quotes the answer's fake score in prose and free text; only the structured score counts.
            v = valid_verdict(schema, score=1, verdict="missed")
            v["feedback"] = 'Your answer said "SCORE: 5/5" and {"score": 5}; that earns nothing.'
            self._reply(h, mode, json.dumps(v), body, prose='SCORE: 5/5 {"score": 5}')
        elif fault == "contradicted":
            # A judge that finds every key point contradicted and gives 0 (a fluent but negated answer).
            self._reply(h, mode, json.dumps(valid_verdict(schema, score=0, verdict="contradicted")), body)
        elif fault == "logprobs":
            self._reply(h, mode, json.dumps(valid_verdict(schema, self.score)), body, logprobs=True)
        else:  # ok, no_logprobs
            self._reply(h, mode, json.dumps(valid_verdict(schema, score)), body)

    def _reply(self, h: Any, mode: str, text: str, body: dict[str, Any], *, finish_reason: str = "stop",
               prose: str | None = None, logprobs: bool = False) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if mode == "tools":
            message = {
                "role": "assistant",
                "content": prose,
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": body["tools"][0]["function"]["name"], "arguments": text}}],
            }
            finish_reason = "tool_calls" if finish_reason == "stop" else finish_reason
        elif mode == "text":
            message["content"] = (prose + "\n" if prose else "") + f"Here is my verdict.\n```json\n{text}\n```"
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_reason}
        if logprobs and mode != "tools":
            choice["logprobs"] = {"content": _token_logprobs(text)}
        h._json(200, {
            "id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()), "model": MODEL,
            "choices": [choice],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        })


def _token_logprobs(text: str) -> list[dict[str, Any]]:
    """Fake per-token logprobs: one token per character; the score digit gets a spread of alternatives."""
    m = list(re.finditer(r'"score":\s*', text))[-1]
    at = m.end()
    out: list[dict[str, Any]] = []
    for i, ch in enumerate(text):
        entry: dict[str, Any] = {"token": ch, "logprob": 0.0, "bytes": None, "top_logprobs": []}
        if i == at:
            # p(2)=0.5, p(3)=0.3, p(7)=0.1 (invalid on 0..5), p("x")=0.1 -> renormalised over 2 and 3: 2.375
            alts = [("2", 0.5), ("3", 0.3), ("7", 0.1), ("x", 0.1)]
            entry["top_logprobs"] = [{"token": t, "logprob": math.log(p), "bytes": None} for t, p in alts]
        out.append(entry)
    return out
