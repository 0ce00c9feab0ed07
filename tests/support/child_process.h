// A long-running child process for integration tests (a relay, a daemon):
// start it, read its stdout line by line with a deadline, signal it, wait for
// it. Tests only. The destructor kills a child that is still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rhizome::testing {

class ChildProcess {
 public:
  // Starts `program` with `args` and exactly the environment `env` (plus PATH).
  // stderr goes to `stderr_path` if given, else is discarded.
  ChildProcess(const std::string& program, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {},
               const std::string& stderr_path = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of stdout (without '\n'), or nullopt at EOF or after `deadline`.
  std::optional<std::string> ReadLine(std::chrono::milliseconds deadline);
  // Reads lines until one starts with `prefix`; returns the rest of that line.
  std::optional<std::string> WaitForLinePrefix(const std::string& prefix,
                                               std::chrono::milliseconds deadline);

  void Signal(int signo);
  // Waits for exit; returns the exit code, 128+signal if killed, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds deadline);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  std::optional<int> exit_code_;
};

}  // namespace rhizome::testing
