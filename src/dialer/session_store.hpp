// Ended dialer sessions, kept in SQLite (migration 300) with their transcript and statistics,
// so GET /webhook/sessions/{id} still answers after the conversation and after a restart.
#pragma once

#include "store/database.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace callgate::dialer {

std::span<const store::Migration> Migrations();

class SessionStore {
 public:
  explicit SessionStore(store::Database& database) : database_(database) {}

  // `session` is the rendered session (StatsToJson plus metadata). Replaces an earlier session
  // with the same id. `done(ok)` runs on the database thread.
  void Save(boost::json::object session, std::function<void(bool ok)> done = {});
  void Get(std::string session_id, std::function<void(std::optional<boost::json::object>)> done);
  // Newest first.
  void List(std::size_t limit, std::function<void(std::vector<boost::json::object>)> done);

 private:
  store::Database& database_;
};

}  // namespace callgate::dialer
