#include "tests/sim/workload.h"

#include <fmt/core.h>

#include <algorithm>

#include "bucket/hash.h"
#include "consensus/dedup.h"
#include "consensus/assert.h"
#include "tests/sim/phaser_checker.h"

namespace coworker::sim {

using consensus::Outcome;

Workload::Workload(consensus::Prng& prng, WorkloadOptions options, PhaserChecker& checker)
    : _prng(prng), _options(options), _checker(checker) {
  COWORKER_ASSERT(options.window_max >= 1);
  const uint32_t total = options.clients + options.untracked_clients;
  for (uint32_t i = 0; i < total; i++) {
    Client client;
    client.tracked = i < options.clients;
    if (client.tracked) {
      client.connection = consensus::ConnectionId{99, i + 1};
      const uint64_t wrap = consensus::series_wrap_default;
      client.next_series = _prng.chance(options.wrap_start_per_mille, 1000)
                               ? wrap - 1 - _prng.below(4)
                               : _prng.below(1000);
    }
    _clients.push_back(std::move(client));
  }
}

void Workload::start_window(Tick now, uint32_t index) {
  Client& client = _clients[index];
  COWORKER_ASSERT(client.window.empty());
  const uint32_t count = 1 + static_cast<uint32_t>(_prng.below(_options.window_max));
  const uint64_t window_id = client.next_series;
  for (uint32_t k = 0; k < count; k++) {
    Message m;
    m.entry.identifier = fmt::format("id-{}", _prng.below(_options.identifiers));
    m.bucket = bucket::bucket_of(m.entry.identifier, _options.buckets);
    if (client.tracked) {
      m.entry.connection = client.connection;
      m.entry.series = client.next_series;
      m.entry.window = window_id;
      m.entry.body = fmt::format("c{}s{}", index, client.next_series);
      client.next_series = (client.next_series + 1) % consensus::series_wrap_default;
      _checker.submitted(m.bucket, m.entry);
    }
    client.window.push_back(std::move(m));
  }
  client.window_number++;
  client.open.clear();
  client.retry_at.clear();
  for (const Message& m : client.window) client.retry_at[m.bucket] = now;
  _windows++;
}

void Workload::send_bucket(Tick now, uint32_t index, uint32_t bucket, bool other,
                           const Target& target, std::vector<AppendAttempt>& out) {
  Client& client = _clients[index];
  Attempt attempt;
  attempt.client = index;
  attempt.bucket = bucket;
  attempt.window = client.window_number;
  attempt.sent = now;
  AppendAttempt send;
  send.token = _next_token++;
  send.bucket = bucket;
  for (size_t i = 0; i < client.window.size(); i++) {
    const Message& m = client.window[i];
    if (m.bucket != bucket || m.state != State::waiting) continue;
    consensus::BucketEntry entry = m.entry;
    if (!client.tracked) {
      // At-least-once: every copy is a new message with its own body.
      entry.body = fmt::format("u{}n{}", index, client.copies++);
      _checker.submitted(bucket, entry);
    }
    attempt.entries.push_back(entry);
    send.messages.push_back(std::move(entry));
    attempt.indices.push_back(i);
  }
  COWORKER_ASSERT(!send.messages.empty());
  send.target = target(bucket, other);
  client.open[bucket] = send.token;
  client.retry_at.erase(bucket);
  _attempts.emplace(send.token, std::move(attempt));
  out.push_back(std::move(send));
}

std::vector<AppendAttempt> Workload::tick(Tick now, const Target& target) {
  std::vector<AppendAttempt> out;
  for (uint32_t index = 0; index < _clients.size(); index++) {
    Client& client = _clients[index];
    if (client.window.empty()) {
      if (!_stop_new && _prng.chance(_options.window_per_mille, 1000)) start_window(now, index);
      if (client.window.empty()) continue;
    }
    std::vector<uint32_t> buckets;
    for (const Message& m : client.window) {
      if (m.state == State::waiting &&
          (buckets.empty() || std::find(buckets.begin(), buckets.end(), m.bucket) == buckets.end())) {
        buckets.push_back(m.bucket);
      }
    }
    for (uint32_t bucket : buckets) {
      auto open = client.open.find(bucket);
      const Attempt* attempt = nullptr;
      if (open != client.open.end()) {
        auto it = _attempts.find(open->second);
        if (it != _attempts.end()) attempt = &it->second;
      }
      auto due = client.retry_at.find(bucket);
      if (attempt == nullptr) {
        if (due != client.retry_at.end() && due->second <= now) {
          send_bucket(now, index, bucket, _prng.chance(_options.other_target_per_mille, 1000),
                      target, out);
        }
        continue;
      }
      if (now - attempt->sent >= _options.attempt_timeout) {
        // No answer: a failure like any other (the first attempt may still
        // be in flight and be answered later).
        fail_attempt(now, index, bucket);
        if (client.window.empty()) break;  // abandoned
        continue;
      }
      if (_prng.chance(_options.early_resubmit_per_mille, 1000)) {
        send_bucket(now, index, bucket, _prng.chance(_options.other_target_per_mille, 1000),
                    target, out);
      }
    }
  }
  return out;
}

void Workload::fail_attempt(Tick now, uint32_t index, uint32_t bucket) {
  Client& client = _clients[index];
  client.open.erase(bucket);
  if (_prng.chance(_options.abandon_per_mille, 1000)) {
    // Abandon the window: whatever was not answered may or may not be logged,
    // and is never resubmitted; the next window takes higher series.
    for (Message& m : client.window) {
      if (m.state == State::waiting) m.state = State::abandoned;
    }
    _abandoned++;
    maybe_finish(index);
    return;
  }
  client.retry_at[bucket] = now + _prng.below(_options.retry_delay_max + 1);
}

void Workload::on_emitted(const consensus::Reply& reply) {
  auto it = _attempts.find(reply.token);
  COWORKER_ASSERT(it != _attempts.end());  // an attempt is kept until its answer arrives
  const Attempt& attempt = it->second;
  COWORKER_ASSERT(reply.results.size() == attempt.indices.size());
  for (size_t k = 0; k < reply.results.size(); k++) {
    const consensus::MessageResult& result = reply.results[k];
    if (result.outcome == Outcome::appended || result.outcome == Outcome::duplicate) {
      _checker.acked(attempt.bucket, attempt.entries[k], result.position);
    }
  }
}

void Workload::on_reply(Tick now, const consensus::Reply& reply) {
  auto it = _attempts.find(reply.token);
  COWORKER_ASSERT(it != _attempts.end());
  Attempt attempt = std::move(it->second);
  _attempts.erase(it);
  Client& client = _clients[attempt.client];
  const bool current = attempt.window == client.window_number && !client.window.empty();
  COWORKER_ASSERT(reply.results.size() == attempt.indices.size());
  bool failed = false;
  for (size_t k = 0; k < reply.results.size(); k++) {
    const consensus::MessageResult& result = reply.results[k];
    Message* m = current ? &client.window[attempt.indices[k]] : nullptr;
    switch (result.outcome) {
      case Outcome::appended:
      case Outcome::duplicate:
        // The checker knew it when it was emitted (on_emitted).
        if (m != nullptr && m->state == State::waiting) {
          m->state = State::acked;
          m->position = result.position;
          _acked++;
        }
        break;
      case Outcome::superseded:
        if (!client.tracked) {
          _checker.fail(fmt::format("an untracked message was answered 409 superseded (client {})",
                                    attempt.client));
        } else if (m != nullptr && m->state != State::abandoned) {
          _checker.fail(fmt::format(
              "client {} series {}: 409 superseded for the window in flight", attempt.client,
              m->entry.series));
        }
        break;
      case Outcome::unavailable:
      case Outcome::overloaded:
        failed = true;
        break;
    }
  }
  if (current && failed) {
    auto open = client.open.find(attempt.bucket);
    if (open != client.open.end() && open->second == reply.token) {
      fail_attempt(now, attempt.client, attempt.bucket);
    }
  }
  if (current) maybe_finish(attempt.client);
}

void Workload::maybe_finish(uint32_t index) {
  Client& client = _clients[index];
  for (const Message& m : client.window) {
    if (m.state == State::waiting) return;
  }
  client.window.clear();
  client.open.clear();
  client.retry_at.clear();
}

bool Workload::quiet(const std::set<uint32_t>& dead) const {
  for (const Client& client : _clients) {
    for (const Message& m : client.window) {
      if (m.state == State::waiting && dead.count(m.bucket) == 0) return false;
    }
  }
  return true;
}

std::string Workload::describe_open() const {
  std::string out;
  for (uint32_t i = 0; i < _clients.size(); i++) {
    const Client& client = _clients[i];
    for (const Message& m : client.window) {
      if (m.state != State::waiting) continue;
      out += fmt::format(" client {} bucket {} '{}';", i, m.bucket, m.entry.body);
    }
  }
  return out;
}

}  // namespace coworker::sim
