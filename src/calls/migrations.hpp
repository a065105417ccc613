// The calls module's schema: the call ledger and the idempotency keys, as store migrations in
// the module's range (versions 100-199, see store/database.hpp). Pass them to
// store::Database::Open(path, calls::Migrations()) (together with other modules' migrations).
//   100 calls             the call ledger (SqliteCallLedger)
//   101 idempotency_keys  Idempotency-Key records (IdempotencyStore)
#pragma once

#include "store/database.hpp"

#include <span>

namespace callgate::calls {

std::span<const store::Migration> Migrations();

}  // namespace callgate::calls
