// Loads the engine library at run time so one willis binary can drive any
// libtorch build the engine was compiled against.
#include "willis_engine.h"

#include <dlfcn.h>
#include <stdio.h>

const wl_api *wl_open_engine(const char *path, char *err, size_t err_capacity) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(err, err_capacity, "%s", dlerror());
    return NULL;
  }
  wl_api_entry entry = (wl_api_entry)dlsym(lib, WL_API_SYMBOL);
  if (!entry) {
    snprintf(err, err_capacity, "%s has no symbol %s: not a Willis engine library", path,
             WL_API_SYMBOL);
    dlclose(lib);
    return NULL;
  }
  const wl_api *api = entry(WL_ABI_VERSION);
  if (!api) {
    snprintf(err, err_capacity, "%s does not serve engine ABI version %u; rebuild it with scripts/build-engine",
             path, WL_ABI_VERSION);
    dlclose(lib);
    return NULL;
  }
  // The library stays loaded for the life of the process: tensors it made may
  // outlive any one caller.
  return api;
}
