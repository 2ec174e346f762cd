// streamprint_loadgen: the load of scripts/bench_streams.py --client cpp, in C++.
//
//   streamprint_loadgen --address HOST:PORT[,HOST:PORT...] --clip FILE --streams N
//       --first I --step S --start-at T [--duration S] [--chunk-ms MS] [--interval S]
//       [--sample-rate HZ] [--channels C] [--streams-per-channel K] [--call-timeout S]
//
// Runs the streams I, I+S, I+2S, ... < N of a load of N streams, each exactly as the Python
// load generator's (scripts/bench_streams.py, _run_stream): a StreamConfig (PCM s16le, the
// server's default dimensions, one update per --interval s of media), then --chunk-ms chunks
// of the looped clip (raw s16le interleaved), starting at the same per-stream offset of the
// clip (index * 7919 sample frames) and paced at real time from --start-at plus
// interval * index / N (seconds of CLOCK_MONOTONIC, the clock of Python's time.monotonic).
// Stream i goes to the (i mod A)-th of the A addresses. Connections: one per
// --streams-per-channel streams, each its own HTTP/2 connection (a local subchannel pool).
//
// Why C++: on a 2-core machine the load generator shares the cores with the server it
// measures. gRPC's C++ callback API costs a few microseconds per message where grpc.aio
// costs about a hundred, so this load takes a fraction of the CPU the Python one does.
//
// Output (stdout): one JSON object per stream, one per line, with the keys of the bench's
// StreamRecord: index, send_times, chunk_ends, updates ([arrival, media_seconds, final]),
// error (null or a status code name), error_message, max_send_lag_s, session_id. A send
// time is when the chunk was handed to gRPC (StartWrite); a chunk that falls due while the
// previous write is still in flight is handed over when that write completes (its lag is
// counted). Exit codes: 0 (every stream ran, whatever its status), 2 usage or clip error.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "json_out.h"
#include "streamprint/v1/fingerprint_service.grpc.pb.h"

namespace {

namespace v1 = streamprint::v1;
using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux, as time.monotonic()

using streamprint_cpp::CodeName;
using streamprint_cpp::JsonNumber;
using streamprint_cpp::JsonString;

double Seconds(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

Clock::time_point AtSeconds(double s) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)));
}

struct Options {
  std::vector<std::string> addresses;
  std::string clip_path;
  int streams = 0;
  int first = 0;
  int step = 1;
  double start_at = 0.0;
  double duration_s = 10.0;
  int chunk_ms = 100;
  double interval_s = 1.0;
  int sample_rate = 44100;
  int channels = 2;
  int streams_per_channel = 1;
  double call_timeout_s = 120.0;
};

// What one stream sends: chunk k is sample frames [start + k * per_chunk, ...) of the looped clip.
struct Media {
  const std::string* clip = nullptr;
  long long clip_units = 0;
  int unit = 4;  // bytes per sample frame
  long long per_chunk = 0;
  long long units_total = 0;
  double unit_s = 0.0;

  long long Chunks() const { return (units_total + per_chunk - 1) / per_chunk; }

  // Bytes of chunk k of the stream starting at sample frame `start`, and its media end (s).
  std::pair<std::string, double> Chunk(long long start, long long k) const {
    long long sent = k * per_chunk;
    long long take = std::min(per_chunk, units_total - sent);
    std::string data;
    data.reserve(static_cast<size_t>(take * unit));
    long long pos = (start + sent) % clip_units;
    for (long long need = take; need > 0;) {
      long long step = std::min(need, clip_units - pos);
      data.append(*clip, static_cast<size_t>(pos * unit), static_cast<size_t>(step * unit));
      need -= step;
      pos = 0;
    }
    return {std::move(data), static_cast<double>(sent + take) * unit_s};
  }
};

class Stream : public grpc::ClientBidiReactor<v1::StreamFingerprintRequest, v1::StreamFingerprintResponse> {
 public:
  Stream(int index, const Options& opts, const Media& media, std::shared_ptr<grpc::Channel> channel)
      : index_(index), opts_(opts), media_(media), stub_(v1::FingerprintService::NewStub(channel)) {
    start_unit_ = (static_cast<long long>(index) * 7919) % media.clip_units;
    total_chunks_ = media.Chunks();
    t0_ = opts.start_at + opts.interval_s * index / std::max(1, opts.streams);
  }

  double t0() const { return t0_; }
  long long total_chunks() const { return total_chunks_; }

