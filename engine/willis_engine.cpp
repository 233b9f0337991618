// The Willis engine: libtorch behind the C ABI of willis_engine.h.
//
// Every entry point catches every exception and records its message in a
// thread-local slot; nothing thrown in C++ reaches Swift.
#include "willis_engine.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/native/DispatchStub.h>
#include <torch/cuda.h>
#include <torch/optim.h>
#include <torch/serialize.h>
#include <torch/torch.h>
#include <torch/version.h>

#ifdef WILLIS_WITH_C10D
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef WILLIS_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

struct wl_tensor_s {
  at::Tensor t;
};
struct wl_optimizer_s {
  std::unique_ptr<torch::optim::Optimizer> opt;
};
struct wl_process_group_s {
#ifdef WILLIS_WITH_C10D
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int world_size = 1;
  std::chrono::milliseconds timeout{0};
#endif
};

namespace {

thread_local std::string last_error_message;

void set_error(const char *message) { last_error_message = message ? message : "unknown error"; }

// WL_GUARD wraps a body that returns nothing; any exception becomes WL_ERROR.
#define WL_GUARD(body)                                                                   \
  try {                                                                                  \
    body;                                                                                \
    return WL_OK;                                                                        \
  } catch (const c10::Error &e) {                                                        \
    set_error(e.what_without_backtrace());                                               \
  } catch (const std::exception &e) {                                                    \
    set_error(e.what());                                                                 \
  } catch (...) {                                                                        \
    set_error("unknown C++ exception");                                                  \
  }                                                                                      \
  return WL_ERROR;

wl_tensor wrap(at::Tensor t) { return new wl_tensor_s{std::move(t)}; }

const at::Tensor &unwrap(wl_tensor t) {
  if (!t) throw std::invalid_argument("null tensor handle");
  return t->t;
}

c10::optional<at::Tensor> optional_tensor(wl_tensor t) {
  if (!t) return c10::nullopt;
  return t->t;
}

at::ScalarType scalar_type(int32_t dtype) {
  switch (dtype) {
  case WL_U8: return at::kByte;
  case WL_I64: return at::kLong;
  case WL_F32: return at::kFloat;
  case WL_F16: return at::kHalf;
  case WL_BF16: return at::kBFloat16;
  case WL_BOOL: return at::kBool;
  case WL_I32: return at::kInt;
  case WL_F64: return at::kDouble;
  case WL_I16: return at::kShort;
  case WL_I8: return at::kChar;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

int32_t dtype_code(at::ScalarType s) {
  switch (s) {
  case at::kByte: return WL_U8;
  case at::kLong: return WL_I64;
  case at::kFloat: return WL_F32;
  case at::kHalf: return WL_F16;
  case at::kBFloat16: return WL_BF16;
  case at::kBool: return WL_BOOL;
  case at::kInt: return WL_I32;
  case at::kDouble: return WL_F64;
  case at::kShort: return WL_I16;
  case at::kChar: return WL_I8;
  default: return -1;
  }
}

at::Device device(int32_t type, int32_t index) {
  switch (type) {
  case WL_CPU: return at::Device(at::kCPU);
  case WL_CUDA: return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("unknown device type " + std::to_string(type));
}

at::DeviceType device_type(int32_t type) { return device(type, 0).type(); }

at::IntArrayRef dims(const int64_t *p, int32_t n) {
  if (n < 0 || (n > 0 && !p)) throw std::invalid_argument("bad dimension list");
  return at::IntArrayRef(p, static_cast<size_t>(n));
}

at::IntArrayRef dims3(const int64_t *p) { return dims(p, 3); }

int64_t reduction(int32_t r) {
  switch (r) {
  case WL_REDUCE_NONE: return at::Reduction::None;
  case WL_REDUCE_MEAN: return at::Reduction::Mean;
  case WL_REDUCE_SUM: return at::Reduction::Sum;
  }
  throw std::invalid_argument("unknown reduction " + std::to_string(r));
}

std::vector<at::Tensor> tensor_list(const wl_tensor *ts, int32_t n) {
  if (n <= 0 || !ts) throw std::invalid_argument("empty tensor list");
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int32_t i = 0; i < n; ++i) v.push_back(unwrap(ts[i]));
  return v;
}

at::Tensor apply_unary(int32_t op, const at::Tensor &x) {
  switch (op) {
  case WL_NEG: return x.neg();
  case WL_EXP: return x.exp();
  case WL_LOG: return x.log();
  case WL_SQRT: return x.sqrt();
  case WL_RSQRT: return x.rsqrt();
  case WL_ABS: return x.abs();
  case WL_RELU: return x.relu();
  case WL_SIGMOID: return x.sigmoid();
  case WL_TANH: return x.tanh();
  case WL_GELU: return at::gelu(x);
  case WL_SIGN: return x.sign();
  case WL_SQUARE: return x.square();
  case WL_FLOOR: return x.floor();
  case WL_ROUND: return x.round();
  case WL_LOGSIGMOID: return at::log_sigmoid(x);
  case WL_GELU_TANH: return at::gelu(x, "tanh");
  }
  throw std::invalid_argument("unknown unary op " + std::to_string(op));
}

void apply_unary_(int32_t op, at::Tensor &x) {
  switch (op) {
  case WL_RELU: x.relu_(); return;
  case WL_SIGMOID: x.sigmoid_(); return;
  case WL_NEG: x.neg_(); return;
  case WL_EXP: x.exp_(); return;
  case WL_SQRT: x.sqrt_(); return;
  case WL_ABS: x.abs_(); return;
  case WL_TANH: x.tanh_(); return;
  }
  throw std::invalid_argument("unary op " + std::to_string(op) + " has no in-place form");
}

at::Tensor apply_binary(int32_t op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
  case WL_ADD: return a.add(b);
  case WL_SUB: return a.sub(b);
  case WL_MUL: return a.mul(b);
  case WL_DIV: return a.div(b);
  case WL_POW: return a.pow(b);
  case WL_MAXIMUM: return at::maximum(a, b);
  case WL_MINIMUM: return at::minimum(a, b);
  case WL_EQ: return a.eq(b);
  case WL_NE: return a.ne(b);
  case WL_LT: return a.lt(b);
  case WL_LE: return a.le(b);
  case WL_GT: return a.gt(b);
  case WL_GE: return a.ge(b);
  }
  throw std::invalid_argument("unknown binary op " + std::to_string(op));
}

at::Tensor apply_binary_scalar(int32_t op, const at::Tensor &a, double s) {
  switch (op) {
  case WL_ADD: return a.add(s);
  case WL_SUB: return a.sub(s);
  case WL_MUL: return a.mul(s);
  case WL_DIV: return a.div(s);
  case WL_POW: return a.pow(s);
  case WL_MAXIMUM: return a.clamp_min(s);
  case WL_MINIMUM: return a.clamp_max(s);
  case WL_EQ: return a.eq(s);
  case WL_NE: return a.ne(s);
  case WL_LT: return a.lt(s);
  case WL_LE: return a.le(s);
  case WL_GT: return a.gt(s);
  case WL_GE: return a.ge(s);
  }
  throw std::invalid_argument("unknown binary op " + std::to_string(op));
}

at::Tensor apply_reduce(int32_t op, const at::Tensor &x, at::IntArrayRef d, bool keep) {
  bool all = d.empty();
  switch (op) {
  case WL_SUM: return all ? (keep ? x.sum(at::IntArrayRef{}, true) : x.sum()) : x.sum(d, keep);
  case WL_MEAN: return all ? (keep ? x.mean(at::IntArrayRef{}, true) : x.mean()) : x.mean(d, keep);
  case WL_AMAX: return x.amax(d, keep);
  case WL_AMIN: return x.amin(d, keep);
  case WL_ARGMAX:
  case WL_ARGMIN: {
    if (d.size() > 1) throw std::invalid_argument("argmax/argmin take at most one dimension");
    c10::optional<int64_t> dim = all ? c10::nullopt : c10::optional<int64_t>(d[0]);
    return op == WL_ARGMAX ? x.argmax(dim, keep) : x.argmin(dim, keep);
  }
  case WL_STD: return all ? x.std() : x.std(d, /*unbiased=*/true, keep);
  case WL_VAR: return all ? x.var() : x.var(d, /*unbiased=*/true, keep);
  }
  throw std::invalid_argument("unknown reduction op " + std::to_string(op));
}

// Autocast nesting, per thread, mirroring torch.autocast's context manager.
thread_local int autocast_depth[2] = {0, 0};

// ---------------------------------------------------------------------------
// Entry points.

const char *e_last_error() { return last_error_message.c_str(); }
const char *e_torch_version() { return TORCH_VERSION; }

uint32_t e_capabilities() {
  uint32_t caps = 0;
  try {
    if (torch::cuda::is_available()) caps |= WL_CAP_CUDA;
#ifdef WILLIS_WITH_C10D
    caps |= WL_CAP_DISTRIBUTED;
#endif
  } catch (...) {
  }
  return caps;
}

char *dup_string(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

wl_status e_build_info(char **out) {
  WL_GUARD({
    std::ostringstream os;
    os << "cpu_capability: " << at::get_cpu_capability() << "\n";
    os << at::get_parallel_info();
    os << at::show_config();
    *out = dup_string(os.str());
  })
}

void e_string_free(char *s) { std::free(s); }
void e_buffer_free(void *p) { std::free(p); }

wl_status e_set_num_threads(int32_t n) {
  WL_GUARD({
    if (n < 1) throw std::invalid_argument("thread count must be >= 1");
    at::set_num_threads(n);
  })
}
int32_t e_get_num_threads() { return at::get_num_threads(); }

wl_status e_manual_seed(uint64_t seed) { WL_GUARD(torch::manual_seed(seed)) }

int32_t e_set_grad_enabled(int32_t on) {
  bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(on != 0);
  return previous ? 1 : 0;
}

int32_t e_cuda_device_count() {
  try {
    return static_cast<int32_t>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

wl_status e_cuda_synchronize(int32_t index) { WL_GUARD(torch::cuda::synchronize(index)) }

wl_status e_set_cudnn_benchmark(int32_t on) {
  WL_GUARD(at::globalContext().setBenchmarkCuDNN(on != 0))
}

wl_status e_set_allow_tf32(int32_t on) {
  WL_GUARD({
    at::globalContext().setAllowTF32CuBLAS(on != 0);
    at::globalContext().setAllowTF32CuDNN(on != 0);
  })
}

wl_status e_autocast_enter(int32_t dt, int32_t dtype) {
  WL_GUARD({
    if (dt != WL_CPU && dt != WL_CUDA) throw std::invalid_argument("unknown device type");
    if (dtype != WL_F16 && dtype != WL_BF16)
      throw std::invalid_argument("autocast dtype must be f16 or bf16");
    at::autocast::set_autocast_dtype(device_type(dt), scalar_type(dtype));
    at::autocast::set_autocast_enabled(device_type(dt), true);
    at::autocast::increment_nesting();
    autocast_depth[dt] += 1;
  })
}

wl_status e_autocast_exit(int32_t dt) {
  WL_GUARD({
    if (dt != WL_CPU && dt != WL_CUDA) throw std::invalid_argument("unknown device type");
    if (autocast_depth[dt] == 0) throw std::logic_error("autocast_exit without autocast_enter");
    autocast_depth[dt] -= 1;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (autocast_depth[dt] == 0) at::autocast::set_autocast_enabled(device_type(dt), false);
  })
}

void e_tensor_free(wl_tensor t) { delete t; }

wl_status e_tensor_from_data(const void *data, const int64_t *shape, int32_t ndim,
                             int32_t dtype, int32_t copy, wl_deleter deleter, void *context,
                             wl_tensor *out) {
  WL_GUARD({
    auto sizes = dims(shape, ndim);
    for (auto s : sizes)
      if (s < 0) throw std::invalid_argument("negative size in shape");
    auto options = at::TensorOptions().dtype(scalar_type(dtype));
    at::Tensor t;
    if (copy) {
      t = at::empty(sizes, options);
      if (t.numel() > 0) {
        if (!data) throw std::invalid_argument("null data pointer");
        std::memcpy(t.data_ptr(), data, t.nbytes());
      }
    } else {
      if (!data) throw std::invalid_argument("null data pointer");
      if (deleter) {
        t = at::from_blob(const_cast<void *>(data), sizes,
                          [deleter, context](void *) { deleter(context); }, options);
      } else {
        t = at::from_blob(const_cast<void *>(data), sizes, options);
      }
    }
    *out = wrap(std::move(t));
  })
}

wl_status e_tensor_full(const int64_t *shape, int32_t ndim, int32_t dtype, int32_t dev,
                        int32_t index, double value, wl_tensor *out) {
  WL_GUARD({
    auto options = at::TensorOptions().dtype(scalar_type(dtype)).device(device(dev, index));
    *out = wrap(at::full(dims(shape, ndim), value, options));
  })
}

wl_status e_tensor_random(int32_t kind, const int64_t *shape, int32_t ndim, int32_t dtype,
                          int32_t dev, int32_t index, wl_tensor *out) {
  WL_GUARD({
    auto options = at::TensorOptions().dtype(scalar_type(dtype)).device(device(dev, index));
    switch (kind) {
    case WL_UNIFORM: *out = wrap(at::rand(dims(shape, ndim), options)); break;
    case WL_NORMAL: *out = wrap(at::randn(dims(shape, ndim), options)); break;
    default: throw std::invalid_argument("unknown random kind");
    }
  })
}

wl_status e_tensor_arange(int64_t n, int32_t dtype, int32_t dev, int32_t index, wl_tensor *out) {
  WL_GUARD({
    auto options = at::TensorOptions().dtype(scalar_type(dtype)).device(device(dev, index));
    *out = wrap(at::arange(n, options));
  })
}

int32_t e_tensor_ndim(wl_tensor t) { return t ? static_cast<int32_t>(t->t.dim()) : -1; }

wl_status e_tensor_shape(wl_tensor t, int64_t *sizes, int32_t capacity) {
  WL_GUARD({
    auto s = unwrap(t).sizes();
    for (int32_t i = 0; i < capacity && i < static_cast<int32_t>(s.size()); ++i) sizes[i] = s[i];
  })
}

int32_t e_tensor_dtype(wl_tensor t) { return t ? dtype_code(t->t.scalar_type()) : -1; }

wl_status e_tensor_device(wl_tensor t, int32_t *type, int32_t *index) {
  WL_GUARD({
    auto d = unwrap(t).device();
    if (d.is_cpu()) {
      *type = WL_CPU;
      *index = 0;
    } else if (d.is_cuda()) {
      *type = WL_CUDA;
      *index = d.index();
    } else {
      throw std::runtime_error("tensor is on an unsupported device: " + d.str());
    }
  })
}

int32_t e_tensor_is_contiguous(wl_tensor t) { return t && t->t.is_contiguous() ? 1 : 0; }

wl_status e_tensor_data_ptr(wl_tensor t, void **out) {
  WL_GUARD({
    const auto &x = unwrap(t);
    if (!x.device().is_cpu()) throw std::invalid_argument("data access needs a CPU tensor");
    *out = x.data_ptr();
  })
}

wl_status e_tensor_item(wl_tensor t, double *out) {
  WL_GUARD(*out = unwrap(t).item<double>())
}

wl_status e_tensor_to(wl_tensor t, int32_t dtype, int32_t dev, int32_t index, wl_tensor *out) {
  WL_GUARD(*out = wrap(unwrap(t).to(device(dev, index), scalar_type(dtype))))
}

wl_status e_tensor_contiguous(wl_tensor t, wl_tensor *out) {
  WL_GUARD(*out = wrap(unwrap(t).contiguous()))
}
wl_status e_tensor_to_memory_format(wl_tensor t, int32_t format, wl_tensor *out) {
  WL_GUARD({
    const at::MemoryFormat f = format == WL_CHANNELS_LAST      ? at::MemoryFormat::ChannelsLast
                               : format == WL_CHANNELS_LAST_3D ? at::MemoryFormat::ChannelsLast3d
                                                               : at::MemoryFormat::Contiguous;
    *out = wrap(unwrap(t).contiguous(f));
  })
}
wl_status e_tensor_set_data(wl_tensor t, wl_tensor src) {
  WL_GUARD(unwrap(t).set_data(unwrap(src)))
}
// ---- distributed ----

#ifdef WILLIS_WITH_C10D
void pg_wait(const c10::intrusive_ptr<c10d::Work> &work, std::chrono::milliseconds timeout) {
  // Work::wait throws on a peer's failure or when the timeout passes: never an endless wait.
  if (!work->wait(timeout)) throw std::runtime_error("collective did not finish in time");
}
std::vector<at::Tensor> pg_tensors(const wl_tensor *ts, int32_t n) {
  std::vector<at::Tensor> v;
  for (int32_t i = 0; i < n; ++i) v.push_back(unwrap(ts[i]));
  return v;
}
#endif
constexpr const char *no_c10d = "this engine was built without torch.distributed (c10d): rebuild it with "
                                "scripts/build-engine on a machine with libgloo-dev";

wl_status e_pg_create(const char *backend_name, const char *master_addr, int32_t master_port, int32_t rank,
                      int32_t world_size, int64_t timeout_ms, wl_process_group *out) {
  WL_GUARD({
#ifdef WILLIS_WITH_C10D
    if (world_size < 1 || rank < 0 || rank >= world_size)
      throw std::invalid_argument("rank " + std::to_string(rank) + " is not in a world of " + std::to_string(world_size));
    if (master_port <= 0 || master_port > 65535) throw std::invalid_argument("master port " + std::to_string(master_port) + " is out of range");
    const std::string backend = backend_name ? backend_name : "gloo";
    const std::string host = master_addr ? master_addr : "127.0.0.1";
    const auto timeout = std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 600000);
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(master_port);
    options.isServer = rank == 0;
    options.numWorkers = world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(host, options);
    auto store = c10::make_intrusive<c10d::PrefixStore>("willis/" + backend, tcp);
    auto group = std::make_unique<wl_process_group_s>();
    group->store = store;
    group->world_size = world_size;
    group->timeout = timeout;
    if (backend == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create();
      opts->timeout = timeout;
      // As torch.distributed: GLOO_SOCKET_IFNAME names the interface; a loopback master means one machine.
      if (const char *ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (host == "127.0.0.1" || host == "localhost" || host == "::1") {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, opts);
    } else if (backend == "nccl") {
#ifdef WILLIS_WITH_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      group->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, opts);
#else
      throw std::runtime_error("this engine was built without NCCL (it needs a CUDA libtorch with nccl.h)");
#endif
    } else {
      throw std::invalid_argument("unknown backend '" + backend + "' (gloo or nccl)");
    }
    *out = group.release();
#else
    (void)backend_name; (void)master_addr; (void)master_port; (void)rank; (void)world_size; (void)timeout_ms; (void)out;
    throw std::runtime_error(no_c10d);
#endif
  })
}

void e_pg_free(wl_process_group g) { delete g; }

wl_status e_pg_all_reduce(wl_process_group g, const wl_tensor *ts, int32_t n, int32_t op) {
  WL_GUARD({
#ifdef WILLIS_WITH_C10D
    if (!g) throw std::invalid_argument("null process group");
    auto tensors = pg_tensors(ts, n);
    if (tensors.empty()) return WL_OK;
    c10d::ReduceOp reduce = op == WL_AMAX ? c10d::ReduceOp::MAX : op == WL_AMIN ? c10d::ReduceOp::MIN : c10d::ReduceOp::SUM;
    if (op != WL_SUM && op != WL_MEAN && op != WL_AMAX && op != WL_AMIN) throw std::invalid_argument("all-reduce op must be sum, mean, max or min");
    at::NoGradGuard guard;
    if (tensors.size() == 1) {
      c10d::AllreduceOptions o;
      o.reduceOp = reduce;
      o.timeout = g->timeout;
      pg_wait(g->backend->allreduce(tensors, o), g->timeout);
    } else {
      c10d::AllreduceCoalescedOptions o;
      o.reduceOp = reduce;
      o.timeout = g->timeout;
      pg_wait(g->backend->allreduce_coalesced(tensors, o), g->timeout);
    }
    if (op == WL_MEAN) for (auto &t : tensors) t.div_(g->world_size);
#else
    (void)g; (void)ts; (void)n; (void)op;
    throw std::runtime_error(no_c10d);
#endif
  })
}

wl_status e_pg_broadcast(wl_process_group g, const wl_tensor *ts, int32_t n, int32_t root) {
  WL_GUARD({
#ifdef WILLIS_WITH_C10D
    if (!g) throw std::invalid_argument("null process group");
    auto tensors = pg_tensors(ts, n);
    at::NoGradGuard guard;
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = g->timeout;
    // One tensor per call: Gloo broadcasts a list only as one tensor per device.
    for (auto &t : tensors) {
      std::vector<at::Tensor> one{t};
      pg_wait(g->backend->broadcast(one, o), g->timeout);
    }
#else
    (void)g; (void)ts; (void)n; (void)root;
    throw std::runtime_error(no_c10d);
#endif
  })
}

wl_status e_pg_barrier(wl_process_group g) {
  WL_GUARD({
#ifdef WILLIS_WITH_C10D
    if (!g) throw std::invalid_argument("null process group");
    c10d::BarrierOptions o;
    o.timeout = g->timeout;
    pg_wait(g->backend->barrier(o), g->timeout);
#else
    (void)g;
    throw std::runtime_error(no_c10d);
#endif
  })
}

wl_status e_tensor_clone(wl_tensor t, wl_tensor *out) { WL_GUARD(*out = wrap(unwrap(t).clone())) }
wl_status e_tensor_detach(wl_tensor t, wl_tensor *out) { WL_GUARD(*out = wrap(unwrap(t).detach())) }

wl_status e_tensor_copy_(wl_tensor dst, wl_tensor src) {
  WL_GUARD({
    at::NoGradGuard guard;
    unwrap(dst);
    dst->t.copy_(unwrap(src));
  })
}

wl_status e_tensor_fill_(wl_tensor t, double value) {
  WL_GUARD({
    at::NoGradGuard guard;
    unwrap(t);
    t->t.fill_(value);
  })
}

wl_status e_set_requires_grad(wl_tensor t, int32_t on) {
  WL_GUARD({
    unwrap(t);
    t->t.set_requires_grad(on != 0);
  })
}
int32_t e_requires_grad(wl_tensor t) { return t && t->t.requires_grad() ? 1 : 0; }

wl_status e_grad(wl_tensor t, wl_tensor *out) {
  WL_GUARD({
    const auto &g = unwrap(t).grad();
    *out = g.defined() ? wrap(g) : nullptr;
  })
}

wl_status e_zero_grad(wl_tensor t) {
  WL_GUARD({
    unwrap(t);
    t->t.mutable_grad().reset();
  })
}

wl_status e_backward(wl_tensor t, wl_tensor gradient) {
  WL_GUARD({
    if (gradient)
      unwrap(t).backward(unwrap(gradient));
    else
      unwrap(t).backward();
  })
}

wl_status e_reshape(wl_tensor t, const int64_t *shape, int32_t n, wl_tensor *out) {
  WL_GUARD(*out = wrap(unwrap(t).reshape(dims(shape, n))))
}
wl_status e_permute(wl_tensor t, const int64_t *d, int32_t n, wl_tensor *out) {
  WL_GUARD(*out = wrap(unwrap(t).permute(dims(d, n))))
}
wl_status e_narrow(wl_tensor t, int64_t dim, int64_t start, int64_t length, wl_tensor *out) {
  WL_GUARD(*out = wrap(unwrap(t).narrow(dim, start, length)))
}
wl_status e_index_select(wl_tensor t, int64_t dim, wl_tensor index, wl_tensor *out) {
  WL_GUARD(*out = wrap(unwrap(t).index_select(dim, unwrap(index))))
}
wl_status e_flip(wl_tensor t, const int64_t *d, int32_t n, wl_tensor *out) {
  WL_GUARD(*out = wrap(unwrap(t).flip(dims(d, n))))
}
wl_status e_cat(const wl_tensor *ts, int32_t n, int64_t dim, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::cat(tensor_list(ts, n), dim)))
}
wl_status e_stack(const wl_tensor *ts, int32_t n, int64_t dim, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::stack(tensor_list(ts, n), dim)))
}
wl_status e_expand(wl_tensor t, const int64_t *shape, int32_t n, wl_tensor *out) {
  WL_GUARD(*out = wrap(unwrap(t).expand(dims(shape, n))))
}

wl_status e_unary(int32_t op, wl_tensor t, wl_tensor *out) {
  WL_GUARD(*out = wrap(apply_unary(op, unwrap(t))))
}
wl_status e_unary_(int32_t op, wl_tensor t) {
  WL_GUARD({
    unwrap(t);
    apply_unary_(op, t->t);
  })
}
wl_status e_binary(int32_t op, wl_tensor a, wl_tensor b, wl_tensor *out) {
  WL_GUARD(*out = wrap(apply_binary(op, unwrap(a), unwrap(b))))
}
wl_status e_binary_scalar(int32_t op, wl_tensor a, double s, wl_tensor *out) {
  WL_GUARD(*out = wrap(apply_binary_scalar(op, unwrap(a), s)))
}
wl_status e_binary_scalar_(int32_t op, wl_tensor a, double s) {
  WL_GUARD({
    at::NoGradGuard guard;
    unwrap(a);
    // An integer tensor (a step counter) takes an integer scalar, as `t += 1` does in Python.
    bool integral = at::isIntegralType(a->t.scalar_type(), /*includeBool=*/false);
    at::Scalar value = integral && s == static_cast<double>(static_cast<int64_t>(s))
                           ? at::Scalar(static_cast<int64_t>(s))
                           : at::Scalar(s);
    switch (op) {
    case WL_ADD: a->t.add_(value); break;
    case WL_SUB: a->t.sub_(value); break;
    case WL_MUL: a->t.mul_(value); break;
    case WL_DIV: a->t.div_(value); break;
    default: throw std::invalid_argument("binary op " + std::to_string(op) + " has no in-place scalar form");
    }
  })
}

wl_status e_clamp(wl_tensor t, double lo, double hi, int32_t has_lo, int32_t has_hi,
                  wl_tensor *out) {
  WL_GUARD({
    c10::optional<at::Scalar> l = has_lo ? c10::optional<at::Scalar>(lo) : c10::nullopt;
    c10::optional<at::Scalar> h = has_hi ? c10::optional<at::Scalar>(hi) : c10::nullopt;
    *out = wrap(unwrap(t).clamp(l, h));
  })
}
wl_status e_leaky_relu(wl_tensor t, double slope, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::leaky_relu(unwrap(t), slope)))
}
wl_status e_where(wl_tensor c, wl_tensor a, wl_tensor b, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::where(unwrap(c), unwrap(a), unwrap(b))))
}

