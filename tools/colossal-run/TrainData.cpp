//===- TrainData.cpp - Batches for colossal-run's training loop -----------===//
//
// Window starts of a token file come from a counter-based generator
// (splitmix64 of seed and sample number), so the data position alone fixes
// the rest of the stream.
//
//===----------------------------------------------------------------------===//

#include "tools/colossal-run/TrainData.h"

#include "runtime/core/Npy.h"
#include "runtime/core/PlanTypes.h"
#include "runtime/proto/plan.pb.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace colossal::tools {
namespace {

Status fail(const std::string &message) { return Status::error(message); }

uint64_t splitmix64(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

const TensorInfo *findInfo(const Plan &plan, const std::string &name) {
  int i = plan.findInput(name);
  return i < 0 ? nullptr : &plan.inputs()[i];
}

std::string describe(const TensorInfo &info) {
  return std::string(rt::dtypeName(info.dtype)) + rt::formatShape(info.shape);
}

/// A flat file of token ids, mapped read-only.
class TokenStream : public BatchSource {
public:
  ~TokenStream() override {
    if (map_)
      munmap(const_cast<uint8_t *>(map_), bytes_);
  }

  static Status open(const std::string &path, const std::string &dtype,
                     const std::string &order, uint64_t seed, const Plan &plan,
                     std::unique_ptr<BatchSource> &out) {
    const plan::Training &t = plan.proto().training();
    if (t.tokens_input().empty() || t.loss() != "cross-entropy")
      return fail("'" + path +
                  "' is a token file, but this plan is not a language model "
                  "whose labels are its next tokens (its inputs: " +
                  inputList(plan) +
                  "); give --data a directory of .npy batches instead");
    const TensorInfo *tokens = findInfo(plan, t.tokens_input());
    const TensorInfo *labels = findInfo(plan, t.labels_input());
    if (!tokens || !labels || tokens->shape.size() != 2 ||
        labels->shape != tokens->shape)
      return fail("the plan's token input '" + t.tokens_input() +
                  "' and labels must both be [batch, seq]; recompile");
    // Inputs a language model's batch conventionally carries besides its
    // ids are filled as an unpadded batch would have them.
    std::vector<TensorInfo> extra;
    for (const TensorInfo &info : plan.inputs()) {
      if (info.name == tokens->name || info.name == labels->name)
        continue;
      bool known = info.shape == tokens->shape &&
                   (info.dtype == DType::I64 || info.dtype == DType::I32) &&
                   (info.name.find("attention_mask") != std::string::npos ||
                    info.name.find("token_type_ids") != std::string::npos ||
                    info.name.find("position_ids") != std::string::npos);
      if (!known)
        return fail("the plan also needs input '" + info.name + "' (" +
                    colossal::tools::describe(info) +
                    "), which a token file does not provide; give --data a "
                    "directory of .npy batches instead");
      extra.push_back(info);
    }
    auto stream = std::make_unique<TokenStream>();
    stream->extra_ = extra;
    stream->path_ = path;
    stream->tokens_ = *tokens;
    stream->labels_ = *labels;
    stream->random_ = order == "random";
    stream->seed_ = seed;
    if (dtype == "uint16")
      stream->width_ = 2;
    else if (dtype == "uint32")
      stream->width_ = 4;
    else
      return fail("--data-dtype=" + dtype +
                  " is not known; use uint16 or "
                  "uint32");
    if (order != "random" && order != "sequential")
      return fail("--data-order=" + order +
                  " is not known; use random or sequential");
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0)
      return fail("cannot open token file '" + path +
                  "': " + std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return fail("'" + path + "' is not a regular file");
    }
    stream->bytes_ = static_cast<size_t>(st.st_size);
    // llm.c's files start with a 256 x int32 header: magic 20240520,
    // version (1: uint16 tokens, 2: uint32), token count.
    int32_t header[256] = {0};
    if (stream->bytes_ >= sizeof header &&
        ::pread(fd, header, sizeof header, 0) ==
            static_cast<ssize_t>(sizeof header) &&
        header[0] == 20240520) {
      if (header[1] != 1 && header[1] != 2) {
        ::close(fd);
        return fail("'" + path + "' has llm.c's header with version " +
                    std::to_string(header[1]) +
                    "; versions 1 (uint16 tokens) and 2 (uint32) are known");
      }
      stream->width_ = header[1] == 1 ? 2 : 4;
      stream->offset_ = sizeof header;
      stream->format_ = "llm.c";
      if (header[2] < 0 ||
          stream->bytes_ !=
              sizeof header + static_cast<size_t>(header[2]) * stream->width_) {
        ::close(fd);
        return fail("'" + path + "' has llm.c's header for " +
                    std::to_string(header[2]) + " tokens but " +
                    std::to_string(stream->bytes_) +
                    " bytes; the file is truncated or corrupt");
      }
    } else if (stream->bytes_ % stream->width_ != 0) {
      ::close(fd);
      return fail("token file '" + path + "' has " +
                  std::to_string(stream->bytes_) +
                  " bytes, not a whole number of " + dtype +
                  " tokens; is --data-dtype right?");
    }
    stream->count_ = static_cast<int64_t>((stream->bytes_ - stream->offset_) /
                                          stream->width_);
    int64_t seq = tokens->shape[1];
    if (stream->count_ < seq + 1) {
      ::close(fd);
      return fail(
          "token file '" + path + "' has " + std::to_string(stream->count_) +
          " tokens; one window (the sequence of " + std::to_string(seq) +
          " and the next token) needs " + std::to_string(seq + 1));
    }
    void *p = mmap(nullptr, stream->bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED)
      return fail("cannot map token file '" + path +
                  "': " + std::strerror(errno));
    stream->map_ = static_cast<const uint8_t *>(p);
    stream->base_ = stream->map_ + stream->offset_;
    // uint32 ids read as uint16 show as every second token being 0.
    if (stream->width_ == 2 && stream->format_ == "flat" &&
        stream->count_ >= 64) {
      int64_t n = std::min<int64_t>(stream->count_ / 2 * 2, 8192);
      bool oddZero = true, evenSet = false;
      for (int64_t i = 0; i < n; i += 2) {
        evenSet |= stream->token(i) != 0;
        oddZero &= stream->token(i + 1) == 0;
      }
      if (oddZero && evenSet)
        return fail("token file '" + path +
                    "' read as uint16 has every second token 0: it holds "
                    "uint32 ids; pass --data-dtype=uint32");
    }
    stream->samplesPerBatch = tokens->shape[0];
    stream->tokensPerBatch = tokens->shape[0] * seq;
    out = std::move(stream);
    return Status::ok();
  }

  Status batch(int64_t index, std::vector<rt::HostTensor> &out) override {
    int64_t rows = tokens_.shape[0], seq = tokens_.shape[1];
    out.resize(2 + extra_.size());
    fill(out[0], tokens_);
    fill(out[1], labels_);
    // attention_mask: ones; token_type_ids: zeros; position_ids: 0..seq-1.
    for (size_t e = 0; e < extra_.size(); ++e) {
      rt::HostTensor &t = out[2 + e];
      fill(t, extra_[e]);
      const std::string &name = extra_[e].name;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < seq; ++i)
          put(t, r * seq + i,
              name.find("attention_mask") != std::string::npos ? 1
              : name.find("position_ids") != std::string::npos
                  ? static_cast<uint32_t>(i)
                  : 0);
    }
    int64_t windows = (count_ - 1) / seq;
    for (int64_t r = 0; r < rows; ++r) {
      uint64_t sample = static_cast<uint64_t>(index * rows + r);
      int64_t start =
          random_ ? static_cast<int64_t>(splitmix64(seed_, sample) %
                                         static_cast<uint64_t>(count_ - seq))
                  : static_cast<int64_t>(sample % windows) * seq;
      for (int64_t i = 0; i < seq; ++i) {
        put(out[0], r * seq + i, token(start + i));
        put(out[1], r * seq + i, token(start + i + 1));
      }
    }
    return Status::ok();
  }

