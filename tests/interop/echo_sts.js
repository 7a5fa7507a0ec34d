// SPDX-License-Identifier: MPL-2.0
// An independent echo STS on Node's socket.io 4, for interop tests.
// Same contract as echo_sts.py: schema checked, audio echoed, default 1 MB buffer.
const http = require("http");
const crypto = require("crypto");
const { Server } = require("socket.io");

const server = http.createServer();
const io = new Server(server, { transports: ["websocket"] });

const AUDIO = { format: "string", sample_rate_hz: "integer", channels: "integer", duration_ms: "integer", data_base64: "string" };
const FRAGMENT = { fragment_id: "string", stream_id: "string", sequence_number: "integer", timestamp: "integer", audio: AUDIO, metadata: { pts_ns: "integer" } };
const INIT = {
  stream_id: "string", worker_id: "string", max_inflight: "integer", timeout_ms: "integer",
  config: { source_language: "string", target_language: "string", voice_profile: "string", format: "string", sample_rate_hz: "integer", channels: "integer", chunk_duration_ms: "integer" },
};

function problemsOf(data, schema, path = "") {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return [`${path || "payload"} is not an object`];
  const found = [];
  for (const [key, kind] of Object.entries(schema)) {
    const where = path + key;
    if (!(key in data)) found.push(`missing ${where}`);
    else if (typeof kind === "object") found.push(...problemsOf(data[key], kind, where + "."));
    else if (kind === "integer" ? !Number.isInteger(data[key]) : typeof data[key] !== kind) found.push(`${where} is not ${kind}`);
  }
  for (const key of Object.keys(data)) if (!(key in schema)) found.push(`unexpected ${path}${key}`);
  return found;
}

io.use((socket, next) => {
  const h = socket.handshake.headers;
  console.error(`node echo: connect stream=${h["x-stream-id"]} worker=${h["x-worker-id"]}`);
  if (!h["x-stream-id"] || !h["x-worker-id"]) return next(new Error("X-Stream-ID and X-Worker-ID headers are required"));
  next();
});

io.on("connection", (socket) => {
  let expected = 0;
  socket.on("stream:init", (data) => {
    const problems = problemsOf(data, INIT);
    if (problems.length) return console.error(`node echo: SCHEMA stream:init ${problems}`);
    socket.emit("stream:ready", { session_id: crypto.randomUUID(), max_inflight: data.max_inflight, capabilities: { formats: ["m4a"] } });
  });
  socket.on("fragment:data", (data) => {
    const problems = problemsOf(data, FRAGMENT);
    if (!problems.length) {
      if (data.sequence_number !== expected) problems.push(`sequence_number ${data.sequence_number}, expected ${expected}`);
      if (data.audio.format !== "m4a") problems.push("audio.format is not m4a");
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(data.fragment_id)) problems.push("fragment_id is not a UUID");
    }
    const id = data && data.fragment_id;
    socket.emit("fragment:ack", { fragment_id: id, status: "queued" });
    const reply = { fragment_id: id, stream_id: data && data.stream_id, sequence_number: data && data.sequence_number, processing_time_ms: 1, stage_timings: {} };
    if (problems.length) {
      console.error(`node echo: SCHEMA fragment:data ${problems}`);
      Object.assign(reply, { status: "failed", error: { code: "INVALID_CONFIG", message: problems.join("; "), retryable: false } });
    } else {
      expected += 1;
      Object.assign(reply, { status: "success", dubbed_audio: data.audio, transcript: "", translated_text: "" });
    }
    socket.emit("fragment:processed", reply);
  });
  socket.on("fragment:ack", () => {});
  socket.on("stream:end", () => socket.emit("stream:complete", { total_fragments: expected, statistics: {} }));
});

server.listen(0, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
