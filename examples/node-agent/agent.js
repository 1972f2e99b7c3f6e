#!/usr/bin/env node
// An AgentMesh agent in plain Node.js (CommonJS, no build step).
//
// It loads the protos from ../../protos at run time with @grpc/proto-loader (keepCase:
// every field name below is the proto's snake_case name), opens the one bidirectional
// stream AgentService.Connect, and speaks the agent protocol by hand:
//
//   Hello -> Welcome; then Heartbeat every heartbeat_interval_ms (answered by HeartbeatAck);
//   TaskBatch down -> TaskUpdates{ack} up at once, TaskUpdates{result} when done; CancelTask
//   and Drain down; Goodbye up on SIGTERM, then half-close and exit 0.
//
// When the stream ends it reconnects with jittered exponential backoff and resumes its
// identity (agent_id + the session_secret of the last Welcome). A replica that is not the
// leader answers UNAVAILABLE with trailing metadata `agentmesh-leader: host:port`: the agent
// goes there at once (at most 3 times in a row, then it backs off as usual).
//
// Environment: AGENTMESH_COORDINATOR (host:port or a comma-separated seed list, default
// localhost:50051), AGENT_NAME (default node-echo), AGENT_MAX_CONCURRENCY (default 4),
// AGENT_DRAIN_TIMEOUT_MS (default 10000), AGENTMESH_PROTOS (default ../../protos).
//
// Logs one line per event on stdout ("connected as <agent_id> to <target> ...",
// "task <id> done", "reconnecting in <ms> ms ...", "goodbye sent ...", "exit 0").

'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const pkg = require('./package.json');

// ------------------------------------------------------------------ configuration

const PROTOCOL_VERSION = 1;
const SDK_VERSION = `node-example/${pkg.version}`;
const LEADER_METADATA = 'agentmesh-leader'; // agentmesh/protocol.py
const ELECTION_METADATA = 'agentmesh-election';
const MAX_QUICK_REDIRECTS = 3;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2000;
const ELECTION_RETRY_MS = 250;
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024; // the coordinator's default; Welcome says its own
const MAX_TEXT = 16384; // error messages and stacks beyond this are cut (as the Python SDK does)

// Errors that reconnecting cannot fix (as in agent_sdk/_agent.py). PERMISSION_DENIED with
// an agent_id is handled first: the identity is forgotten and the agent joins afresh.
const FATAL = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.UNIMPLEMENTED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
]);

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const config = {
  seeds: (process.env.AGENTMESH_COORDINATOR || 'localhost:50051')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  name: process.env.AGENT_NAME || 'node-echo',
  maxConcurrency: intFromEnv('AGENT_MAX_CONCURRENCY', 4),
  drainTimeoutMs: intFromEnv('AGENT_DRAIN_TIMEOUT_MS', 10000),
  protos: path.resolve(process.env.AGENTMESH_PROTOS || path.join(__dirname, '..', '..', 'protos')),
};
if (config.seeds.length === 0 || config.seeds.some((s) => s.includes('://'))) {
  console.error(
    `AGENTMESH_COORDINATOR must be host:port or a comma-separated list of them ` +
      `(etcd:// discovery is not implemented in this example), got ` +
      JSON.stringify(process.env.AGENTMESH_COORDINATOR),
  );
  process.exit(2);
}

function log(line) {
  process.stdout.write(`${line}\n`);
}

// ------------------------------------------------------------------ the protos