  // At t0: open the call and write the config.
  void Begin() {
    ctx_.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(
                          std::chrono::duration<double>(opts_.call_timeout_s + opts_.duration_s)));
    stub_->async()->StreamFingerprint(&ctx_, this);
    auto* config = request_.mutable_config();
    config->set_modality(v1::MODALITY_AUDIO);
    auto* format = config->mutable_audio_format();
    format->set_encoding(v1::AUDIO_ENCODING_PCM_S16LE);
    format->set_sample_rate_hz(opts_.sample_rate);
    format->set_channels(opts_.channels);
    config->set_update_interval_seconds(opts_.interval_s);
    config->set_client_stream_id("bench-" + std::to_string(index_));
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      writing_ = true;
    }
    StartRead(&response_);
    StartWrite(&request_);
    StartCall();
  }

  // The next chunk falls due (the pacer calls this in order, chunk k at t0 + k * chunk).
  void Due(double due) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (failed_ || done_) return;  // the call is over: no Start* after OnDone
    due_times_.push_back(due);
    ++due_count_;
    if (!writing_) WriteNextLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    writing_ = false;
    if (!ok) {  // the call is over (its status comes with OnDone)
      failed_ = true;
      return;
    }
    if (written_ < due_count_) {
      WriteNextLocked();
    } else if (written_ == total_chunks_ && !writes_done_) {
      writes_done_ = true;
      StartWritesDone();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    double now = Seconds(Clock::now());
    const auto& fp = response_.fingerprint();
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      updates_.emplace_back(now, fp.media_seconds(), fp.final());
      if (session_id_.empty()) session_id_ = response_.session_id();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (!status.ok()) {
      error_ = CodeName(status.error_code());
      error_message_ = status.error_message();
    } else if (written_ < total_chunks_) {
      error_ = "UNKNOWN";
      error_message_ = "the call ended before every chunk was sent";
    }
    done_ = true;
    done_cv_.notify_all();
  }

  void Wait() {
    std::unique_lock<std::recursive_mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return done_; });
  }

  std::string Json() const {
    std::ostringstream out;
    out << "{\"index\": " << index_ << ", \"send_times\": [";
    for (size_t i = 0; i < send_times_.size(); ++i) out << (i ? ", " : "") << JsonNumber(send_times_[i]);
    out << "], \"chunk_ends\": [";
    for (size_t i = 0; i < chunk_ends_.size(); ++i) out << (i ? ", " : "") << JsonNumber(chunk_ends_[i]);
    out << "], \"updates\": [";
    for (size_t i = 0; i < updates_.size(); ++i) {
      out << (i ? ", " : "") << "[" << JsonNumber(std::get<0>(updates_[i])) << ", "
          << JsonNumber(std::get<1>(updates_[i])) << ", " << (std::get<2>(updates_[i]) ? "true" : "false") << "]";
    }
    out << "], \"error\": " << (error_.empty() ? "null" : JsonString(error_))
        << ", \"error_message\": " << JsonString(error_message_)
        << ", \"max_send_lag_s\": " << JsonNumber(max_send_lag_s_)
        << ", \"session_id\": " << JsonString(session_id_) << "}";
    return out.str();
  }

 private:
  // With mu_ held and no write in flight: hand chunk `written_` to gRPC.
  void WriteNextLocked() {
    auto [data, end] = media_.Chunk(start_unit_, written_);
    request_.Clear();
    auto* chunk = request_.mutable_chunk();
    chunk->set_data(std::move(data));
    chunk->set_seq(static_cast<uint64_t>(written_));
    double sent = Seconds(Clock::now());
    max_send_lag_s_ = std::max(max_send_lag_s_, sent - due_times_[static_cast<size_t>(written_)]);
    send_times_.push_back(sent);
    chunk_ends_.push_back(end);
    ++written_;
    writing_ = true;
    StartWrite(&request_);
  }

  const int index_;
  const Options& opts_;
  const Media& media_;
  std::unique_ptr<v1::FingerprintService::Stub> stub_;
  grpc::ClientContext ctx_;
  v1::StreamFingerprintRequest request_;
  v1::StreamFingerprintResponse response_;
  long long start_unit_ = 0;
  long long total_chunks_ = 0;
  double t0_ = 0.0;

  // recursive: a reaction that gRPC runs inline in a Start* call made under the lock
  std::recursive_mutex mu_;
  std::condition_variable_any done_cv_;
  bool writing_ = false;
  bool writes_done_ = false;
  bool failed_ = false;
  bool done_ = false;
  long long due_count_ = 0;
  long long written_ = 0;
  std::vector<double> due_times_;
  std::vector<double> send_times_;
  std::vector<double> chunk_ends_;
  std::vector<std::tuple<double, double, bool>> updates_;
  std::string error_;
  std::string error_message_;
  std::string session_id_;
  double max_send_lag_s_ = 0.0;
};