wl_status e_reduce(int32_t op, wl_tensor t, const int64_t *d, int32_t n, int32_t keep,
                   wl_tensor *out) {
  WL_GUARD(*out = wrap(apply_reduce(op, unwrap(t), dims(d, n), keep != 0)))
}

wl_status e_matmul(wl_tensor a, wl_tensor b, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::matmul(unwrap(a), unwrap(b))))
}
wl_status e_linear(wl_tensor x, wl_tensor w, wl_tensor b, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::linear(unwrap(x), unwrap(w), optional_tensor(b))))
}

void expect_5d(const at::Tensor &x, const char *op) {
  if (x.dim() != 5)
    throw std::invalid_argument(std::string(op) + " expects a 5-D [N, C, D, H, W] input, got " +
                                std::to_string(x.dim()) + "-D");
}

wl_status e_conv3d(wl_tensor x, wl_tensor w, wl_tensor b, const int64_t *stride,
                   const int64_t *padding, const int64_t *dilation, int64_t groups,
                   wl_tensor *out) {
  WL_GUARD({
    expect_5d(unwrap(x), "conv3d");
    *out = wrap(at::conv3d(unwrap(x), unwrap(w), optional_tensor(b), dims3(stride),
                           dims3(padding), dims3(dilation), groups));
  })
}

