// libFuzzer target: the CSV reader and the user CSV mapping take any bytes without crashing.
#include <cstdint>
#include <sstream>
#include <string>

#include "directory/csv/csv_import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  (void)mailroster::directory::csv::read_user_csv(in, {"acme.example"});
  return 0;
}
