"""Build libewasm.so: the engine as an EVMC VM that C and C++ node software loads.

    python -m apps.libewasm build --output DIR

cffi's embedding mode compiles a shared library holding the `evmc_vm` in C
(`evmc_create_ewasm`, `evmc_create`, destroy, execute, get_capabilities, set_option,
and the result's `release`); each entry point calls into `apps.libewasm.embedded` with
CPython started on first use, or the host process's interpreter when it already runs
Python. Two things a plain C host needs are baked in at build time:

- the interpreter's library directory as the library's rpath, and a constructor that
  re-opens libpython with RTLD_GLOBAL: hosts dlopen VMs with RTLD_LAZY (local symbols),
  and CPython's own extension modules would otherwise fail to find the Py* symbols;
- the build environment's import path (the venv's site-packages with their .pth files,
  the project), so the embedded interpreter imports this engine and its dependencies.
  `EWASM_PYTHONPATH` (os.pathsep-separated) adds directories in front at run time.

This needs a C compiler, the Python headers, and a CPython built as a shared library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import site
import sys
import sysconfig
import tempfile
from pathlib import Path

from evmc_bridge import cabi
from evmc_bridge.errors import EvmcError

LIBRARY_NAME = "libewasm.so"
VERSION = "0.1.0"


class BuildError(EvmcError):
    """libewasm.so cannot be built here (no compiler, static CPython, compile error)."""


# The entry points Python implements (cffi's embedding API); the C below calls them.
_EMBEDDING_API = """
int ewasm_py_create(void);
void ewasm_py_destroy(int);
int ewasm_py_set_option(int, const char*, const char*);
uint32_t ewasm_py_get_capabilities(int);
void ewasm_py_execute(int, const struct evmc_host_interface*, struct evmc_host_context*,
                      int32_t, const struct evmc_message*, const uint8_t*, size_t,
                      struct evmc_result*);
"""

_C_SOURCE = r"""
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
""" + cabi.CDEF + r"""
_Static_assert(sizeof(struct evmc_message) == 184, "evmc_message layout");
_Static_assert(sizeof(struct evmc_result) == 72, "evmc_result layout");
_Static_assert(sizeof(struct evmc_tx_context) == 256, "evmc_tx_context layout");
_Static_assert(sizeof(struct evmc_vm) == 56, "evmc_vm layout");

