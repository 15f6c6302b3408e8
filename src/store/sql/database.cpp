#include "store/sql/database.hpp"

namespace mailroster::store::sql {

Transaction::Transaction(Database& db, Nesting nesting)
    : db_(db), nested_(db.transaction_depth_ > 0), joined_(nested_ && nesting == Nesting::join) {
  if (!joined_) nested_ ? db_.exec("SAVEPOINT nested") : db_.begin();
  ++db_.transaction_depth_;
}

Transaction::~Transaction() {
  if (joined_) {
    if (!done_) --db_.transaction_depth_;
    return;
  }
  if (!done_) {
    --db_.transaction_depth_;
    try {
      db_.exec(nested_ ? "ROLLBACK TO SAVEPOINT nested; RELEASE SAVEPOINT nested" : "ROLLBACK");
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more can be done in a destructor
    }
  }
}

void Transaction::commit() {
  if (!joined_) db_.exec(nested_ ? "RELEASE SAVEPOINT nested" : "COMMIT");
  --db_.transaction_depth_;
  done_ = true;
}

}  // namespace mailroster::store::sql