// keepCase: field names stay snake_case as in the .proto files. longs: String (uint64 and
// Timestamp.seconds arrive as strings), enums: String, oneofs: true (a virtual property such
// as `body` or `outcome` names the member that is set). The agentmesh imports resolve under
// includeDirs. google/protobuf/{struct,timestamp}.proto never come from includeDirs:
// protobufjs always substitutes the copies it bundles, and those keep their camelCase JSON
// names whatever keepCase says (Value.stringValue, not string_value). So our messages are
// snake_case and google.protobuf.Value is camelCase (see VALUE_FIELDS below).
const packageDefinition = protoLoader.loadSync(['agentmesh/v1/agent.proto'], {
  includeDirs: [config.protos],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(packageDefinition).agentmesh.v1;

// google.protobuf.Struct/Value have no JSON mapping in proto-loader: convert by hand. The
// member names are read from the loaded descriptor, so this works with either spelling.
const VALUE_FIELDS = new Set(
  packageDefinition['google.protobuf.Value'].type.field.map((f) => f.name),
);
const V = VALUE_FIELDS.has('stringValue')
  ? {
      null: 'nullValue',
      number: 'numberValue',
      string: 'stringValue',
      bool: 'boolValue',
      struct: 'structValue',
      list: 'listValue',
    }
  : {
      null: 'null_value',
      number: 'number_value',
      string: 'string_value',
      bool: 'bool_value',
      struct: 'struct_value',
      list: 'list_value',
    };

function toValue(v) {
  if (v === null || v === undefined) return { [V.null]: 'NULL_VALUE' };
  if (Array.isArray(v)) return { [V.list]: { values: v.map(toValue) } };
  switch (typeof v) {
    case 'number':
      return { [V.number]: v };
    case 'string':
      return { [V.string]: v };
    case 'boolean':
      return { [V.bool]: v };
    case 'object':
      return { [V.struct]: toStruct(v) };
    default:
      throw new TaskError('OutputNotSerializable', `cannot send a ${typeof v} as a JSON value`);
  }
}

function toStruct(obj) {
  const fields = {};
  for (const [k, x] of Object.entries(obj)) fields[k] = toValue(x);
  return { fields };
}

function fromValue(v) {
  if (!v) return null;
  switch (v.kind) {
    case V.number:
      return v[V.number];
    case V.string:
      return v[V.string];
    case V.bool:
      return v[V.bool];
    case V.struct:
      return fromStruct(v[V.struct]);
    case V.list:
      return (v[V.list].values || []).map(fromValue);
    default:
      return null; // null_value, or nothing set
  }
}

function fromStruct(s) {
  const out = {};
  for (const [k, x] of Object.entries((s && s.fields) || {})) out[k] = fromValue(x);
  return out;
}

function clip(text) {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT)} ... (cut)`;
}

// ------------------------------------------------------------------ capabilities

// A failure with a machine-readable type: it travels as TaskError{type, message, retryable}.
class TaskError extends Error {
  constructor(type, message, { retryable = false, details } = {}) {
    super(message);
    this.name = 'TaskError';
    this.type = type;
    this.retryable = retryable;
    this.details = details;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new TaskError('CANCELLED', 'cancelled on the agent', { retryable: true }));
      },
      { once: true },
    );
  });
}

// capability name -> { description, handler(input, task) -> JSON value (or a Promise) }
const CAPABILITIES = {
  echo: {
    description: 'returns its input; an optional number delay_ms waits that long first',
    async handler(input, task) {
      if (input.delay_ms !== undefined) {
        if (typeof input.delay_ms !== 'number' || input.delay_ms < 0) {
          throw new TaskError('InvalidInput', 'echo: delay_ms must be a non-negative number');
        }
        await sleep(Math.min(input.delay_ms, 600000), task.signal);
      }
      return input;
    },
  },
  uppercase: {
    description: 'returns {text: TEXT} for input {text: "text"}',
    handler(input) {
      if (typeof input.text !== 'string') {
        throw new TaskError(
          'InvalidInput',
          `uppercase: input needs a string field "text", got ${
            input.text === undefined ? 'none' : typeof input.text
          }`,
          { details: { field: 'text' } },
        );
      }
      return { text: input.text.toUpperCase() };
    },
  },
};

// ------------------------------------------------------------------ the agent

class NodeAgent {
  constructor(cfg) {
    this.cfg = cfg;
    this.agentId = '';
    this.secret = ''; // the session_secret of the last Welcome: proves agentId is ours
    this.seed = 0;
    this.redirect = null; // a leader some replica named: tried before the seeds
    this.failures = 0;
    this.redirects = 0;
    this.running = new Map(); // "task_id#attempt" -> { controller, reported }
    this.unsent = []; // results that finished while no session was open
    this.session = null; // { call, write(msg), welcomed }
    this.payloadLimit = Math.floor(MAX_MESSAGE_BYTES / 4);
    this.stopping = false;
    this.wakeUp = null; // ends a backoff wait early (shutdown)
    this.onIdle = null; // called when the last running task reported (shutdown)
    this.goodbyeSent = false;
  }

  hello() {
    return {
      hello: {
        name: this.cfg.name,
        type: this.cfg.name,
        capabilities: Object.entries(CAPABILITIES).map(([name, c]) => ({
          name,
          description: c.description,
        })),
        max_concurrency: this.cfg.maxConcurrency,
        labels: { language: 'javascript', runtime: `node-${process.versions.node}` },
        sdk_version: SDK_VERSION,
        agent_id: this.agentId,
        protocol_version: PROTOCOL_VERSION,
        session_secret: this.secret,
      },
    };
  }

  nextTarget() {
    return this.redirect || this.cfg.seeds[this.seed % this.cfg.seeds.length];
  }

  async run() {
    while (!this.stopping) {
      const target = this.nextTarget();
      const outcome = await this.connect(target);
      if (this.stopping) break;
      if (outcome.fatal) {
        log(`refused by ${target}: ${outcome.reason}; giving up`);
        return 1;
      }
      if (outcome.rejoin) continue; // our old identity is gone: join afresh at once
      const delay = this.delayAfter(target, outcome);
      log(`reconnecting in ${delay} ms to ${this.nextTarget()} (${outcome.reason})`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
    return 0;
  }

  // How long to wait before the next attempt, and where it goes (see agent_sdk/_reconnect.py).
  delayAfter(target, outcome) {
    if (outcome.welcomed) this.failures = this.redirects = 0;
    if (outcome.leader) {
      this.redirects += 1;
      this.redirect = outcome.leader;
      log(`redirected by ${target} to leader ${outcome.leader}`);
      if (this.redirects <= MAX_QUICK_REDIRECTS) return 0;
    } else if (outcome.electionPending) {
      // A live replica knows no leader yet: ask it again shortly, without growing the backoff.
      return Math.round(ELECTION_RETRY_MS * (0.5 + Math.random() / 2));
    } else {
      // No leader named: drop a redirect that failed, move on to the next seed.
      this.redirect = null;
      this.seed = (this.seed + 1) % this.cfg.seeds.length;
    }
    this.failures += 1;
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** (this.failures - 1));
    return Math.round(ceiling * (0.5 + Math.random() / 2));
  }

  // One stream's life. Resolves with how it ended; never rejects.
  connect(target) {
    return new Promise((resolve) => {
      const client = new proto.AgentService(target, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
        'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
        // Keepalive like the Python SDK (agentmesh/protocol.py): a vanished host is noticed;
        // the coordinator accepts pings this frequent.
        'grpc.keepalive_time_ms': 20000,
        'grpc.keepalive_timeout_ms': 10000,
        'grpc.keepalive_permit_without_calls': 1,
        // We drive reconnects ourselves; grpc's own backoff could reach minutes.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2000,
      });
      const call = client.Connect();
      const timers = [];
      let welcomed = false;
      let settled = false;
      let lastReceived = Date.now();

      const finish = (outcome) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearInterval(t);
        if (this.session && this.session.call === call) this.session = null;
        call.cancel(); // no-op when the call is already over
        client.close();
        resolve({ welcomed, ...outcome });
      };
      const write = (msg) => {
        if (!settled) call.write(msg);
      };

      call.on('error', () => {}); // the 'status' event below carries the same status
      call.on('status', (status) => {
        if (status.code === grpc.status.OK) {
          const how = this.stopping ? 'stream closed' : 'the coordinator closed the stream';
          log(`disconnected from ${target}: ${how}`);
          finish({ reason: 'stream closed by the coordinator' });
          return;
        }
        const reason = `${grpc.status[status.code]}: ${status.details}`;
        if (welcomed) log(`disconnected from ${target}: ${reason}`);
        const meta = status.metadata;
        const leader = meta ? String(meta.get(LEADER_METADATA)[0] || '').trim() : '';
        if (status.code === grpc.status.UNAVAILABLE) {
          finish({
            reason,
            leader: leader || null,
            electionPending: !leader && !!meta && meta.get(ELECTION_METADATA).length > 0,
          });
        } else if (status.code === grpc.status.PERMISSION_DENIED && this.agentId) {
          // Another session holds our old id (we were away long enough to be replaced).
          log(`cannot resume ${this.agentId} (${reason}); joining with a new id`);
          this.agentId = this.secret = '';
          finish({ reason, rejoin: true });
        } else {
          finish({ reason, fatal: FATAL.has(status.code) });
        }
      });

      call.on('data', (msg) => {
        lastReceived = Date.now();
        if (!welcomed) {
          if (msg.body !== 'welcome') {
            finish({ reason: `first message was ${msg.body}, not welcome` });
            return;
          }
          welcomed = true;
          this.onWelcome(target, msg.welcome, call, write, timers, () => lastReceived, finish);
          return;
        }
        this.onMessage(msg, write);
      });

      call.write(this.hello());
    });
  }

  onWelcome(target, welcome, call, write, timers, lastReceived, finish) {
    const resumed = welcome.agent_id === this.agentId;
    this.agentId = welcome.agent_id;
    this.secret = welcome.session_secret;
    this.payloadLimit = Math.floor((welcome.max_message_bytes || MAX_MESSAGE_BYTES) / 4);
    this.session = { call, write };
    const interval = Math.max(50, welcome.heartbeat_interval_ms || 1000);
    // More tolerant of the coordinator than it is of us; it answers every heartbeat.
    const silence = Math.max(3 * interval, 1.5 * (welcome.heartbeat_timeout_ms || 3 * interval));
    log(
      `connected as ${this.agentId} to ${target} (session ${welcome.session_id}, ` +
        `${resumed ? 'resumed' : 'new'} identity, heartbeat every ${interval} ms)`,
    );
    const beat = () => {
      const quiet = Date.now() - lastReceived();
      if (quiet > silence) {
        log(`no message from ${target} for ${quiet} ms: dropping the stream`);
        finish({ reason: `coordinator silent for ${quiet} ms` });
        return;
      }
      write({ heartbeat: { in_flight: this.running.size, healthy: true, status_message: '' } });
    };
    beat(); // at once: the registry's last_seen_time moves only on heartbeats
    timers.push(setInterval(beat, interval));
    if (this.unsent.length > 0) {
      // Results of tasks that finished between sessions: the coordinator records a result
      // once, whichever attempt or session it comes from.
      const updates = this.unsent.splice(0);
      write({ updates: { updates } });
      log(`sent ${updates.length} result(s) held since the last session`);
    }
    if (this.stopping) this.sayGoodbye();
  }

  onMessage(msg, write) {
    switch (msg.body) {
      case 'tasks': {
        const dispatches = msg.tasks.tasks || [];
        const acks = [];
        for (const d of dispatches) {
          const key = `${d.task_id}#${d.attempt}`;
          if (this.running.has(key)) continue; // a duplicate delivery of a running attempt
          acks.push({ task_id: d.task_id, attempt: d.attempt, ack: {} });
        }
        // One message acknowledges the whole batch; results follow one by one.
        if (acks.length > 0) write({ updates: { updates: acks } });
        for (const d of dispatches) {
          if (!this.running.has(`${d.task_id}#${d.attempt}`)) this.start(d);
        }
        break;
      }
      case 'cancel': {
        const { task_id, attempt, reason } = msg.cancel;
        const entry = this.running.get(`${task_id}#${attempt}`);
        if (entry) {
          log(`task ${task_id} cancelled: ${reason}`);
          entry.controller.abort();
          // The attempt keeps its credit until we report on it: report at once.
          this.report(task_id, attempt, entry, {
            error: {
              type: 'CANCELLED',
              message: `cancelled on the agent: ${reason}`,
              retryable: true,
            },
          });
        }
        break;
      }
      case 'drain':
        log(`the coordinator asks to drain: ${msg.drain.reason}`);
        break;
      case 'heartbeat_ack':
        break;
      default:
        log(`ignoring an unknown coordinator message (${msg.body})`);
    }
  }

  start(d) {
    const key = `${d.task_id}#${d.attempt}`;
    const entry = { controller: new AbortController(), reported: false, started: Date.now() };
    this.running.set(key, entry);
    log(
      `task ${d.task_id} attempt ${d.attempt} received ` +
        `(${d.capability}, ${this.running.size} in flight)`,
    );
    const task = {
      id: d.task_id,
      attempt: d.attempt,
      capability: d.capability,
      idempotencyKey: d.idempotency_key,
      deadline: d.deadline ? new Date(Number(d.deadline.seconds) * 1000) : null,
      signal: entry.controller.signal,
    };
    Promise.resolve()
      .then(() => {
        const cap = CAPABILITIES[d.capability];
        if (!cap) {
          throw new TaskError(
            'UnknownCapability',
            `agent '${this.cfg.name}' has no handler for capability '${d.capability}'`,
          );
        }
        return cap.handler(fromStruct(d.input), task);
      })
      .then(
        (out) => this.report(d.task_id, d.attempt, entry, this.outputResult(out)),
        (err) => this.report(d.task_id, d.attempt, entry, { error: errorOf(err) }),
      );
  }

  outputResult(out) {
    let json;
    try {
      json = JSON.stringify(out === undefined ? null : out);
    } catch (e) {
      const message = clip(`handler output: ${e.message}`);
      return { error: { type: 'OutputNotSerializable', message } };
    }
    const size = Buffer.byteLength(json);
    if (size > this.payloadLimit) {
      const limit = this.payloadLimit;
      const message = `the handler's output is ${size} bytes as JSON; the limit is ${limit}`;
      return { error: { type: 'PAYLOAD_TOO_LARGE', message } };
    }
    return { output: toValue(JSON.parse(json)) };
  }

  report(taskId, attempt, entry, result) {
    if (entry.reported) return; // cancelled first: the handler's late outcome changes nothing
    entry.reported = true;
    this.running.delete(`${taskId}#${attempt}`);
    const update = {
      task_id: taskId,
      attempt,
      result: { ...result, duration_ms: Date.now() - entry.started },
    };
    if (result.error) log(`task ${taskId} failed: ${result.error.type}: ${result.error.message}`);
    else log(`task ${taskId} done`);
    // The result frees the task's credit on the coordinator: no FlowControl is needed.
    if (this.session) this.session.write({ updates: { updates: [update] } });
    else this.unsent.push(update);
    if (this.running.size === 0 && this.onIdle) this.onIdle();
  }

  sayGoodbye() {
    if (!this.session || this.goodbyeSent) return;
    this.goodbyeSent = true;
    this.session.write({ goodbye: { reason: 'SIGTERM' } });
    log(`goodbye sent (${this.running.size} task(s) in flight)`);
  }

  // SIGTERM: say goodbye (no new tasks), finish what runs (up to drainTimeoutMs), report,
  // half-close, wait for the coordinator to end the stream, exit 0.
  async shutdown(signal) {
    if (this.stopping) return;
    this.stopping = true;
    log(`${signal} received: draining`);
    if (this.wakeUp) this.wakeUp();
    this.sayGoodbye();
    if (this.running.size > 0) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, this.cfg.drainTimeoutMs);
        this.onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      for (const [key, entry] of this.running) {
        const [taskId, attempt] = key.split('#');
        entry.controller.abort();
        this.report(taskId, Number(attempt), entry, {
          error: {
            type: 'CANCELLED',
            message: 'the agent stopped before the task finished',
            retryable: true,
          },
        });
      }
    }
    const session = this.session;
    if (session) {
      const ended = new Promise((resolve) => session.call.on('status', resolve));
      session.call.end(); // half-close: the coordinator reads everything, then ends the stream
      await Promise.race([ended, new Promise((r) => setTimeout(r, 5000))]);
    }
  }
}