wl_status e_conv_transpose3d(wl_tensor x, wl_tensor w, wl_tensor b, const int64_t *stride,
                             const int64_t *padding, const int64_t *output_padding,
                             int64_t groups, const int64_t *dilation, wl_tensor *out) {
  WL_GUARD({
    expect_5d(unwrap(x), "conv_transpose3d");
    *out = wrap(at::conv_transpose3d(unwrap(x), unwrap(w), optional_tensor(b), dims3(stride),
                                     dims3(padding), dims3(output_padding), groups,
                                     dims3(dilation)));
  })
}

wl_status e_batch_norm(wl_tensor x, wl_tensor w, wl_tensor b, wl_tensor rm, wl_tensor rv,
                       int32_t training, double momentum, double eps, wl_tensor *out) {
  WL_GUARD({
    const auto &input = unwrap(x);
    if (input.dim() < 2) throw std::invalid_argument("batch_norm expects [N, C, ...] input");
    if (training && input.numel() / input.size(1) <= 1)
      throw std::invalid_argument(
          "batch_norm in training mode needs more than one value per channel");
    *out = wrap(at::batch_norm(input, optional_tensor(w), optional_tensor(b),
                               optional_tensor(rm), optional_tensor(rv), training != 0,
                               momentum, eps, /*cudnn_enabled=*/true));
  })
}

