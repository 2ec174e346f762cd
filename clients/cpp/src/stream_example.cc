// streamprint_stream: stream a media file to a streamprint server and print the updates.
//
//   streamprint_stream FILE [--json] [--chunk-bytes N] [--client-stream-id ID] [--server HOST:PORT]
//
// The server comes from --server, else $STREAMPRINT_SERVER, else 127.0.0.1:50051. With --json
// every update is one JSON line with the Python client's keys (session_id, revision, final,
// values and confidence keyed by dimension name, media_seconds, ...). A writer thread sends
// the config and the chunks while the main thread reads updates, so flow control never
// deadlocks. An RPC error prints its status code name, message and rich details (ErrorInfo,
// BadRequest field violations, RetryInfo, ... from grpc-status-details-bin; src/status_details.h)
// on stderr as the Python client does, with --json also {"error": {"code", "message", "details"}}.
// Exit codes: 0 success, 1 an RPC or file error, 2 usage.

#include <grpcpp/grpcpp.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "json_out.h"
#include "status_details.h"
#include "streamprint/v1/fingerprint_service.grpc.pb.h"

namespace {

namespace v1 = streamprint::v1;

using streamprint_cpp::CodeName;
using streamprint_cpp::DecodeStatusDetails;
using streamprint_cpp::JsonNumber;
using streamprint_cpp::JsonString;
using streamprint_cpp::StatusDetail;
using streamprint_cpp::StatusDetailsJson;

// A file that cannot be read: the stderr line and, with --json, the Python client's
// {"error": {"code": "LOCAL_FILE", ...}} line. Returns the exit code (1).
int FileError(const std::string& path, const std::string& reason, bool json) {
  const std::string message = reason + ": " + path;  // as the Python client words it
  std::cerr << "streamprint_stream: error: " << message << "\n";
  if (json) {
    std::cout << "{\"error\": {\"code\": \"LOCAL_FILE\", \"message\": " << JsonString(message)
              << ", \"details\": []}}" << std::endl;
  }
  return 1;
}

std::string UpdateJson(const v1::StreamFingerprintResponse& r, const std::string& path) {
  const v1::Fingerprint& fp = r.fingerprint();
  std::ostringstream o;
  o << "{\"session_id\": " << JsonString(r.session_id());
  if (!r.client_stream_id().empty()) o << ", \"client_stream_id\": " << JsonString(r.client_stream_id());
  o << ", \"algorithm\": " << JsonString(fp.algorithm()) << ", \"values\": {";
  for (int i = 0; i < fp.dimensions_size(); ++i) {
    o << (i ? ", " : "") << JsonString(fp.dimensions(i).name()) << ": " << JsonNumber(fp.dimensions(i).value());
  }
  o << "}, \"confidence\": {";
  for (int i = 0; i < fp.dimensions_size(); ++i) {
    o << (i ? ", " : "") << JsonString(fp.dimensions(i).name()) << ": "
      << JsonNumber(fp.dimensions(i).confidence());
  }
  o << "}, \"revision\": " << fp.revision()
    << ", \"media_seconds\": " << JsonNumber(std::round(fp.media_seconds() * 1e6) / 1e6)
    << ", \"final\": " << (fp.final() ? "true" : "false") << ", \"model\": " << JsonString(fp.model())
    << ", \"model_version\": " << JsonString(fp.model_version()) << ", \"path\": " << JsonString(path)
    << "}";
  return o.str();
}

int Usage(const std::string& message) {
  if (!message.empty()) std::cerr << "streamprint_stream: error: " << message << "\n";
  std::cerr << "usage: streamprint_stream FILE [--json] [--chunk-bytes N] [--client-stream-id ID]"
               " [--server HOST:PORT]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, client_stream_id;
  const char* env_server = std::getenv("STREAMPRINT_SERVER");
  std::string server = (env_server && *env_server) ? env_server : "127.0.0.1:50051";
  bool json = false;
  long chunk_bytes = 32 * 1024;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (arg == "--json") {
      json = true;
    } else if (arg == "--chunk-bytes") {
      const char* v = value("--chunk-bytes");
      if (!v || (chunk_bytes = std::strtol(v, nullptr, 10)) <= 0) return Usage("--chunk-bytes needs a positive number");
    } else if (arg == "--client-stream-id") {
      const char* v = value("--client-stream-id");
      if (!v) return Usage("--client-stream-id needs a value");
      client_stream_id = v;
    } else if (arg == "--server") {
      const char* v = value("--server");
      if (!v) return Usage("--server needs HOST:PORT");
      server = v;
    } else if (arg == "-h" || arg == "--help") {
      Usage("");
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage("unknown option " + arg);
    } else if (path.empty()) {
      path = arg;
    } else {
      return Usage("only one FILE");
    }
  }
  if (path.empty()) return Usage("a FILE is required");