function errorOf(err) {
  if (err instanceof TaskError) {
    const error = { type: err.type, message: clip(err.message), retryable: err.retryable };
    if (err.details) error.details = toStruct(err.details);
    return error;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    type: e.name || 'Error',
    message: clip(e.message || e.name || 'Error'),
    retryable: false,
    stack: clip(e.stack || ''),
  };
}

// ------------------------------------------------------------------ main

const agent = new NodeAgent(config);
log(
  `node agent ${config.name} (${SDK_VERSION}) starting: coordinator ${config.seeds.join(',')}, ` +
    `capabilities ${Object.keys(CAPABILITIES).join(',')}, max_concurrency ${config.maxConcurrency}`,
);
let exiting = false;
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (exiting) {
      log(`${sig} again: exit 1`);
      process.exit(1);
    }
    exiting = true;
    agent.shutdown(sig).then(
      () => {
        log('exit 0');
        process.exit(0);
      },
      (e) => {
        log(`shutdown failed: ${e && e.stack}`);
        process.exit(1);
      },
    );
  });
}
agent.run().then(
  (code) => {
    if (!exiting) {
      log(`exit ${code}`);
      process.exit(code);
    }
  },
  (e) => {
    log(`agent crashed: ${e && e.stack}`);
    process.exit(1);
  },
);
