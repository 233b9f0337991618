/*
 * willis_engine.h — the one C ABI between Willis (Swift) and libtorch (C++).
 *
 * The engine library (engine/willis_engine.cpp, built by scripts/build-engine)
 * exports exactly one symbol, `willis_engine_api`, which returns a table of
 * function pointers. Swift loads the library at run time (dlopen), so one
 * `willis` binary runs against any libtorch the engine was built for (CPU or
 * CUDA, any version >= 2.4).
 *
 * Rules every entry point follows:
 *  - It returns WL_OK (0) or WL_ERROR. On WL_ERROR the message is in the
 *    calling thread's last-error slot (`last_error`), valid until the next
 *    engine call on that thread. C++ exceptions never cross this boundary.
 *  - Handles are opaque. Each kind has exactly one `*_free`.
 *  - Output handles are written only on success.
 *
 * Versioning: WL_ABI_VERSION changes when an existing entry changes meaning.
 * New entries are only ever appended to `wl_api`; `struct_size` tells the
 * caller which ones this library has. Distributed process groups
 * (torch.distributed / c10d) are the `wl_process_group` handle kind with
 * their own create/collective/free entries; the capability bit
 * WL_CAP_DISTRIBUTED says the library was built with them (otherwise the
 * entries exist and fail with a message saying so).
 */
#ifndef WILLIS_ENGINE_H
#define WILLIS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WL_ABI_VERSION 1u

/* Entries of the table are never NULL; Swift imports them as non-optional. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wnullability-completeness"
#define WL_NONNULL _Nonnull
#else
#define WL_NONNULL
#endif

typedef int32_t wl_status;
#define WL_OK 0
#define WL_ERROR 1

typedef struct wl_tensor_s *wl_tensor;
typedef struct wl_optimizer_s *wl_optimizer;
/* A c10d ProcessGroup (torch.distributed's), with the TCPStore it met its peers through. */
typedef struct wl_process_group_s *wl_process_group;

/* Element types. Values are ours, not c10::ScalarType's. */
enum {
  WL_U8 = 0, WL_I64 = 1, WL_F32 = 2, WL_F16 = 3, WL_BF16 = 4,
  WL_BOOL = 5, WL_I32 = 6, WL_F64 = 7, WL_I16 = 8, WL_I8 = 9
};

/* Device types. */
enum { WL_CPU = 0, WL_CUDA = 1 };

/* Capabilities bitmask returned by `capabilities`. */
enum { WL_CAP_CUDA = 1u << 0, WL_CAP_DISTRIBUTED = 1u << 1 };

enum wl_unary_op {
  WL_NEG = 0, WL_EXP, WL_LOG, WL_SQRT, WL_RSQRT, WL_ABS, WL_RELU, WL_SIGMOID,
  WL_TANH, WL_GELU, WL_SIGN, WL_SQUARE, WL_FLOOR, WL_ROUND, WL_LOGSIGMOID,
  WL_GELU_TANH
};

enum wl_binary_op {
  WL_ADD = 0, WL_SUB, WL_MUL, WL_DIV, WL_POW, WL_MAXIMUM, WL_MINIMUM,
  WL_EQ, WL_NE, WL_LT, WL_LE, WL_GT, WL_GE
};

enum wl_reduce_op { WL_SUM = 0, WL_MEAN, WL_AMAX, WL_AMIN, WL_ARGMAX, WL_ARGMIN, WL_STD, WL_VAR };

enum wl_reduction { WL_REDUCE_NONE = 0, WL_REDUCE_MEAN = 1, WL_REDUCE_SUM = 2 };

enum wl_interp_mode { WL_NEAREST = 0, WL_TRILINEAR = 1 };

enum wl_random_kind { WL_UNIFORM = 0, WL_NORMAL = 1 };

enum wl_optimizer_kind { WL_ADAM = 0, WL_ADAMW = 1, WL_SGD = 2 };

typedef struct wl_optimizer_options {
  double lr;
  double beta1, beta2, eps;     /* Adam / AdamW */
  double weight_decay;
  double momentum, dampening;   /* SGD */
  int32_t nesterov;             /* SGD */
  int32_t amsgrad;              /* Adam / AdamW */
} wl_optimizer_options;

/* Called when a tensor made by `tensor_from_data` without copying is freed. */
typedef void (*wl_deleter)(void *context);

enum { WL_CONTIGUOUS = 0, WL_CHANNELS_LAST = 1, WL_CHANNELS_LAST_3D = 2 };