[[noreturn]] void Usage(const std::string& problem) {
  std::fprintf(stderr, "streamprint_loadgen: %s\n(see the comment at the top of clients/cpp/src/loadgen.cc)\n",
               problem.c_str());
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  auto integer = [](int* field) { return [field](const std::string& v) { *field = std::stoi(v); }; };
  auto real = [](double* field) { return [field](const std::string& v) { *field = std::stod(v); }; };
  const std::map<std::string, std::function<void(const std::string&)>> setters = {
      {"--address",
       [&o](const std::string& v) {
         std::stringstream parts(v);
         for (std::string a; std::getline(parts, a, ',');)
           if (!a.empty()) o.addresses.push_back(a);
       }},
      {"--clip", [&o](const std::string& v) { o.clip_path = v; }},
      {"--streams", integer(&o.streams)},
      {"--first", integer(&o.first)},
      {"--step", integer(&o.step)},
      {"--start-at", real(&o.start_at)},
      {"--duration", real(&o.duration_s)},
      {"--chunk-ms", integer(&o.chunk_ms)},
      {"--interval", real(&o.interval_s)},
      {"--sample-rate", integer(&o.sample_rate)},
      {"--channels", integer(&o.channels)},
      {"--streams-per-channel", integer(&o.streams_per_channel)},
      {"--call-timeout", real(&o.call_timeout_s)},
  };
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto setter = setters.find(flag);
    if (setter == setters.end()) Usage("unknown flag " + flag);
    if (i + 1 >= argc) Usage("missing the value of " + flag);
    std::string value = argv[++i];
    try {
      setter->second(value);
    } catch (const std::exception&) {
      Usage("bad value for " + flag + ": " + value);
    }
  }
  if (o.addresses.empty() || o.clip_path.empty()) Usage("--address and --clip are required");
  if (o.streams < 1 || o.first < 0 || o.step < 1 || o.chunk_ms < 1 || o.sample_rate < 1 || o.channels < 1 ||
      o.streams_per_channel < 1 || !(o.duration_s > 0) || !(o.interval_s > 0))
    Usage("--streams, --step, --chunk-ms, --sample-rate, --channels, --streams-per-channel, --duration and "
          "--interval must be positive");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts = Parse(argc, argv);
  std::ifstream in(opts.clip_path, std::ios::binary);
  if (!in) Usage("cannot read the clip " + opts.clip_path);
  const std::string clip((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  Media media;
  media.clip = &clip;
  media.unit = 2 * opts.channels;
  media.clip_units = static_cast<long long>(clip.size()) / media.unit;
  if (media.clip_units < 1) Usage("the clip holds no sample frame");
  media.unit_s = 1.0 / opts.sample_rate;
  media.per_chunk = std::max(1LL, std::llround(opts.sample_rate * opts.chunk_ms / 1000.0));
  media.units_total = std::llround(opts.duration_s / media.unit_s);

  std::vector<int> indices;
  for (int i = opts.first; i < opts.streams; i += opts.step) indices.push_back(i);

  // One channel (connection) per --streams-per-channel streams of each address.
  std::vector<std::vector<std::shared_ptr<grpc::Channel>>> channels(opts.addresses.size());
  std::vector<int> mine(opts.addresses.size(), 0);
  for (int i : indices) ++mine[static_cast<size_t>(i) % opts.addresses.size()];
  for (size_t a = 0; a < opts.addresses.size(); ++a) {
    int n = std::max(1, (mine[a] + opts.streams_per_channel - 1) / opts.streams_per_channel);
    for (int c = 0; c < n; ++c) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetMaxReceiveMessageSize(-1);
      channels[a].push_back(
          grpc::CreateCustomChannel(opts.addresses[a], grpc::InsecureChannelCredentials(), args));
    }
  }
  for (auto& group : channels)
    for (auto& ch : group)
      if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
        std::fprintf(stderr, "streamprint_loadgen: cannot connect to the server\n");
        return 1;
      }

  std::vector<std::unique_ptr<Stream>> streams;
  std::vector<int> used(opts.addresses.size(), 0);
  for (int i : indices) {
    size_t a = static_cast<size_t>(i) % opts.addresses.size();
    auto& group = channels[a];
    streams.push_back(std::make_unique<Stream>(i, opts, media, group[static_cast<size_t>(used[a]++) % group.size()]));
  }

  // The pacer: (due time, stream, chunk; chunk -1 opens the call), earliest first.
  using Event = std::tuple<double, size_t, long long>;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;
  for (size_t s = 0; s < streams.size(); ++s) events.emplace(streams[s]->t0(), s, -1);
  const double chunk_s = opts.chunk_ms / 1000.0;
  while (!events.empty()) {
    auto [due, s, k] = events.top();
    events.pop();
    std::this_thread::sleep_until(AtSeconds(due));
    Stream& stream = *streams[s];
    if (k < 0) {
      stream.Begin();
    } else {
      stream.Due(due);
    }
    if (k + 1 < stream.total_chunks()) events.emplace(stream.t0() + (k + 1) * chunk_s, s, k + 1);
  }
  for (auto& stream : streams) {
    stream->Wait();
    std::printf("%s\n", stream->Json().c_str());
  }
  return 0;
}