wl_status e_instance_norm(wl_tensor x, wl_tensor w, wl_tensor b, wl_tensor rm, wl_tensor rv,
                          int32_t use_input_stats, double momentum, double eps,
                          wl_tensor *out) {
  WL_GUARD({
    *out = wrap(at::instance_norm(unwrap(x), optional_tensor(w), optional_tensor(b),
                                  optional_tensor(rm), optional_tensor(rv), use_input_stats != 0,
                                  momentum, eps, /*cudnn_enabled=*/true));
  })
}

wl_status e_max_pool3d(wl_tensor x, const int64_t *k, const int64_t *s, const int64_t *p,
                       int32_t ceil_mode, wl_tensor *out) {
  WL_GUARD({
    expect_5d(unwrap(x), "max_pool3d");
    *out = wrap(at::max_pool3d(unwrap(x), dims3(k), dims3(s), dims3(p), {1, 1, 1},
                               ceil_mode != 0));
  })
}

wl_status e_avg_pool3d(wl_tensor x, const int64_t *k, const int64_t *s, const int64_t *p,
                       wl_tensor *out) {
  WL_GUARD({
    expect_5d(unwrap(x), "avg_pool3d");
    *out = wrap(at::avg_pool3d(unwrap(x), dims3(k), dims3(s), dims3(p)));
  })
}