  std::string origin(int64_t index, const std::string &) const override {
    return "token file '" + path_ + "' (micro-batch " + std::to_string(index) +
           "; is --data-dtype right?)";
  }

  std::string describe() const override {
    return path_ + " (" + (format_ == "llm.c" ? "llm.c file, " : "") +
           std::to_string(count_) + " " + (width_ == 2 ? "uint16" : "uint32") +
           " tokens, " + (random_ ? "random" : "sequential") + " windows of " +
           std::to_string(tokens_.shape[1]) + ")";
  }

private:
  static std::string inputList(const Plan &plan) {
    std::string s;
    for (const TensorInfo &info : plan.inputs())
      s += (s.empty() ? "" : ", ") + info.name + " " +
           colossal::tools::describe(info);
    return s;
  }
  static void fill(rt::HostTensor &t, const TensorInfo &info) {
    t.name = info.name;
    t.dtype = info.dtype;
    t.shape = info.shape;
    t.data.assign(info.bytes(), '\0');
  }
  static void put(rt::HostTensor &t, int64_t i, uint32_t v) {
    if (t.dtype == DType::I64) {
      int64_t x = v;
      std::memcpy(&t.data[i * 8], &x, 8);
    } else {
      int32_t x = static_cast<int32_t>(v);
      std::memcpy(&t.data[i * 4], &x, 4);
    }
  }
  uint32_t token(int64_t i) const {
    if (width_ == 2) {
      uint16_t v;
      std::memcpy(&v, base_ + i * 2, 2);
      return v;
    }
    uint32_t v;
    std::memcpy(&v, base_ + i * 4, 4);
    return v;
  }

