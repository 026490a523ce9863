#include "tests/sim/workload.h"

#include <fmt/core.h>

#include <algorithm>

#include "bucket/hash.h"
#include "consensus/dedup.h"
#include "consensus/assert.h"
#include "tests/sim/phaser_checker.h"

namespace coworker::sim {

using consensus::Outcome;

void draw_expiry(consensus::Prng& prng, consensus::Phaser::Config& phaser,
                 WorkloadOptions& workload) {
  if (prng.chance(1, 4)) return;  // the default: a day, never reached
  phaser.connection_expiry_ms = prng.between(20, 300);
  workload.idle_per_mille = static_cast<uint32_t>(prng.between(20, 150));
  workload.idle_ticks_max = 2 * phaser.connection_expiry_ms;
}

Workload::Workload(consensus::Prng& prng, WorkloadOptions options, PhaserChecker& checker)
    : _prng(prng), _options(options), _checker(checker) {
  COWORKER_ASSERT(options.window_max >= 1);
  const uint32_t total = options.clients + options.untracked_clients;
  for (uint32_t i = 0; i < total; i++) {
    Client client;
    client.tracked = i < options.clients;
    if (client.tracked) {
      client.connection = consensus::ConnectionId{99, ++_next_counter};
      if (_prng.chance(options.wrap_start_per_mille, 1000)) {
        // Series start just below the wrap; every other such client asked
        // for a small wrap at connect (DESIGN §3 series_wrap), not a power
        // of two. No draw more: the seeds' other draws stay as they were.
        if (i % 2 == 1) client.connection.wrap = consensus::series_wrap_min + 1000 + i;
        client.next_series = client.connection.wrap - 1 - _prng.below(4);
      } else {
        client.next_series = _prng.below(1000);
      }
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
      client.next_series = (client.next_series + 1) % client.connection.wrap;
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
    if (client.tracked) {
      Attempts& tracked = _tracked[entry.body];
      tracked.bucket = bucket;
      tracked.sent++;
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
      if (!_stop_new && now >= client.idle_until &&
          _prng.chance(_options.window_per_mille, 1000)) {
        if (_options.idle_per_mille > 0 && _prng.chance(_options.idle_per_mille, 1000)) {
          client.idle_until = now + 1 + _prng.below(_options.idle_ticks_max);
        } else {
          start_window(now, index);
        }
      }
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
  size_t handed_back = 0;
  for (size_t k = 0; k < reply.results.size(); k++) {
    const consensus::MessageResult& result = reply.results[k];
    if (result.outcome == Outcome::appended || result.outcome == Outcome::duplicate) {
      _checker.acked(attempt.bucket, attempt.entries[k], result.position);
    }
    if (result.outcome == Outcome::handed_back) handed_back++;
  }
  // A hand-back (phaser.h step 6) returns each such message exactly as it
  // was sent: the server resubmits those bytes to the next leader.
  std::vector<bool> returned(reply.results.size());
  for (const consensus::HandedBack& back : reply.handed_back) {
    if (back.index >= reply.results.size() ||
        reply.results[back.index].outcome != Outcome::handed_back || returned[back.index] ||
        !(back.entry == attempt.entries[back.index])) {
      _checker.fail(fmt::format("bucket {}: a hand-back returned message {} wrong", attempt.bucket,
                                back.index));
      return;
    }
    returned[back.index] = true;
  }
  if (reply.handed_back.size() != handed_back) {
    _checker.fail(fmt::format("bucket {}: {} messages answered handed_back, {} returned",
                              attempt.bucket, handed_back, reply.handed_back.size()));
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
  bool expired = false;
  for (size_t k = 0; k < reply.results.size(); k++) {
    const consensus::MessageResult& result = reply.results[k];
    Message* m = current ? &client.window[attempt.indices[k]] : nullptr;
    if (client.tracked) count_answer(attempt.entries[k], result.outcome);
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
      case Outcome::expired:
        if (!client.tracked) {
          _checker.fail(fmt::format("an untracked message was answered 409 connection_expired "
                                    "(client {})", attempt.client));
        }
        _expired++;
        if (m != nullptr && m->state == State::waiting) expired = true;
        break;
      case Outcome::handed_back:  // the client resubmits, as the server would at once
        _handed_back++;
        failed = true;
        break;
      case Outcome::unavailable:
      case Outcome::overloaded:
        failed = true;
        break;
    }
  }
  if (current && expired) {
    // DESIGN §3: not logged by this attempt, but an earlier one may have
    // been; the client cannot tell, so it gives up the window and connects
    // again (a new connection starts its own series).
    for (Message& m : client.window) {
      if (m.state == State::waiting) m.state = State::abandoned;
    }
    _abandoned++;
    _reconnects++;
    // A new connection, with the same series wrap asked for.
    client.connection = consensus::ConnectionId{99, ++_next_counter, client.connection.wrap};
    maybe_finish(attempt.client);
    return;
  }
  if (current && failed) {
    auto open = client.open.find(attempt.bucket);
    if (open != client.open.end() && open->second == reply.token) {
      fail_attempt(now, attempt.client, attempt.bucket);
    }
  }
  if (current) maybe_finish(attempt.client);
}

void Workload::count_answer(const consensus::BucketEntry& entry, Outcome outcome) {
  auto it = _tracked.find(entry.body);
  if (it == _tracked.end()) return;  // logged: another attempt was answered 2xx
  Attempts& a = it->second;
  a.answered++;
  if (outcome == Outcome::appended || outcome == Outcome::duplicate) {
    _tracked.erase(it);  // logged
    return;
  }
  if (outcome == Outcome::expired) a.expired++;
  if (a.answered == a.sent && a.expired == a.sent) {
    // Every attempt was refused as expired (none is in flight), and the
    // client gave the window up at the first refusal (or had finished it):
    // nothing can log this message any more.
    _checker.refused(a.bucket, entry);
    _tracked.erase(it);
  }
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