wl_status e_adaptive_avg_pool3d(wl_tensor x, const int64_t *size, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::adaptive_avg_pool3d(unwrap(x), dims3(size))))
}

wl_status e_adaptive_max_pool3d(wl_tensor x, const int64_t *size, wl_tensor *out) {
  WL_GUARD(*out = wrap(std::get<0>(at::adaptive_max_pool3d(unwrap(x), dims3(size)))))
}

wl_status e_interpolate(wl_tensor x, const int64_t *size, int32_t nsize, int32_t mode,
                        int32_t align_corners, wl_tensor *out) {
  WL_GUARD({
    const auto &input = unwrap(x);
    if (nsize != input.dim() - 2)
      throw std::invalid_argument("interpolate: size needs " + std::to_string(input.dim() - 2) +
                                  " entries, got " + std::to_string(nsize));
    auto sz = dims(size, nsize);
    if (mode == WL_NEAREST) {
      if (nsize != 3) throw std::invalid_argument("nearest interpolation expects a 5-D input");
      *out = wrap(at::upsample_nearest3d(input, sz));
    } else if (mode == WL_TRILINEAR) {
      if (nsize != 3) throw std::invalid_argument("trilinear interpolation expects a 5-D input");
      *out = wrap(at::upsample_trilinear3d(input, sz, align_corners != 0));
    } else {
      throw std::invalid_argument("unknown interpolation mode");
    }
  })
}

