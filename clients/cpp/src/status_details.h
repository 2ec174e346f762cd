// The rich details of a failed call, decoded as the Python client decodes them (header only).
//
// The server sends a serialized google.rpc.Status in the grpc-status-details-bin trailer
// (grpc::Status::error_details()); each of its details is a google.protobuf.Any of
// google.rpc.ErrorInfo, BadRequest, RetryInfo, ResourceInfo, ... The lines and the JSON
// mirror clients/python/streamprint_client/errors.py (StreamprintRpcError.describe() and
// to_json_dict()): "  field F: D", "  reason R (DOMAIN, k=v)", "  retry after S s",
// "  resource TYPE NAME", "  quota SUBJECT: D", any other known type as "  TYPE: {JSON}"
// (compact), and a type this program has no descriptor for as "  TYPE: {"undecoded_bytes":N}".
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "json_out.h"

namespace streamprint_cpp {

// One decoded detail: its type ("google.rpc.BadRequest"), its content as the members of a
// JSON object without the braces (`"reason":"X","domain":"Y"`, may be empty) and its lines.
struct StatusDetail {
  std::string type;
  std::string json_members;
  std::vector<std::string> lines;
};

namespace internal {

// `{"a":1}` -> `"a":1`; `{}` -> ``.
inline std::string JsonMembers(const std::string& object) {
  if (object.size() < 2 || object.front() != '{' || object.back() != '}') return "";
  return object.substr(1, object.size() - 2);
}

inline std::string MessageJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;  // as the Python client's MessageToDict
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

inline std::string Printf(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

inline StatusDetail Decode(const google::protobuf::Any& any) {
  const std::string& url = any.type_url();
  StatusDetail d;
  d.type = url.substr(url.rfind('/') == std::string::npos ? 0 : url.rfind('/') + 1);
  const std::string size = std::to_string(any.value().size());
  const google::protobuf::Descriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(d.type);
  if (descriptor == nullptr) {
    d.json_members = "\"undecoded_bytes\": " + size;
    d.lines.push_back("  " + d.type + ": {\"undecoded_bytes\":" + size + "}");
    return d;
  }
  std::unique_ptr<google::protobuf::Message> message(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor)->New());
  if (!message->ParseFromString(any.value())) {
    d.json_members = "\"undecodable_bytes\": " + size;
    d.lines.push_back("  " + d.type + ": {\"undecodable_bytes\":" + size + "}");
    return d;
  }
  if (const auto* retry = dynamic_cast<const google::rpc::RetryInfo*>(message.get())) {
    double delay = static_cast<double>(retry->retry_delay().seconds()) + retry->retry_delay().nanos() / 1e9;
    d.json_members = "\"retry_delay_s\": " + JsonNumber(delay);
    d.lines.push_back("  retry after " + Printf("%g", delay) + " s");
    return d;
  }
  d.json_members = JsonMembers(MessageJson(*message));
  if (const auto* bad = dynamic_cast<const google::rpc::BadRequest*>(message.get())) {
    for (const auto& v : bad->field_violations()) d.lines.push_back("  field " + v.field() + ": " + v.description());
  } else if (const auto* info = dynamic_cast<const google::rpc::ErrorInfo*>(message.get())) {
    const std::map<std::string, std::string> metadata(info->metadata().begin(), info->metadata().end());
    std::string extra;
    for (const auto& [key, value] : metadata) extra += ", " + key + "=" + value;
    d.lines.push_back("  reason " + info->reason() + " (" + info->domain() + extra + ")");
  } else if (const auto* resource = dynamic_cast<const google::rpc::ResourceInfo*>(message.get())) {
    d.lines.push_back("  resource " + resource->resource_type() + " " + resource->resource_name());
  } else if (const auto* quota = dynamic_cast<const google::rpc::QuotaFailure*>(message.get())) {
    for (const auto& v : quota->violations()) d.lines.push_back("  quota " + v.subject() + ": " + v.description());
  } else {
    d.lines.push_back("  " + d.type + ": {" + d.json_members + "}");
  }
  return d;
}

}  // namespace internal

// The details of grpc::Status::error_details() (a serialized google.rpc.Status); none when the
// trailer is absent or does not parse.
inline std::vector<StatusDetail> DecodeStatusDetails(const std::string& serialized_status) {
  std::vector<StatusDetail> out;
  google::rpc::Status status;
  if (serialized_status.empty() || !status.ParseFromString(serialized_status)) return out;
  for (const auto& any : status.details()) out.push_back(internal::Decode(any));
  return out;
}

// `[{"type": "google.rpc.ErrorInfo", "reason":"...",...}, ...]`: the "details" of --json's error line.
inline std::string StatusDetailsJson(const std::vector<StatusDetail>& details) {
  std::string out = "[";
  for (size_t i = 0; i < details.size(); ++i) {
    out += (i ? ", {\"type\": " : "{\"type\": ") + JsonString(details[i].type);
    if (!details[i].json_members.empty()) out += ", " + details[i].json_members;
    out += "}";
  }
  return out + "]";
}

}  // namespace streamprint_cpp