typedef struct wl_api {
  uint32_t abi_version;
  uint32_t struct_size;

  /* ---- library ---- */
  const char *(*WL_NONNULL last_error)(void);
  const char *(*WL_NONNULL torch_version)(void);
  uint32_t (*WL_NONNULL capabilities)(void);
  /* Build configuration text (at::show_config) plus the CPU capability in use.
     The result is freed with `string_free`. */
  wl_status (*WL_NONNULL build_info)(char **out);
  void (*WL_NONNULL string_free)(char *s);
  void (*WL_NONNULL buffer_free)(void *p);
  wl_status (*WL_NONNULL set_num_threads)(int32_t n);
  int32_t (*WL_NONNULL get_num_threads)(void);
  wl_status (*WL_NONNULL manual_seed)(uint64_t seed);
  /* Returns the previous state. Thread-local, as in PyTorch. */
  int32_t (*WL_NONNULL set_grad_enabled)(int32_t enabled);
  int32_t (*WL_NONNULL cuda_device_count)(void);
  wl_status (*WL_NONNULL cuda_synchronize)(int32_t index);
  wl_status (*WL_NONNULL set_cudnn_benchmark)(int32_t on);
  wl_status (*WL_NONNULL set_allow_tf32)(int32_t on);
  /* Autocast on `device_type` with `dtype` (WL_F16 or WL_BF16). Nested calls
     are counted; the cast cache is cleared when the outermost scope exits. */
  wl_status (*WL_NONNULL autocast_enter)(int32_t device_type, int32_t dtype);
  wl_status (*WL_NONNULL autocast_exit)(int32_t device_type);

  /* ---- tensors: creation and lifetime ---- */
  void (*WL_NONNULL tensor_free)(wl_tensor t);
  /* copy != 0: the data is copied and `deleter` is not used.
     copy == 0: the tensor aliases `data` (CPU) and calls deleter(context)
     when the last reference goes away. */
  wl_status (*WL_NONNULL tensor_from_data)(const void *data, const int64_t *shape, int32_t ndim,
                                int32_t dtype, int32_t copy, wl_deleter deleter,
                                void *context, wl_tensor *out);
  wl_status (*WL_NONNULL tensor_full)(const int64_t *shape, int32_t ndim, int32_t dtype,
                           int32_t device_type, int32_t device_index, double value,
                           wl_tensor *out);
  wl_status (*WL_NONNULL tensor_random)(int32_t kind, const int64_t *shape, int32_t ndim,
                             int32_t dtype, int32_t device_type, int32_t device_index,
                             wl_tensor *out);
  wl_status (*WL_NONNULL tensor_arange)(int64_t n, int32_t dtype, int32_t device_type,
                             int32_t device_index, wl_tensor *out);

  /* ---- tensors: metadata and data access ---- */
  int32_t (*WL_NONNULL tensor_ndim)(wl_tensor t);
  /* Writes min(ndim, capacity) sizes. */
  wl_status (*WL_NONNULL tensor_shape)(wl_tensor t, int64_t *sizes, int32_t capacity);
  int32_t (*WL_NONNULL tensor_dtype)(wl_tensor t);
  wl_status (*WL_NONNULL tensor_device)(wl_tensor t, int32_t *device_type, int32_t *device_index);
  int32_t (*WL_NONNULL tensor_is_contiguous)(wl_tensor t);
  /* Pointer to the first element; the tensor must be on the CPU. */
  wl_status (*WL_NONNULL tensor_data_ptr)(wl_tensor t, void **out);
  wl_status (*WL_NONNULL tensor_item)(wl_tensor t, double *out);
  wl_status (*WL_NONNULL tensor_to)(wl_tensor t, int32_t dtype, int32_t device_type,
                         int32_t device_index, wl_tensor *out);
  wl_status (*WL_NONNULL tensor_contiguous)(wl_tensor t, wl_tensor *out);
  wl_status (*WL_NONNULL tensor_clone)(wl_tensor t, wl_tensor *out);
  wl_status (*WL_NONNULL tensor_detach)(wl_tensor t, wl_tensor *out);
  /* dst.copy_(src) without recording autograd history. */
  wl_status (*WL_NONNULL tensor_copy_)(wl_tensor dst, wl_tensor src);
  /* t.fill_(value) without recording autograd history. */
  wl_status (*WL_NONNULL tensor_fill_)(wl_tensor t, double value);

  /* ---- autograd ---- */
  wl_status (*WL_NONNULL set_requires_grad)(wl_tensor t, int32_t on);
  int32_t (*WL_NONNULL requires_grad)(wl_tensor t);
  /* *out is NULL when the tensor has no gradient. */
  wl_status (*WL_NONNULL grad)(wl_tensor t, wl_tensor *out);
  wl_status (*WL_NONNULL zero_grad)(wl_tensor t);
  /* gradient may be NULL for a scalar. */
  wl_status (*WL_NONNULL backward)(wl_tensor t, wl_tensor gradient);

  /* ---- shape ---- */
  wl_status (*WL_NONNULL reshape)(wl_tensor t, const int64_t *shape, int32_t ndim, wl_tensor *out);
  wl_status (*WL_NONNULL permute)(wl_tensor t, const int64_t *dims, int32_t ndim, wl_tensor *out);
  wl_status (*WL_NONNULL narrow)(wl_tensor t, int64_t dim, int64_t start, int64_t length, wl_tensor *out);
  wl_status (*WL_NONNULL index_select)(wl_tensor t, int64_t dim, wl_tensor index, wl_tensor *out);
  wl_status (*WL_NONNULL flip)(wl_tensor t, const int64_t *dims, int32_t ndim, wl_tensor *out);
  wl_status (*WL_NONNULL cat)(const wl_tensor *ts, int32_t n, int64_t dim, wl_tensor *out);
  wl_status (*WL_NONNULL stack)(const wl_tensor *ts, int32_t n, int64_t dim, wl_tensor *out);
  wl_status (*WL_NONNULL expand)(wl_tensor t, const int64_t *shape, int32_t ndim, wl_tensor *out);

  /* ---- elementwise ---- */
  wl_status (*WL_NONNULL unary)(int32_t op, wl_tensor t, wl_tensor *out);
  wl_status (*WL_NONNULL unary_)(int32_t op, wl_tensor t);
  wl_status (*WL_NONNULL binary)(int32_t op, wl_tensor a, wl_tensor b, wl_tensor *out);
  wl_status (*WL_NONNULL binary_scalar)(int32_t op, wl_tensor a, double s, wl_tensor *out);
  /* a = a (op) s in place, outside autograd (op: add, sub, mul, div). */
  wl_status (*WL_NONNULL binary_scalar_)(int32_t op, wl_tensor a, double s);
  wl_status (*WL_NONNULL clamp)(wl_tensor t, double lo, double hi, int32_t has_lo, int32_t has_hi,
                     wl_tensor *out);
  wl_status (*WL_NONNULL leaky_relu)(wl_tensor t, double slope, wl_tensor *out);
  wl_status (*WL_NONNULL where)(wl_tensor cond, wl_tensor a, wl_tensor b, wl_tensor *out);

  /* ---- reductions; ndims == 0 reduces over everything ---- */
  wl_status (*WL_NONNULL reduce)(int32_t op, wl_tensor t, const int64_t *dims, int32_t ndims,
                      int32_t keepdim, wl_tensor *out);

  /* ---- linear algebra and layers ---- */
  wl_status (*WL_NONNULL matmul)(wl_tensor a, wl_tensor b, wl_tensor *out);
  wl_status (*WL_NONNULL linear)(wl_tensor x, wl_tensor w, wl_tensor b, wl_tensor *out);
  wl_status (*WL_NONNULL conv3d)(wl_tensor x, wl_tensor w, wl_tensor b, const int64_t *stride,
                      const int64_t *padding, const int64_t *dilation, int64_t groups,
                      wl_tensor *out);
  wl_status (*WL_NONNULL conv_transpose3d)(wl_tensor x, wl_tensor w, wl_tensor b,
                                const int64_t *stride, const int64_t *padding,
                                const int64_t *output_padding, int64_t groups,
                                const int64_t *dilation, wl_tensor *out);
  /* weight, bias, running_mean, running_var may be NULL. In training mode the
     running statistics are updated in place, as torch.nn.functional does. */
  wl_status (*WL_NONNULL batch_norm)(wl_tensor x, wl_tensor weight, wl_tensor bias,
                          wl_tensor running_mean, wl_tensor running_var, int32_t training,
                          double momentum, double eps, wl_tensor *out);
  wl_status (*WL_NONNULL instance_norm)(wl_tensor x, wl_tensor weight, wl_tensor bias,
                             wl_tensor running_mean, wl_tensor running_var,
                             int32_t use_input_stats, double momentum, double eps,
                             wl_tensor *out);
  wl_status (*WL_NONNULL max_pool3d)(wl_tensor x, const int64_t *kernel, const int64_t *stride,
                          const int64_t *padding, int32_t ceil_mode, wl_tensor *out);
  wl_status (*WL_NONNULL avg_pool3d)(wl_tensor x, const int64_t *kernel, const int64_t *stride,
                          const int64_t *padding, wl_tensor *out);
  wl_status (*WL_NONNULL adaptive_avg_pool3d)(wl_tensor x, const int64_t *size, wl_tensor *out);
  wl_status (*WL_NONNULL adaptive_max_pool3d)(wl_tensor x, const int64_t *size, wl_tensor *out);
  /* size has x.dim() - 2 entries. */
  wl_status (*WL_NONNULL interpolate)(wl_tensor x, const int64_t *size, int32_t nsize, int32_t mode,
                           int32_t align_corners, wl_tensor *out);
  wl_status (*WL_NONNULL dropout)(wl_tensor x, double p, int32_t training, wl_tensor *out);

  /* ---- losses; weight and pos_weight may be NULL ---- */
  wl_status (*WL_NONNULL bce_with_logits)(wl_tensor logits, wl_tensor target, wl_tensor weight,
                               wl_tensor pos_weight, int32_t reduction, wl_tensor *out);
  wl_status (*WL_NONNULL bce)(wl_tensor probs, wl_tensor target, wl_tensor weight, int32_t reduction,
                   wl_tensor *out);
  wl_status (*WL_NONNULL mse)(wl_tensor a, wl_tensor b, int32_t reduction, wl_tensor *out);
  /* logits [N, C, ...], target int64 [N, ...]. */
  wl_status (*WL_NONNULL cross_entropy)(wl_tensor logits, wl_tensor target, wl_tensor weight,
                             int64_t ignore_index, int32_t reduction, wl_tensor *out);

  /* ---- optimizers ---- */
  wl_status (*WL_NONNULL optimizer_create)(int32_t kind, const wl_tensor *params, int32_t n,
                                const wl_optimizer_options *options, wl_optimizer *out);
  void (*WL_NONNULL optimizer_free)(wl_optimizer o);
  wl_status (*WL_NONNULL optimizer_step)(wl_optimizer o);
  wl_status (*WL_NONNULL optimizer_zero_grad)(wl_optimizer o, int32_t set_to_none);
  wl_status (*WL_NONNULL optimizer_set_lr)(wl_optimizer o, double lr);
  wl_status (*WL_NONNULL optimizer_get_lr)(wl_optimizer o, double *lr);
  /* Serialised optimizer state (torch::serialize archive). *bytes is freed
     with `buffer_free`. */
  wl_status (*WL_NONNULL optimizer_state_save)(wl_optimizer o, void **bytes, int64_t *length);
  wl_status (*WL_NONNULL optimizer_state_load)(wl_optimizer o, const void *bytes, int64_t length);

  /* ---- appended entries ---- */
  /* The same values in another memory layout (WL_CONTIGUOUS, WL_CHANNELS_LAST for 4-D,
     WL_CHANNELS_LAST_3D for 5-D); oneDNN and cuDNN convolve channels-last tensors faster. */
  wl_status (*WL_NONNULL tensor_to_memory_format)(wl_tensor t, int32_t format, wl_tensor *out);
  /* t keeps its identity (autograd leaf, optimizer state) but now holds src's storage, shape and
     strides (Tensor::set_data). */
  wl_status (*WL_NONNULL tensor_set_data)(wl_tensor t, wl_tensor src);

  /* ---- distributed (c10d); WL_CAP_DISTRIBUTED says whether these work ---- */
  /* Meets the other ranks through a TCPStore at master_addr:master_port (rank 0 serves it) and
     makes a process group: backend "gloo" (CPU tensors) or "nccl" (CUDA tensors, CUDA builds).
     Every later collective fails, rather than waits, after timeout_ms. */
  wl_status (*WL_NONNULL pg_create)(const char *backend, const char *master_addr, int32_t master_port,
                         int32_t rank, int32_t world_size, int64_t timeout_ms, wl_process_group *out);
  void (*WL_NONNULL pg_free)(wl_process_group g);
  /* In place on every rank: op WL_SUM, WL_MEAN (sum divided by the world size), WL_AMAX or WL_AMIN.
     Tensors of different shapes are reduced together (one coalesced collective); all must share
     dtype and device. */
  wl_status (*WL_NONNULL pg_all_reduce)(wl_process_group g, const wl_tensor *tensors, int32_t n, int32_t op);
  /* In place: every rank ends with root's values. */
  wl_status (*WL_NONNULL pg_broadcast)(wl_process_group g, const wl_tensor *tensors, int32_t n, int32_t root);
  wl_status (*WL_NONNULL pg_barrier)(wl_process_group g);
} wl_api;

/* The only exported symbol. Returns NULL if the library cannot serve
   `abi_version`. */
typedef const wl_api *(*wl_api_entry)(uint32_t abi_version);
#define WL_API_SYMBOL "willis_engine_api"

/* Implemented on the Swift side's C shim: dlopen + dlsym. On failure returns
   NULL and writes a message into err. */
const wl_api *wl_open_engine(const char *path, char *err, size_t err_capacity);

#ifdef __cplusplus
}
#endif
#endif
