#include <iostream>
#include <string>
#include <vector>

#include "base/log.h"
#include "cli/cli.h"

int main(int argc, char** argv) {
  nvmf_ublk::SetMinLogLevel(nvmf_ublk::LogLevel::kError);
  std::vector<std::string> args(argv + 1, argv + argc);
  return nvmf_ublk::cli::RunCli(args, std::cout, std::cerr);
}
