# SPDX-License-Identifier: MPL-2.0
"""An independent echo STS on python-socketio 5 (aiohttp), for interop tests.

It checks the schema of everything the worker sends, answers each fragment
with the audio it received (status success), and fails a fragment with
INVALID_CONFIG, listing the problems, when the schema is wrong. The Engine.IO
buffer stays at python-socketio's default (1 MB). First stdout line:
"listening on http://127.0.0.1:PORT". On stderr it logs each connection,
each `applied` acknowledgement, each `stream:end` and each disconnect, with
the connection's sid, so a test can check every session's lifecycle.
"""
import asyncio
import base64
import sys
import uuid

import socketio
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
app = web.Application()
sio.attach(app)


def problems_of(data, schema, path=""):
    """Every key of `schema` present with the right type, and no other key."""
    if not isinstance(data, dict):
        return [f"{path or 'payload'} is not an object"]
    found = []
    for key, kind in schema.items():
        where = f"{path}{key}"
        if key not in data:
            found.append(f"missing {where}")
        elif isinstance(kind, dict):
            found += problems_of(data[key], kind, where + ".")
        elif not isinstance(data[key], kind) or (kind is int and isinstance(data[key], bool)):
            found.append(f"{where} is {type(data[key]).__name__}, not {kind.__name__}")
    found += [f"unexpected {path}{key}" for key in data if key not in schema]
    return found


AUDIO = {"format": str, "sample_rate_hz": int, "channels": int, "duration_ms": int, "data_base64": str}
FRAGMENT = {
    "fragment_id": str, "stream_id": str, "sequence_number": int, "timestamp": int,
    "audio": AUDIO, "metadata": {"pts_ns": int},
}
INIT = {
    "stream_id": str, "worker_id": str, "max_inflight": int, "timeout_ms": int,
    "config": {"source_language": str, "target_language": str, "voice_profile": str, "format": str,
               "sample_rate_hz": int, "channels": int, "chunk_duration_ms": int},
}
expected_sequence = {}


@sio.event
async def connect(sid, environ, auth=None):
    stream, worker = environ.get("HTTP_X_STREAM_ID"), environ.get("HTTP_X_WORKER_ID")
    print(f"python echo: connect stream={stream} worker={worker}", file=sys.stderr, flush=True)
    if not stream or not worker:
        raise socketio.exceptions.ConnectionRefusedError("X-Stream-ID and X-Worker-ID headers are required")
    expected_sequence[sid] = 0


@sio.on("stream:init")
async def stream_init(sid, data):
    problems = problems_of(data, INIT)
    if problems:
        print(f"python echo: SCHEMA stream:init {problems}", file=sys.stderr, flush=True)
        return
    await sio.emit("stream:ready", {"session_id": str(uuid.uuid4()), "max_inflight": data["max_inflight"],
                                    "capabilities": {"formats": ["m4a"]}}, to=sid)


@sio.on("fragment:data")
async def fragment_data(sid, data):
    problems = problems_of(data, FRAGMENT)
    if not problems:
        if data["sequence_number"] != expected_sequence.get(sid):
            problems.append(f"sequence_number {data['sequence_number']}, expected {expected_sequence.get(sid)}")
        if data["audio"]["format"] != "m4a":
            problems.append("audio.format is not m4a")
        try:
            uuid.UUID(data["fragment_id"])
            base64.b64decode(data["audio"]["data_base64"], validate=True)
        except ValueError as e:
            problems.append(str(e))
    fragment_id = data.get("fragment_id") if isinstance(data, dict) else None
    await sio.emit("fragment:ack", {"fragment_id": fragment_id, "status": "queued"}, to=sid)
    reply = {"fragment_id": fragment_id, "stream_id": data.get("stream_id"),
             "sequence_number": data.get("sequence_number"), "processing_time_ms": 1, "stage_timings": {}}
    if problems:
        print(f"python echo: SCHEMA fragment:data {problems}", file=sys.stderr, flush=True)
        reply.update(status="failed", error={"code": "INVALID_CONFIG", "message": "; ".join(problems), "retryable": False})
    else:
        expected_sequence[sid] += 1
        reply.update(status="success", dubbed_audio=data["audio"], transcript="", translated_text="")
    await sio.emit("fragment:processed", reply, to=sid)


@sio.on("fragment:ack")
async def fragment_ack(sid, data):
    if isinstance(data, dict) and data.get("status") == "applied":
        print(f"python echo: applied sid={sid} fragment={data.get('fragment_id')}", file=sys.stderr, flush=True)


@sio.event
async def disconnect(sid, *reason):
    print(f"python echo: disconnect sid={sid} sent={expected_sequence.get(sid, 0)}", file=sys.stderr, flush=True)


@sio.on("stream:end")
async def stream_end(sid, data=None):
    print(f"python echo: stream end sid={sid}", file=sys.stderr, flush=True)
    await sio.emit("stream:complete", {"total_fragments": expected_sequence.get(sid, 0), "statistics": {}}, to=sid)


async def main():
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