__attribute__((constructor)) static void ewasm_promote_libpython(void)
{
    /* See the module docstring: make libpython's symbols global before Python starts. */
    dlopen(EWASM_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}
""" + _EMBEDDING_API + r"""
struct ewasm_vm { struct evmc_vm vm; int handle; };

static void ewasm_release(const struct evmc_result* result)
{
    if (result) free((void*)result->output_data);
}

static void ewasm_destroy(struct evmc_vm* vm)
{
    if (!vm) return;
    ewasm_py_destroy(((struct ewasm_vm*)vm)->handle);
    free(vm);
}

static evmc_capabilities_flagset ewasm_get_capabilities(struct evmc_vm* vm)
{
    /* EVMC_CAPABILITY_EWASM, and EVMC_CAPABILITY_EVM1 under evm1mode=evm. */
    return ewasm_py_get_capabilities(((struct ewasm_vm*)vm)->handle);
}

static int32_t ewasm_set_option(struct evmc_vm* vm, const char* name, const char* value)
{
    /* The name is checked before the value (evmc-vmtester's set_option_empty_value: an
     * unknown name with a NULL value is INVALID_NAME); Python sees NULL as None. */
    if (!vm || !name) return 1;  /* EVMC_SET_OPTION_INVALID_NAME */
    return ewasm_py_set_option(((struct ewasm_vm*)vm)->handle, name, value);
}

/* cffi's wrapper around each call into Python takes the GIL with PyGILState_Ensure and
 * gives it back with PyGILState_Release, which, on a thread CPython did not start,
 * creates and destroys the thread's Python state every call (~10 us, and every
 * thread-local of the engine with it). One Ensure that is never released keeps the
 * state for the thread's life: later calls only take and drop the GIL. (Run after the
 * first call, when cffi has started the interpreter; the state is not freed when the
 * thread exits, one small allocation per host thread.) */
static __thread int ewasm_thread_state_kept;

static void ewasm_keep_thread_state(void)
{
    if (ewasm_thread_state_kept || !Py_IsInitialized()) return;
    PyGILState_Ensure();
    PyEval_SaveThread();
    ewasm_thread_state_kept = 1;
}

static struct evmc_result ewasm_execute(struct evmc_vm* vm,
    const struct evmc_host_interface* host, struct evmc_host_context* context,
    int32_t rev, const struct evmc_message* msg, const uint8_t* code, size_t code_size)
{
    struct evmc_result result;
    memset(&result, 0, sizeof result);
    result.status_code = -1;  /* EVMC_INTERNAL_ERROR unless Python says otherwise */
    /* Every pointer with a size is checked before Python reads it: NULL with a size
     * ends as EVMC_INTERNAL_ERROR, never as a crash of the host process. */
    if (!vm || !host || !msg || (!code && code_size) ||
        (!msg->input_data && msg->input_size) || (!msg->code && msg->code_size))
        return result;
    ewasm_py_execute(((struct ewasm_vm*)vm)->handle, host, context, rev, msg, code,
                     code_size, &result);
    ewasm_keep_thread_state();
    if (result.output_data) result.release = ewasm_release;
    return result;
}

int Py_IsInitialized(void);

static void ewasm_prepare_python(void)
{
    /* Before this library starts CPython in a plain C process: the build's Python home
     * and import path (cffi imports its backend before any init code of ours runs). The
     * init code takes these variables back out of the environment. */
    if (Py_IsInitialized()) return;
    if (!getenv("PYTHONHOME")) {
        setenv("PYTHONHOME", EWASM_PYTHONHOME, 1);
        setenv("_EWASM_SET_PYTHONHOME", "1", 1);
    }
    const char* old = getenv("PYTHONPATH");
    size_t n = strlen(EWASM_PYTHONPATH) + (old ? strlen(old) + 2 : 1);
    char* path = malloc(n);
    if (!path) return;
    strcpy(path, EWASM_PYTHONPATH);
    if (old) {
        setenv("_EWASM_OLD_PYTHONPATH", old, 1);
        strcat(path, ":");
        strcat(path, old);
    }
    setenv("PYTHONPATH", path, 1);
    setenv("_EWASM_SET_PYTHONPATH", "1", 1);
    free(path);
}

static pthread_once_t ewasm_python_once = PTHREAD_ONCE_INIT;

__attribute__((visibility("default"))) struct evmc_vm* evmc_create_ewasm(void)
{
    pthread_once(&ewasm_python_once, ewasm_prepare_python);
    int handle = ewasm_py_create();
    if (handle <= 0) return NULL;
    struct ewasm_vm* vm = malloc(sizeof *vm);
    if (!vm) { ewasm_py_destroy(handle); return NULL; }
    struct evmc_vm init = {12, "ewasm", EWASM_VERSION, ewasm_destroy, ewasm_execute,
                           ewasm_get_capabilities, ewasm_set_option};
    memcpy(&vm->vm, &init, sizeof init);
    vm->handle = handle;
    return &vm->vm;
}

__attribute__((visibility("default"))) struct evmc_vm* evmc_create(void)
{
    return evmc_create_ewasm();
}
"""

_INIT_CODE = r"""
import os, site, sys
if os.environ.pop("_EWASM_SET_PYTHONHOME", None):
    os.environ.pop("PYTHONHOME", None)
if os.environ.pop("_EWASM_SET_PYTHONPATH", None):
    _old = os.environ.pop("_EWASM_OLD_PYTHONPATH", None)
    if _old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = _old
for _p in reversed(os.environ.get("EWASM_PYTHONPATH", "").split(os.pathsep) + %(paths)r):
    if _p and _p not in sys.path:
        if os.path.isdir(_p) and _p.endswith("-packages"):
            site.addsitedir(_p)
        else:
            sys.path.insert(0, _p)

from _ewasm_evmc import ffi, lib
from apps.libewasm import embedded

embedded.bind(ffi, lib)


@ffi.def_extern(onerror=lambda *exc: None)
def ewasm_py_create():
    return embedded.create()


@ffi.def_extern(onerror=lambda *exc: None)
def ewasm_py_destroy(handle):
    embedded.destroy(handle)


# A Python error in set_option must not read as SUCCESS (0): INVALID_VALUE.
@ffi.def_extern(onerror=lambda *exc: 2)
def ewasm_py_set_option(handle, name, value):
    return embedded.set_option(handle, ffi.string(name).decode("utf-8", "replace"),
                               None if value == ffi.NULL
                               else ffi.string(value).decode("utf-8", "replace"))


# What the VM certainly is, should Python fail: EVMC_CAPABILITY_EWASM.
@ffi.def_extern(onerror=lambda *exc: 2)
def ewasm_py_get_capabilities(handle):
    return embedded.capabilities(handle)


@ffi.def_extern(onerror=lambda *exc: None)
def ewasm_py_execute(handle, host, context, rev, msg, code, code_size, out):
    embedded.execute(handle, host, context, rev, msg, code, code_size, out)
"""


def _import_paths() -> list[str]:
    """Where the embedded interpreter must look: this interpreter's site directories (so
    .pth files such as the editable install's apply) and the project root."""
    project = str(Path(__file__).resolve().parents[2])
    paths = [project]
    for p in site.getsitepackages() + [site.getusersitepackages()]:
        if os.path.isdir(p):
            paths.append(p)
    return paths


def _libpython() -> tuple[str, str]:
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise BuildError("this CPython is built without a shared libpython; an embedded "
                         "EVMC library needs one (e.g. pyenv with --enable-shared)")
    soname = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    return sysconfig.get_config_var("LIBDIR"), soname


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sources_key() -> str:
    h = hashlib.sha256()
    for part in (_C_SOURCE, _EMBEDDING_API, _INIT_CODE, repr(_import_paths()), VERSION,
                 sys.version, sys.executable, sys.base_prefix):
        h.update(part.encode())
    return h.hexdigest()[:16]


def build_library(output_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """Build DIR/libewasm.so (skipped when one built from the same sources is there)."""
    import cffi

    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / LIBRARY_NAME
    stamp = out_dir / (LIBRARY_NAME + ".key")
    key = _sources_key()
    if not force and target.exists() and stamp.exists() and stamp.read_text() == key:
        return target
    if shutil.which(os.environ.get("CC", "cc")) is None:
        raise BuildError("no C compiler (cc) found; install gcc or clang")
    libdir, soname = _libpython()
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(cabi.CDEF)
    ffibuilder.embedding_api(_EMBEDDING_API)
    ffibuilder.cdef("void* malloc(size_t); void free(void*);")
    ffibuilder.set_source(
        "_ewasm_evmc", _C_SOURCE,
        define_macros=[("EWASM_LIBPYTHON", _c_string(soname)),
                       ("EWASM_PYTHONHOME", _c_string(sys.base_prefix)),
                       ("EWASM_PYTHONPATH", _c_string(os.pathsep.join(_import_paths()))),
                       ("EWASM_VERSION", _c_string(VERSION))],
        libraries=["dl", "pthread"],
        extra_link_args=[f"-Wl,-rpath,{libdir}"])
    ffibuilder.embedding_init_code(_INIT_CODE % {"paths": _import_paths()})
    with tempfile.TemporaryDirectory(prefix="ewasm-evmc-build-") as tmp:
        try:
            built = ffibuilder.compile(tmpdir=tmp, target=LIBRARY_NAME, verbose=False)
        except Exception as exc:  # distutils/setuptools CompileError, LinkError
            raise BuildError(f"building {LIBRARY_NAME} failed: {exc}") from exc
        partial = out_dir / (LIBRARY_NAME + ".tmp")
        shutil.copyfile(built, partial)
        os.replace(partial, target)  # a loaded old copy stays intact
    stamp.write_text(key)
    return target