wl_status e_dropout(wl_tensor x, double p, int32_t training, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::dropout(unwrap(x), p, training != 0)))
}

wl_status e_bce_with_logits(wl_tensor logits, wl_tensor target, wl_tensor weight,
                            wl_tensor pos_weight, int32_t red, wl_tensor *out) {
  WL_GUARD({
    const auto &x = unwrap(logits);
    const auto &y = unwrap(target);
    if (x.sizes() != y.sizes())
      throw std::invalid_argument("bce_with_logits: target size " + c10::str(y.sizes()) +
                                  " differs from input size " + c10::str(x.sizes()));
    *out = wrap(at::binary_cross_entropy_with_logits(x, y, optional_tensor(weight),
                                                     optional_tensor(pos_weight), reduction(red)));
  })
}

wl_status e_bce(wl_tensor probs, wl_tensor target, wl_tensor weight, int32_t red, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::binary_cross_entropy(unwrap(probs), unwrap(target),
                                                optional_tensor(weight), reduction(red))))
}

wl_status e_mse(wl_tensor a, wl_tensor b, int32_t red, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::mse_loss(unwrap(a), unwrap(b), reduction(red))))
}

wl_status e_cross_entropy(wl_tensor logits, wl_tensor target, wl_tensor weight,
                          int64_t ignore_index, int32_t red, wl_tensor *out) {
  WL_GUARD(*out = wrap(at::cross_entropy_loss(unwrap(logits), unwrap(target),
                                              optional_tensor(weight), reduction(red),
                                              ignore_index)))
}

