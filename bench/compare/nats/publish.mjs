// NATS JetStream load of bench/compare/run: C clients, each publishing one
// 100-byte message at a time to a subject no other message uses
// (compare.<client>.<n>) and awaiting the stream's ack before the next
// (closed loop, like coworker-bench --window 1). The clients share N
// connections (default 1: a NATS connection multiplexes requests, and on this
// machine 64 connections made the same load 2-3x slower than one). The stream
// (COMPARE: compare.>, file storage, 3 replicas) is made first if missing.
// This nats-server acks once a quorum holds the message, before any fsync
// (JetStream syncs on an interval): its figures are an upper bound.
//
//   node publish.mjs --servers 127.0.0.1:4222,... [--clients 64] [--connections 1]
//                    [--duration 10]
//
// Prints one JSON object: acked, errors, duration_s, messages_per_s, p50_ms,
// p99_ms (over every acked publish).
import { connect, StorageType } from "nats";

const options = { servers: "", clients: 64, connections: 1, duration: 10 };
for (let i = 2; i < process.argv.length; i += 2) {
  const name = process.argv[i].replace(/^--/, "");
  if (!(name in options) || i + 1 >= process.argv.length) {
    console.error(`publish.mjs: unknown or incomplete ${process.argv[i]}`);
    process.exit(2);
  }
  options[name] = name === "servers" ? process.argv[i + 1] : Number(process.argv[i + 1]);
}
const servers = options.servers.split(",");
const body = new TextEncoder().encode("x".repeat(100));
const setupDeadline = Date.now() + 30000;

// The meta leader may still be in election when the servers answer: retry,
// bounded, until the stream exists with its three replicas.
async function ensureStream(nc) {
  const jsm = await nc.jetstreamManager();
  for (;;) {
    try {
      await jsm.streams.info("COMPARE");
      return;
    } catch {
      try {
        await jsm.streams.add({
          name: "COMPARE", subjects: ["compare.>"], storage: StorageType.File, num_replicas: 3,
        });
        return;
      } catch (error) {
        if (Date.now() > setupDeadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

async function client(index, js, stopAt, latencies, tally) {
  let n = 0;
  while (performance.now() < stopAt) {
    const start = performance.now();
    try {
      await js.publish(`compare.${index}.${n++}`, body);
      latencies.push(performance.now() - start);
      tally.acked++;
    } catch {
      tally.errors++;
    }
  }
}

function quantile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const admin = await connect({ servers });
await ensureStream(admin);
const connections = [];
for (let i = 0; i < Math.min(options.connections, options.clients); i++) {
  connections.push(await connect({ servers }));
}
const contexts = connections.map((nc) => nc.jetstream());
const latencies = [];
const tally = { acked: 0, errors: 0 };
const started = performance.now();
const stopAt = started + options.duration * 1000;
await Promise.all(Array.from({ length: options.clients }, (_, i) =>
  client(i, contexts[i % contexts.length], stopAt, latencies, tally)));
const elapsed = (performance.now() - started) / 1000;
for (const nc of [admin, ...connections]) await nc.close();
latencies.sort((a, b) => a - b);
console.log(JSON.stringify({
  clients: options.clients, connections: connections.length, acked: tally.acked,
  errors: tally.errors, duration_s: elapsed, messages_per_s: tally.acked / elapsed,
  p50_ms: quantile(latencies, 0.5), p99_ms: quantile(latencies, 0.99),
}));
