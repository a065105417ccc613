#include "conversation/ticker_group.hpp"

#include <algorithm>

namespace callgate::conversation {

TickerGroup::TickerGroup(unsigned slot, unsigned slots)
    : slot_(slots == 0 ? 0 : slot % slots), slots_(std::max(1u, slots)) {}

TickerGroup::TimePoint TickerGroup::FirstInstantAfter(const Entry& entry, TimePoint now) const {
  // Instants are offset + k * period since the clock's epoch: the first one strictly after now.
  const Duration::rep since = (now.time_since_epoch() - entry.offset).count();
  const Duration::rep period = entry.period.count();
  Duration::rep k = since / period;  // floor division (the clock may be near its epoch)
  if (since % period != 0 && since < 0) --k;
  return TimePoint(entry.offset + entry.period * (k + 1));
}

TickerGroup::Id TickerGroup::Add(Duration period, std::function<void()> tick, TimePoint now,
                                 Warmer warmer) {
  Entry entry;
  entry.id = next_id_++;
  entry.period = std::max<Duration>(period, std::chrono::milliseconds(1));
  entry.offset = entry.period * slot_ / slots_;
  entry.due = FirstInstantAfter(entry, now);
  entry.tick = std::move(tick);
  entry.warmer = std::move(warmer);
  const Id id = entry.id;
  ++live_;
  if (running_) {
    added_.push_back(std::move(entry));
  } else {
    entries_.push_back(std::move(entry));
  }
  return id;
}

bool TickerGroup::Remove(Id id) {
  for (auto* list : {&entries_, &added_}) {
    for (auto it = list->begin(); it != list->end(); ++it) {
      if (it->id != id || it->removed) continue;
      --live_;
      if (running_) {
        it->removed = true;  // its callback may be the one running: destroyed after the round
        swept_needed_ = true;
      } else {
        list->erase(it);
      }
      return true;
    }
  }
  return false;
}

std::size_t TickerGroup::RunDue(TimePoint now) {
  if (running_) return 0;  // a tick called RunDue: nothing more this round
  running_ = true;
  std::size_t ran = 0;
  // By index: entries_ is not resized during the round (additions go to added_).
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Entry& entry = entries_[i];
    if (entry.removed || entry.due > now) continue;
    entry.due = FirstInstantAfter(entry, now);  // before the call: the tick may remove it
    ++ran;
    WarmAhead(i, now);
    entries_[i].tick();
  }
  running_ = false;
  Sweep();
  return ran;
}

void TickerGroup::WarmAhead(std::size_t i, TimePoint now) const {
  for (unsigned stage = 0; stage < kWarmStages; ++stage) {
    const std::size_t j = i + kWarmStages - stage;
    if (j >= entries_.size()) continue;
    const Entry& ahead = entries_[j];
    if (ahead.warmer.warm == nullptr || ahead.removed || ahead.due > now) continue;
    ahead.warmer.warm(ahead.warmer.object.get(), stage);
  }
}

void TickerGroup::Sweep() {
  if (swept_needed_) {
    std::erase_if(entries_, [](const Entry& entry) { return entry.removed; });
    std::erase_if(added_, [](const Entry& entry) { return entry.removed; });
    swept_needed_ = false;
  }
  for (auto& entry : added_)
    entries_.push_back(std::move(entry));
  added_.clear();
}

std::optional<TickerGroup::TimePoint> TickerGroup::NextDue() const {
  std::optional<TimePoint> next;
  for (const auto* list : {&entries_, &added_}) {
    for (const auto& entry : *list) {
      if (entry.removed) continue;
      if (!next || entry.due < *next) next = entry.due;
    }
  }
  return next;
}

}  // namespace callgate::conversation