wl_status e_optimizer_create(int32_t kind, const wl_tensor *params, int32_t n,
                             const wl_optimizer_options *o, wl_optimizer *out) {
  WL_GUARD({
    if (!o) throw std::invalid_argument("null optimizer options");
    std::vector<at::Tensor> ps = tensor_list(params, n);
    std::unique_ptr<torch::optim::Optimizer> opt;
    switch (kind) {
    case WL_ADAM:
      opt = std::make_unique<torch::optim::Adam>(
          ps, torch::optim::AdamOptions(o->lr)
                  .betas({o->beta1, o->beta2})
                  .eps(o->eps)
                  .weight_decay(o->weight_decay)
                  .amsgrad(o->amsgrad != 0));
      break;
    case WL_ADAMW:
      opt = std::make_unique<torch::optim::AdamW>(
          ps, torch::optim::AdamWOptions(o->lr)
                  .betas({o->beta1, o->beta2})
                  .eps(o->eps)
                  .weight_decay(o->weight_decay)
                  .amsgrad(o->amsgrad != 0));
      break;
    case WL_SGD:
      opt = std::make_unique<torch::optim::SGD>(
          ps, torch::optim::SGDOptions(o->lr)
                  .momentum(o->momentum)
                  .dampening(o->dampening)
                  .weight_decay(o->weight_decay)
                  .nesterov(o->nesterov != 0));
      break;
    default: throw std::invalid_argument("unknown optimizer kind " + std::to_string(kind));
    }
    *out = new wl_optimizer_s{std::move(opt)};
  })
}

