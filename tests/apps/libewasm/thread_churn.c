/* Short-lived C threads calling an EVMC VM: what a node that starts a thread per request
 * or per block does. Each thread runs one execute and exits; afterwards the process must
 * not keep a thread per dead caller (the engine runs contracts on a big-stack worker per
 * calling thread, 512 MiB of address space each).
 *
 *   thread_churn LIB WASM N    prints "threads=N failures=F tasks_before=B tasks_after=A"
 *
 * The EVMC declarations come from evmc_abi.h, written by the test from evmc_bridge's own
 * C declarations (one transcription of the ABI).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evmc_abi.h"

static struct evmc_vm* vm;
static const uint8_t* code;
static size_t code_size;

/* The contract calls no host function; the table is complete all the same. */
static bool account_exists(struct evmc_host_context* c, const evmc_address* a)
{ (void)c; (void)a; return false; }
static evmc_bytes32 zero_word(struct evmc_host_context* c, const evmc_address* a)
{ evmc_bytes32 z; (void)c; (void)a; memset(&z, 0, sizeof z); return z; }
static evmc_bytes32 get_storage(struct evmc_host_context* c, const evmc_address* a,
                                const evmc_bytes32* k)
{ (void)k; return zero_word(c, a); }
static int32_t set_storage(struct evmc_host_context* c, const evmc_address* a,
                           const evmc_bytes32* k, const evmc_bytes32* v)
{ (void)c; (void)a; (void)k; (void)v; return 0; }
static size_t get_code_size(struct evmc_host_context* c, const evmc_address* a)
{ (void)c; (void)a; return 0; }
static size_t copy_code(struct evmc_host_context* c, const evmc_address* a, size_t o,
                        uint8_t* b, size_t n)
{ (void)c; (void)a; (void)o; (void)b; (void)n; return 0; }
static bool selfdestruct(struct evmc_host_context* c, const evmc_address* a,
                         const evmc_address* b)
{ (void)c; (void)a; (void)b; return false; }
static struct evmc_result call(struct evmc_host_context* c, const struct evmc_message* m)
{ struct evmc_result r; (void)c; (void)m; memset(&r, 0, sizeof r); r.status_code = 1; return r; }
static struct evmc_tx_context get_tx_context(struct evmc_host_context* c)
{ struct evmc_tx_context t; (void)c; memset(&t, 0, sizeof t); return t; }
static evmc_bytes32 get_block_hash(struct evmc_host_context* c, int64_t n)
{ evmc_bytes32 z; (void)c; (void)n; memset(&z, 0, sizeof z); return z; }
static void emit_log(struct evmc_host_context* c, const evmc_address* a, const uint8_t* d,
                     size_t n, const evmc_bytes32 t[], size_t nt)
{ (void)c; (void)a; (void)d; (void)n; (void)t; (void)nt; }
static int32_t access_account(struct evmc_host_context* c, const evmc_address* a)
{ (void)c; (void)a; return 1; }
static int32_t access_storage(struct evmc_host_context* c, const evmc_address* a,
                              const evmc_bytes32* k)
{ (void)c; (void)a; (void)k; return 1; }
static void set_transient(struct evmc_host_context* c, const evmc_address* a,
                          const evmc_bytes32* k, const evmc_bytes32* v)
{ (void)c; (void)a; (void)k; (void)v; }

static const struct evmc_host_interface HOST = {
    account_exists, get_storage, set_storage, zero_word, get_code_size, zero_word,
    copy_code, selfdestruct, call, get_tx_context, get_block_hash, emit_log,
    access_account, access_storage, get_storage, set_transient,
};

static int failures;

static void* one_call(void* arg)
{
    int context = 1; /* opaque to the VM; this host keeps no state */
    struct evmc_message m;
    struct evmc_result r;
    (void)arg;
    memset(&m, 0, sizeof m);
    m.gas = 100000;
    r = vm->execute(vm, &HOST, (struct evmc_host_context*)&context, 4 /* BYZANTIUM */, &m,
                    code, code_size);
    if (r.status_code != 0 || r.gas_left != 100000)
        __sync_fetch_and_add(&failures, 1);
    if (r.release)
        r.release(&r);
    return NULL;
}

static int tasks(void)
{
    int n = 0;
    struct dirent* e;
    DIR* d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int main(int argc, char** argv)
{
    static uint8_t buf[1 << 16];
    void* lib;
    FILE* f;
    int n, before, after = -1;
    struct evmc_vm* (*create)(void);
    pthread_t t;

    if (argc != 4) {
        fprintf(stderr, "usage: thread_churn LIB WASM N\n");
        return 2;
    }
    lib = dlopen(argv[1], RTLD_LAZY);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    create = (struct evmc_vm * (*)(void)) dlsym(lib, "evmc_create_ewasm");
    if (create == NULL || (vm = create()) == NULL) {
        fprintf(stderr, "cannot create the VM\n");
        return 2;
    }
    f = fopen(argv[2], "rb");
    if (f == NULL) {
        perror(argv[2]);
        return 2;
    }
    code_size = fread(buf, 1, sizeof buf, f);
    fclose(f);
    code = buf;
    n = atoi(argv[3]);

    one_call(NULL); /* the main thread's worker: started once, kept for the process */
    before = tasks();
    for (int i = 0; i < n; i++) {
        pthread_create(&t, NULL, one_call, NULL);
        pthread_join(t, NULL);
    }
    /* Workers of ended threads stop asynchronously: give them up to 3 s. */
    for (int waited = 0; waited < 300; waited++) {
        after = tasks();
        if (after <= before + 1)
            break;
        usleep(10000);
    }
    printf("threads=%d failures=%d tasks_before=%d tasks_after=%d\n", n, failures, before,
           after);
    vm->destroy(vm);
    return 0;
}
