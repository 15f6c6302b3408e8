// Message scoring: is a message clean enough to relay and to count toward discovery?
// The built-in scorer knows the GTUBE test string and a few header sanity checks; an rspamd
// client can implement the same interface (it is asynchronous for that reason).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mailroster::gateway {

struct Score {
  double value = 0;
  bool spam = false;
  std::vector<std::string> reasons;  // "GTUBE", "MISSING_FROM", ...
};

class Scorer {
 public:
  virtual ~Scorer() = default;
  virtual boost::asio::awaitable<Score> score(std::string_view message) = 0;
};

// The built-in rules, pure: GTUBE (1000), no From (3), several From (3), no Date (1),
// no Message-ID (1), no header/body separator (2). Spam at or above threshold.
Score builtin_score(std::string_view message, double threshold);

class BuiltinScorer final : public Scorer {
 public:
  explicit BuiltinScorer(double threshold) : threshold_(threshold) {}
  boost::asio::awaitable<Score> score(std::string_view message) override;

 private:
  double threshold_;
};

}  // namespace mailroster::gateway