void e_optimizer_free(wl_optimizer o) { delete o; }

wl_optimizer_s &unwrap_opt(wl_optimizer o) {
  if (!o || !o->opt) throw std::invalid_argument("null optimizer handle");
  return *o;
}

wl_status e_optimizer_step(wl_optimizer o) { WL_GUARD(unwrap_opt(o).opt->step()) }

wl_status e_optimizer_zero_grad(wl_optimizer o, int32_t set_to_none) {
  WL_GUARD(unwrap_opt(o).opt->zero_grad(set_to_none != 0))
}

wl_status e_optimizer_set_lr(wl_optimizer o, double lr) {
  WL_GUARD({
    for (auto &group : unwrap_opt(o).opt->param_groups()) group.options().set_lr(lr);
  })
}

wl_status e_optimizer_get_lr(wl_optimizer o, double *lr) {
  WL_GUARD({
    auto &groups = unwrap_opt(o).opt->param_groups();
    if (groups.empty()) throw std::logic_error("optimizer has no parameter groups");
    *lr = groups.front().options().get_lr();
  })
}

wl_status e_optimizer_state_save(wl_optimizer o, void **bytes, int64_t *length) {
  WL_GUARD({
    torch::serialize::OutputArchive archive;
    unwrap_opt(o).opt->save(archive);
    std::ostringstream os;
    archive.save_to(os);
    std::string s = os.str();
    void *p = std::malloc(s.size() ? s.size() : 1);
    if (!p) throw std::bad_alloc();
    std::memcpy(p, s.data(), s.size());
    *bytes = p;
    *length = static_cast<int64_t>(s.size());
  })
}

wl_status e_optimizer_state_load(wl_optimizer o, const void *bytes, int64_t length) {
  WL_GUARD({
    if (!bytes || length <= 0) throw std::invalid_argument("empty optimizer state");
    std::istringstream is(std::string(static_cast<const char *>(bytes), length));
    torch::serialize::InputArchive archive;
    archive.load_from(is);
    unwrap_opt(o).opt->load(archive);
  })
}

const wl_api api_table = {
    WL_ABI_VERSION,
    sizeof(wl_api),
    e_last_error,
    e_torch_version,
    e_capabilities,
    e_build_info,
    e_string_free,
    e_buffer_free,
    e_set_num_threads,
    e_get_num_threads,
    e_manual_seed,
    e_set_grad_enabled,
    e_cuda_device_count,
    e_cuda_synchronize,
    e_set_cudnn_benchmark,
    e_set_allow_tf32,
    e_autocast_enter,
    e_autocast_exit,
    e_tensor_free,
    e_tensor_from_data,
    e_tensor_full,
    e_tensor_random,
    e_tensor_arange,
    e_tensor_ndim,
    e_tensor_shape,
    e_tensor_dtype,
    e_tensor_device,
    e_tensor_is_contiguous,
    e_tensor_data_ptr,
    e_tensor_item,
    e_tensor_to,
    e_tensor_contiguous,
    e_tensor_clone,
    e_tensor_detach,
    e_tensor_copy_,
    e_tensor_fill_,
    e_set_requires_grad,
    e_requires_grad,
    e_grad,
    e_zero_grad,
    e_backward,
    e_reshape,
    e_permute,
    e_narrow,
    e_index_select,
    e_flip,
    e_cat,
    e_stack,
    e_expand,
    e_unary,
    e_unary_,
    e_binary,
    e_binary_scalar,
    e_binary_scalar_,
    e_clamp,
    e_leaky_relu,
    e_where,
    e_reduce,
    e_matmul,
    e_linear,
    e_conv3d,
    e_conv_transpose3d,
    e_batch_norm,
    e_instance_norm,
    e_max_pool3d,
    e_avg_pool3d,
    e_adaptive_avg_pool3d,
    e_adaptive_max_pool3d,
    e_interpolate,
    e_dropout,
    e_bce_with_logits,
    e_bce,
    e_mse,
    e_cross_entropy,
    e_optimizer_create,
    e_optimizer_free,
    e_optimizer_step,
    e_optimizer_zero_grad,
    e_optimizer_set_lr,
    e_optimizer_get_lr,
    e_optimizer_state_save,
    e_optimizer_state_load,
    e_tensor_to_memory_format,
    e_tensor_set_data,
    e_pg_create,
    e_pg_free,
    e_pg_all_reduce,
    e_pg_broadcast,
    e_pg_barrier,
};

} // namespace

extern "C" __attribute__((visibility("default"))) const wl_api *
willis_engine_api(uint32_t abi_version) {
  return abi_version == WL_ABI_VERSION ? &api_table : nullptr;
}