  std::error_code not_regular;
  if (std::filesystem::exists(path, not_regular) && !std::filesystem::is_regular_file(path, not_regular)) {
    // a directory opens as a stream here, and reading it throws from inside the stream buffer
    return FileError(path, std::strerror(EISDIR), json);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return FileError(path, std::strerror(errno), json);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 * 1024 * 1024);
  args.SetMaxSendMessageSize(256 * 1024 * 1024);
  auto channel = grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::FingerprintService::NewStub(channel);

  grpc::ClientContext context;
  std::shared_ptr<grpc::ClientReaderWriter<v1::StreamFingerprintRequest, v1::StreamFingerprintResponse>> call(
      stub->StreamFingerprint(&context));

  std::thread writer([&] {
    v1::StreamFingerprintRequest request;
    v1::StreamConfig* config = request.mutable_config();
    config->set_modality(v1::MODALITY_AUDIO);
    config->set_client_stream_id(client_stream_id);
    if (!call->Write(request)) return;  // the call failed; Finish() says why
    uint64_t seq = 0;
    for (size_t pos = 0; pos < data.size(); pos += static_cast<size_t>(chunk_bytes)) {
      v1::StreamFingerprintRequest chunk;
      chunk.mutable_chunk()->set_data(data.substr(pos, static_cast<size_t>(chunk_bytes)));
      chunk.mutable_chunk()->set_seq(seq++);
      if (!call->Write(chunk)) return;
    }
    call->WritesDone();
  });

  v1::StreamFingerprintResponse response;
  while (call->Read(&response)) {
    const v1::Fingerprint& fp = response.fingerprint();
    if (json) {
      std::cout << UpdateJson(response, path) << std::endl;
    } else if (!fp.final()) {
      double low = 1.0;
      for (const auto& d : fp.dimensions()) low = std::min(low, d.confidence());
      std::printf("revision %llu: %7.2f s, lowest confidence %.2f\n",
                  static_cast<unsigned long long>(fp.revision()), fp.media_seconds(), low);
      std::fflush(stdout);
    } else {
      std::printf("%s: session %s, %s, %.2f s, final (revision %llu)\n", path.c_str(),
                  response.session_id().c_str(), fp.algorithm().c_str(), fp.media_seconds(),
                  static_cast<unsigned long long>(fp.revision()));
      for (const auto& d : fp.dimensions()) {
        std::printf("  %-24s %14.6g  confidence %.2f\n", d.name().c_str(), d.value(), d.confidence());
      }
    }
  }
  writer.join();
  grpc::Status status = call->Finish();
  if (!status.ok()) {
    std::string code = CodeName(status.error_code());
    const std::vector<StatusDetail> details = DecodeStatusDetails(status.error_details());
    std::cerr << "streamprint_stream: error: " << code << ": " << status.error_message() << "\n";
    for (const auto& detail : details) {
      for (const auto& line : detail.lines) std::cerr << line << "\n";
    }
    if (json) {
      std::cout << "{\"error\": {\"code\": " << JsonString(code)
                << ", \"message\": " << JsonString(status.error_message())
                << ", \"details\": " << StatusDetailsJson(details) << "}}" << std::endl;
    }
    return 1;
  }
  return 0;
}
