#include "http/message.hpp"

#include "core/strings.hpp"

#include <boost/json/serialize.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>

namespace callgate::http {
std::optional<std::string_view> Headers::Get(std::string_view name) const {
  for (const auto& [field, value] : fields_) {
    if (core::EqualsIgnoreCase(field, name)) return std::string_view(value);
  }
  return std::nullopt;
}

void Headers::Set(std::string name, std::string value) {
  std::erase_if(fields_, [&](const auto& f) { return core::EqualsIgnoreCase(f.first, name); });
  fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

std::string_view Request::PathParam(std::string_view name) const {
  const auto it = path_params.find(name);
  return it == path_params.end() ? std::string_view{} : std::string_view(it->second);
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return std::nullopt;
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  for (const auto& param : *parsed) {
    if (param.key.decode(opts) == name) return param.value.decode(opts);
  }
  return std::nullopt;
}

Response Response::Json(int status, const boost::json::value& value) {
  return JsonText(status, boost::json::serialize(value));
}

Response Response::JsonText(int status, std::string json_text) {
  Response response;
  response.status = status;
  response.headers.Add("Content-Type", "application/json");
  response.body = std::move(json_text);
  return response;
}

Response Response::Stream(int status, std::string content_type,
                          std::shared_ptr<BodyStream> stream) {
  Response response;
  response.status = status;
  response.headers.Set("Content-Type", std::move(content_type));
  response.stream = std::move(stream);
  return response;
}

Response Response::Text(int status, std::string text, std::string content_type) {
  Response response;
  response.status = status;
  response.headers.Set("Content-Type", std::move(content_type));
  response.body = std::move(text);
  return response;
}

BodyChunk BodyChunk::Data(std::string bytes) {
  BodyChunk chunk;
  chunk.kind = Kind::kData;
  chunk.data = std::move(bytes);
  return chunk;
}

BodyChunk BodyChunk::End() {
  return BodyChunk{};
}

BodyChunk BodyChunk::Error(std::string what) {
  BodyChunk chunk;
  chunk.kind = Kind::kError;
  chunk.error = std::move(what);
  return chunk;
}

namespace {

class StringBodyStream final : public BodyStream {
 public:
  StringBodyStream(std::shared_ptr<const std::string> bytes, std::size_t chunk_bytes)
      : bytes_(bytes ? std::move(bytes) : std::make_shared<const std::string>()),
        chunk_bytes_(std::max<std::size_t>(chunk_bytes, 1)) {}

  std::optional<std::uint64_t> Length() const override { return bytes_->size(); }

  void Next(NextCallback done) override {
    if (offset_ >= bytes_->size()) {
      done(BodyChunk::End());
      return;
    }
    const std::size_t n = std::min(chunk_bytes_, bytes_->size() - offset_);
    std::string piece = bytes_->substr(offset_, n);
    offset_ += n;
    done(BodyChunk::Data(std::move(piece)));
  }

 private:
  std::shared_ptr<const std::string> bytes_;
  std::size_t chunk_bytes_;
  std::size_t offset_ = 0;
};

struct WholeBodyReader : std::enable_shared_from_this<WholeBodyReader> {
  std::shared_ptr<BodyStream> stream;
  std::size_t max_bytes = 0;
  std::string bytes;
  std::function<void(std::optional<std::string>, std::string)> done;

  void Pull() {
    const auto keep = stream;  // Finish() may drop `stream` inside an inline Next()
    keep->Next([self = shared_from_this()](BodyChunk chunk) { self->On(std::move(chunk)); });
  }

  void On(BodyChunk chunk) {
    switch (chunk.kind) {
      case BodyChunk::Kind::kEnd:
        Finish(std::move(bytes), {});
        return;
      case BodyChunk::Kind::kError:
        Finish(std::nullopt, std::move(chunk.error));
        return;
      case BodyChunk::Kind::kData:
        if (chunk.data.size() > max_bytes - bytes.size()) {
          Finish(std::nullopt, "the body is larger than " + std::to_string(max_bytes) + " bytes");
          return;
        }
        bytes += chunk.data;
        Pull();
        return;
    }
  }

  void Finish(std::optional<std::string> result, std::string error) {
    stream.reset();  // before `done`: an unfinished stream releases its connection now
    auto callback = std::move(done);
    callback(std::move(result), std::move(error));
  }
};

}  // namespace

std::shared_ptr<BodyStream> MakeStringBodyStream(std::shared_ptr<const std::string> bytes,
                                                 std::size_t chunk_bytes) {
  return std::make_shared<StringBodyStream>(std::move(bytes), chunk_bytes);
}

void ReadWholeBody(std::shared_ptr<BodyStream> stream, std::size_t max_bytes,
                   std::function<void(std::optional<std::string> bytes, std::string error)> done) {
  auto reader = std::make_shared<WholeBodyReader>();
  reader->stream = std::move(stream);
  reader->max_bytes = max_bytes;
  reader->done = std::move(done);
  reader->Pull();
}

}  // namespace callgate::http
