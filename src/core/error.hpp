// Typed errors for expected runtime failures (bad input, unknown object, conflict, unavailable
// dependency). They are turned into an exit status, SMTP reply or HTTP error at exactly one
// boundary per interface; bugs are assertions, not errors.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mailroster::core {

enum class ErrorCode {
  invalid_argument,  // the caller's input is malformed or out of range
  not_found,         // the named object does not exist (or is not visible to the caller)
  conflict,          // the change would break an invariant (duplicate address, in use, ...)
  unavailable,       // a dependency failed: try again later, never treat as "not found"
  internal,          // storage or other failure that is not the caller's fault
};

std::string_view to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
  std::string field;  // the input field at fault, when there is one
};

// Carries an Error through layers that use exceptions (store, CLI wiring).
class Failure : public std::runtime_error {
 public:
  explicit Failure(Error error) : std::runtime_error(error.message), error_(std::move(error)) {}
  Failure(ErrorCode code, std::string message, std::string field = {})
      : Failure(Error{code, std::move(message), std::move(field)}) {}
  const Error& error() const noexcept { return error_; }
  ErrorCode code() const noexcept { return error_.code; }

 private:
  Error error_;
};

// A value or the Error that prevented it; what pure parsers return.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  const T& value() const& {
    throw_if_error();
    return std::get<0>(v_);
  }
  T&& value() && {
    throw_if_error();
    return std::get<0>(std::move(v_));
  }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }

 private:
  void throw_if_error() const {
    if (!ok()) throw Failure(std::get<1>(v_));
  }
  std::variant<T, Error> v_;
};

inline Error invalid(std::string message, std::string field = {}) {
  return Error{ErrorCode::invalid_argument, std::move(message), std::move(field)};
}

}  // namespace mailroster::core
