// libFuzzer target: the SMTP command parser, line buffer and data reader must take any bytes
// without crashing, and a parsed command must never be refused and accepted at once.
#include <cstdint>
#include <string_view>

#include "smtp/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto parsed = mailroster::smtp::parse_command(bytes);
  if (parsed.command && parsed.error.code != 0) __builtin_trap();
  if (!parsed.command && parsed.error.code < 500) __builtin_trap();

  mailroster::smtp::LineBuffer lines;
  lines.append(bytes);
  mailroster::smtp::Limits limits;
  mailroster::smtp::DataReader reader(limits);
  while (auto line = lines.next(limits.text_line)) {
    if (line->text.size() > limits.text_line) __builtin_trap();
    if (reader.add(*line)) break;
  }
  (void)mailroster::smtp::parse_reply(bytes);
  return 0;
}
