// What build this is: `mailroster --version`, serve's first log line, and the
// mailroster_build_info metric. Defined in a file the build writes (cmake/Version.cmake).
#pragma once

#include <string>

namespace mailroster::app {

const char* version();  // the project's: "0.1.0"
const char* commit();   // git describe of the sources built: "e515023a1b", "…-dirty", "unknown"

// "0.1.0 (e515023a1b)": as --version, serve's first log line and `node list` say it.
inline std::string version_and_commit() { return std::string(version()) + " (" + commit() + ")"; }

}  // namespace mailroster::app