  std::string path_;
  TensorInfo tokens_, labels_;
  std::vector<TensorInfo> extra_; // filled as an unpadded batch has them
  const uint8_t *map_ = nullptr;  // the whole file
  const uint8_t *base_ = nullptr; // its first token
  size_t bytes_ = 0, offset_ = 0;
  std::string format_ = "flat";
  int64_t count_ = 0;
  int width_ = 2;
  bool random_ = true;
  uint64_t seed_ = 0;
};

/// DIR/<batch>/<input>.npy, batches in name order, repeated as needed.
class NpyBatches : public BatchSource {
public:
  static Status open(const std::string &dir, const Plan &plan,
                     std::unique_ptr<BatchSource> &out) {
    auto source = std::make_unique<NpyBatches>();
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator(dir, ec))
      if (entry.is_directory())
        source->batches_.push_back(entry.path().string());
    if (ec)
      return fail("cannot list data directory '" + dir + "': " + ec.message());
    std::sort(source->batches_.begin(), source->batches_.end());
    std::string layout = "a data directory holds one subdirectory per batch, "
                         "each with <input>.npy for every plan input (";
    for (const TensorInfo &info : plan.inputs())
      layout += info.name + ".npy " + colossal::tools::describe(info) + ", ";
    layout.resize(layout.size() - 2);
    layout += ")";
    if (source->batches_.empty())
      return fail("data directory '" + dir + "' has no batch subdirectories; " +
                  layout);
    source->inputs_ = plan.inputs();
    source->layout_ = layout;
    source->labels_ = plan.proto().training().labels_input();
    source->loss_ = plan.proto().training().loss();
    const plan::Training &t = plan.proto().training();
    const TensorInfo *first =
        plan.inputs().empty() ? nullptr : &plan.inputs()[0];
    if (const TensorInfo *tok = findInfo(plan, t.tokens_input())) {
      source->tokensPerBatch = rt::numElements(tok->shape);
      first = tok;
    }
    source->samplesPerBatch =
        first && !first->shape.empty() ? first->shape[0] : 1;
    source->dir_ = dir;
    out = std::move(source);
    return Status::ok();
  }

  Status batch(int64_t index, std::vector<rt::HostTensor> &out) override {
    const std::string &dir = batches_[index % batches_.size()];
    out.clear();
    for (const TensorInfo &info : inputs_) {
      std::string path =
          (std::filesystem::path(dir) / (info.name + ".npy")).string();
      rt::HostTensor t;
      if (!std::filesystem::exists(path))
        return fail("batch '" + dir + "' has no '" + info.name + ".npy'; " +
                    layout_);
      if (Status s = rt::readNpy(path, t); !s)
        return s;
      if (t.shape == info.shape && t.dtype == DType::I32 &&
          info.dtype == DType::I64)
        widen(t);
      if (t.dtype != info.dtype || t.shape != info.shape)
        return fail("'" + path + "' is " + rt::dtypeName(t.dtype) +
                    rt::formatShape(t.shape) + " but the plan's input '" +
                    info.name + "' is " + colossal::tools::describe(info) +
                    (info.name == labels_ && loss_ == "cross-entropy"
                         ? " (labels: one integer class per prediction)"
                         : "") +
                    "; recompile with --bind to change shapes");
      t.name = info.name;
      out.push_back(std::move(t));
    }
    return Status::ok();
  }

  std::string origin(int64_t index, const std::string &input) const override {
    return "'" +
           (std::filesystem::path(batches_[index % batches_.size()]) /
            (input + ".npy"))
               .string() +
           "'";
  }

  std::string describe() const override {
    return dir_ + " (" + std::to_string(batches_.size()) +
           " .npy batches, in order)";
  }

private:
  /// int32 labels or ids (what many tools write) for an int64 input.
  static void widen(rt::HostTensor &t) {
    std::string wide(t.data.size() * 2, '\0');
    for (size_t i = 0; i < t.data.size() / 4; ++i) {
      int32_t v;
      std::memcpy(&v, &t.data[i * 4], 4);
      int64_t w = v;
      std::memcpy(&wide[i * 8], &w, 8);
    }
    t.data = std::move(wide);
    t.dtype = DType::I64;
  }

  std::string dir_, layout_, labels_, loss_;
  std::vector<std::string> batches_;
  std::vector<TensorInfo> inputs_;
};

} // namespace

Status openBatchSource(const std::string &path, const std::string &dtype,
                       const std::string &order, uint64_t seed,
                       const Plan &plan, std::unique_ptr<BatchSource> &out) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec)
             ? NpyBatches::open(path, plan, out)
             : TokenStream::open(path, dtype, order, seed, plan, out);
}

} // namespace colossal::tools
