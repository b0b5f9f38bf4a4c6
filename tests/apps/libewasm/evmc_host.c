/* A C host for the EVMC ABI 12 tests: dlopens an EVMC VM the way EVMC's loader does
 * (RTLD_LAZY, evmc_create_<name>), checks its identity and options, and runs contracts
 * against a small host written here (storage in a table, logs counted, calls answered
 * with a fixed result). Declarations written from ../shared/docs/evmc.md.
 *
 *   evmc_host LIB info
 *   evmc_host LIB run NAME WASM INPUT_HEX GAS [NAME WASM INPUT_HEX GAS ...]
 *   evmc_host LIB threads N ITERATIONS STORAGE_WASM
 *   evmc_host LIB bench N WASM        (prints microseconds per execute)
 *   evmc_host LIB misuse STORAGE_WASM CALL_WASM TX_WASM
 *
 * `misuse` passes pointer and size pairs that cannot be read (NULL with a size, a size
 * no buffer has) in the message and in host answers, one line per case:
 *   CASE status=S gas_left=G
 * then runs the storage contract normally to show that the VM still works.
 * `run` prints one line per contract:
 *   NAME status=S gas_left=G output=HEX logs=N storage=N call_value=V
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { uint8_t bytes[32]; } evmc_bytes32;
typedef struct { uint8_t bytes[20]; } evmc_address;

struct evmc_message {
    int32_t kind; uint32_t flags; int32_t depth; int64_t gas;
    evmc_address recipient, sender;
    const uint8_t* input_data; size_t input_size;
    evmc_bytes32 value, create2_salt;
    evmc_address code_address;
    const uint8_t* code; size_t code_size;
};
struct evmc_result {
    int32_t status_code; int64_t gas_left, gas_refund;
    const uint8_t* output_data; size_t output_size;
    void (*release)(const struct evmc_result*);
    evmc_address create_address; uint8_t padding[4];
};
struct evmc_tx_context {
    evmc_bytes32 tx_gas_price; evmc_address tx_origin, block_coinbase;
    int64_t block_number, block_timestamp, block_gas_limit;
    evmc_bytes32 block_prev_randao, chain_id, block_base_fee, blob_base_fee;
    const evmc_bytes32* blob_hashes; size_t blob_hashes_count;
    const void* initcodes; size_t initcodes_count;
};
struct host_ctx;
struct evmc_host_interface {
    bool (*account_exists)(struct host_ctx*, const evmc_address*);
    evmc_bytes32 (*get_storage)(struct host_ctx*, const evmc_address*, const evmc_bytes32*);
    int32_t (*set_storage)(struct host_ctx*, const evmc_address*, const evmc_bytes32*,
                           const evmc_bytes32*);
    evmc_bytes32 (*get_balance)(struct host_ctx*, const evmc_address*);
    size_t (*get_code_size)(struct host_ctx*, const evmc_address*);
    evmc_bytes32 (*get_code_hash)(struct host_ctx*, const evmc_address*);
    size_t (*copy_code)(struct host_ctx*, const evmc_address*, size_t, uint8_t*, size_t);
    bool (*selfdestruct)(struct host_ctx*, const evmc_address*, const evmc_address*);
    struct evmc_result (*call)(struct host_ctx*, const struct evmc_message*);
    struct evmc_tx_context (*get_tx_context)(struct host_ctx*);
    evmc_bytes32 (*get_block_hash)(struct host_ctx*, int64_t);
    void (*emit_log)(struct host_ctx*, const evmc_address*, const uint8_t*, size_t,
                     const evmc_bytes32[], size_t);
    int32_t (*access_account)(struct host_ctx*, const evmc_address*);
    int32_t (*access_storage)(struct host_ctx*, const evmc_address*, const evmc_bytes32*);
    evmc_bytes32 (*get_transient_storage)(struct host_ctx*, const evmc_address*,
                                          const evmc_bytes32*);
    void (*set_transient_storage)(struct host_ctx*, const evmc_address*, const evmc_bytes32*,
                                  const evmc_bytes32*);
};
struct evmc_vm {
    const int abi_version; const char* name; const char* version;
    void (*destroy)(struct evmc_vm*);
    struct evmc_result (*execute)(struct evmc_vm*, const struct evmc_host_interface*,
                                  struct host_ctx*, int32_t, const struct evmc_message*,
                                  const uint8_t*, size_t);
    uint32_t (*get_capabilities)(struct evmc_vm*);
    int32_t (*set_option)(struct evmc_vm*, const char*, const char*);
};

_Static_assert(sizeof(struct evmc_message) == 184, "message");
_Static_assert(sizeof(struct evmc_result) == 72, "result");
_Static_assert(sizeof(struct evmc_tx_context) == 256, "tx_context");
_Static_assert(sizeof(struct evmc_vm) == 56, "vm");

#define SLOTS 256
struct slot { evmc_address addr; evmc_bytes32 key, value; };
struct host_ctx {
    struct slot slots[SLOTS]; int n_slots;
    int logs; uint64_t call_value;
};

static struct slot* find(struct host_ctx* h, const evmc_address* a, const evmc_bytes32* k)
{
    for (int i = 0; i < h->n_slots; i++)
        if (!memcmp(&h->slots[i].addr, a, 20) && !memcmp(&h->slots[i].key, k, 32))
            return &h->slots[i];
    return NULL;
}

static bool account_exists(struct host_ctx* h, const evmc_address* a)
{ (void)h; (void)a; return true; }

static evmc_bytes32 get_storage(struct host_ctx* h, const evmc_address* a,
                                const evmc_bytes32* k)
{
    evmc_bytes32 zero = {{0}};
    struct slot* s = find(h, a, k);
    return s ? s->value : zero;
}

static int32_t set_storage(struct host_ctx* h, const evmc_address* a, const evmc_bytes32* k,
                           const evmc_bytes32* v)
{
    struct slot* s = find(h, a, k);
    if (!s) {
        if (h->n_slots == SLOTS) return 0;
        s = &h->slots[h->n_slots++];
        s->addr = *a; s->key = *k; s->value = *v;
        return 1;  /* EVMC_STORAGE_ADDED */
    }
    s->value = *v;
    return 3;  /* EVMC_STORAGE_MODIFIED */
}

static evmc_bytes32 get_balance(struct host_ctx* h, const evmc_address* a)
{
    (void)h; (void)a;
    evmc_bytes32 b = {{0}};
    b.bytes[29] = 0x0f; b.bytes[30] = 0x42; b.bytes[31] = 0x40;  /* 1,000,000 */
    return b;
}

static size_t get_code_size(struct host_ctx* h, const evmc_address* a)
{ (void)h; (void)a; return 0; }

static evmc_bytes32 get_code_hash(struct host_ctx* h, const evmc_address* a)
{ (void)h; (void)a; evmc_bytes32 z = {{0}}; return z; }

static size_t copy_code(struct host_ctx* h, const evmc_address* a, size_t o, uint8_t* b,
                        size_t n)
{ (void)h; (void)a; (void)o; (void)b; (void)n; return 0; }

static bool selfdestruct(struct host_ctx* h, const evmc_address* a, const evmc_address* b)
{ (void)h; (void)a; (void)b; return true; }

static const uint8_t CALL_OUTPUT[2] = {0xca, 0xfe};

/* How the host misbehaves in `misuse` mode (0: it does not). */
enum { HOST_OK, CALL_NULL_OUTPUT, CALL_HUGE_OUTPUT, TX_NULL_BLOBS, TX_NULL_INITCODES };
static int host_mode = HOST_OK;

static struct evmc_result call(struct host_ctx* h, const struct evmc_message* m)
{
    struct evmc_result r;
    memset(&r, 0, sizeof r);
    uint64_t v = 0;
    for (int i = 24; i < 32; i++) v = (v << 8) | m->value.bytes[i];
    h->call_value = v;
    r.status_code = 0;
    r.gas_left = m->gas;  /* the callee spends nothing */
    r.output_data = CALL_OUTPUT;
    r.output_size = sizeof CALL_OUTPUT;
    if (host_mode == CALL_NULL_OUTPUT) { r.output_data = NULL; r.output_size = 7; }
    if (host_mode == CALL_HUGE_OUTPUT) r.output_size = (size_t)-1;  /* a -1 cast to size_t */
    return r;
}

static struct evmc_tx_context get_tx_context(struct host_ctx* h)
{
    (void)h;
    struct evmc_tx_context t;
    memset(&t, 0, sizeof t);
    if (host_mode == TX_NULL_BLOBS) t.blob_hashes_count = 3;
    if (host_mode == TX_NULL_INITCODES) t.initcodes_count = 2;
    return t;
}

static evmc_bytes32 get_block_hash(struct host_ctx* h, int64_t n)
{ (void)h; (void)n; evmc_bytes32 z = {{0}}; return z; }

static void emit_log(struct host_ctx* h, const evmc_address* a, const uint8_t* d, size_t n,
                     const evmc_bytes32 t[], size_t nt)
{ (void)a; (void)d; (void)n; (void)t; (void)nt; h->logs++; }

static int32_t access_account(struct host_ctx* h, const evmc_address* a)
{ (void)h; (void)a; return 1; }

static int32_t access_storage(struct host_ctx* h, const evmc_address* a,
                              const evmc_bytes32* k)
{ (void)h; (void)a; (void)k; return 1; }

static const struct evmc_host_interface HOST = {
    account_exists, get_storage, set_storage, get_balance, get_code_size, get_code_hash,
    copy_code, selfdestruct, call, get_tx_context, get_block_hash, emit_log,
    access_account, access_storage, NULL, NULL,
};

static struct evmc_vm* vm;

static uint8_t* read_file(const char* path, size_t* size)
{
    FILE* f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t* buf = malloc(n ? (size_t)n : 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(2); }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static uint8_t* from_hex(const char* hex, size_t* size)
{
    size_t n = strlen(hex) / 2;
    uint8_t* buf = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &buf[i]);
    *size = n;
    return buf;
}

static struct evmc_result run_message(struct host_ctx* h, const uint8_t* code,
                                      size_t code_size, struct evmc_message* m)
{
    return vm->execute(vm, &HOST, h, 9 /* LONDON */, m, code, code_size);
}

static void base_message(struct evmc_message* m, const uint8_t* input, size_t input_size,
                         int64_t gas)
{
    memset(m, 0, sizeof *m);
    m->gas = gas;
    memset(m->recipient.bytes, 0x01, 20);
    memset(m->sender.bytes, 0x02, 20);
    m->code_address = m->recipient;
    m->input_data = input;
    m->input_size = input_size;
}

static void report(const char* name, struct evmc_result r)
{
    printf("%s status=%d gas_left=%lld\n", name, r.status_code, (long long)r.gas_left);
    if (r.release) r.release(&r);
}

static struct evmc_result run(struct host_ctx* h, const uint8_t* code, size_t code_size,
                              const uint8_t* input, size_t input_size, int64_t gas)
{
    struct evmc_message m;
    memset(&m, 0, sizeof m);
    m.kind = 0;
    m.gas = gas;
    memset(m.recipient.bytes, 0x01, 20);
    memset(m.sender.bytes, 0x02, 20);
    m.code_address = m.recipient;
    m.input_data = input;
    m.input_size = input_size;
    return vm->execute(vm, &HOST, h, 9 /* LONDON */, &m, code, code_size);
}

struct job { const uint8_t* code; size_t code_size; int iterations; int id; int failures; };

static void* worker(void* arg)
{
    struct job* j = arg;
    struct host_ctx* h = calloc(1, sizeof *h);
    for (int i = 0; i < j->iterations; i++) {
        uint8_t input[64] = {0};
        input[0] = (uint8_t)j->id;
        input[31] = (uint8_t)i;               /* key: thread id, iteration */
        input[32] = (uint8_t)(0x80 | j->id);
        input[62] = (uint8_t)(i >> 8);
        input[63] = (uint8_t)i;               /* value: differs per thread and iteration */
        struct evmc_result r = run(h, j->code, j->code_size, input, 64, 100000);
        if (r.status_code != 0 || r.output_size != 32 ||
            memcmp(r.output_data, input + 32, 32) != 0)
            j->failures++;
        if (r.release) r.release(&r);
    }
    if (h->n_slots != j->iterations && j->iterations <= SLOTS) j->failures++;
    free(h);
    return NULL;
}

int main(int argc, char** argv)
{
    if (argc < 3) { fprintf(stderr, "usage: see the source\n"); return 2; }
    void* lib = dlopen(argv[1], RTLD_LAZY);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    struct evmc_vm* (*create)(void) = (struct evmc_vm* (*)(void))dlsym(lib, "evmc_create_ewasm");
    if (!create) { fprintf(stderr, "no evmc_create_ewasm\n"); return 2; }
    vm = create();
    if (!vm) { fprintf(stderr, "create returned NULL\n"); return 2; }
    if (vm->abi_version != 12) { fprintf(stderr, "abi %d\n", vm->abi_version); return 3; }

    if (!strcmp(argv[2], "info")) {
        printf("abi=%d name=%s version=%s capabilities=%u\n", vm->abi_version, vm->name,
               vm->version, vm->get_capabilities(vm));
        printf("set_option metering=true:%d debug=false:%d nope=1:%d metering=maybe:%d "
               "cache-dir=/:%d null-value:%d unknown-null:%d\n",
               vm->set_option(vm, "metering", "true"), vm->set_option(vm, "debug", "false"),
               vm->set_option(vm, "nope", "1"), vm->set_option(vm, "metering", "maybe"),
               vm->set_option(vm, "cache-dir", "/proc/no/such/dir"),
               vm->set_option(vm, "debug", NULL),
               vm->set_option(vm, "unknown_option", NULL));
        struct evmc_result r = vm->execute(vm, NULL, NULL, 9, NULL, NULL, 0);
        printf("null-arguments status=%d gas_left=%lld\n", r.status_code,
               (long long)r.gas_left);
        if (r.release) r.release(&r);
    } else if (!strcmp(argv[2], "run")) {
        for (int i = 3; i + 3 < argc; i += 4) {
            struct host_ctx* h = calloc(1, sizeof *h);
            size_t code_size, input_size;
            uint8_t* code = read_file(argv[i + 1], &code_size);
            uint8_t* input = from_hex(argv[i + 2], &input_size);
            struct evmc_result r = run(h, code, code_size, input, input_size,
                                       atoll(argv[i + 3]));
            printf("%s status=%d gas_left=%lld output=", argv[i], r.status_code,
                   (long long)r.gas_left);
            for (size_t k = 0; k < r.output_size; k++) printf("%02x", r.output_data[k]);
            printf(" logs=%d storage=%d call_value=%llu\n", h->logs, h->n_slots,
                   (unsigned long long)h->call_value);
            if (r.release) r.release(&r);
            free(code); free(input); free(h);
        }
    } else if (!strcmp(argv[2], "threads") && argc == 6) {
        int n = atoi(argv[3]);
        size_t code_size;
        uint8_t* code = read_file(argv[5], &code_size);
        pthread_t* threads = calloc((size_t)n, sizeof *threads);
        struct job* jobs = calloc((size_t)n, sizeof *jobs);
        for (int t = 0; t < n; t++) {
            jobs[t] = (struct job){code, code_size, atoi(argv[4]), t + 1, 0};
            pthread_create(&threads[t], NULL, worker, &jobs[t]);
        }
        int failures = 0;
        for (int t = 0; t < n; t++) {
            pthread_join(threads[t], NULL);
            failures += jobs[t].failures;
        }
        printf("threads=%d iterations=%s failures=%d\n", n, argv[4], failures);
        free(code);
    } else if (!strcmp(argv[2], "bench") && argc == 5) {
        int n = atoi(argv[3]);
        size_t code_size;
        uint8_t* code = read_file(argv[4], &code_size);
        struct host_ctx* h = calloc(1, sizeof *h);
        struct timespec t0, t1;
        /* Batches of 100 calls after a warm-up pass: the best batch's mean (as the
         * Python side's figures are taken) and the median batch's, since a shared
         * machine preempts a process for whole milliseconds at a time. */
        int batches = n / 100 > 0 ? n / 100 : 1;
        double* means = calloc(batches, sizeof *means);
        for (int i = 0; i < n; i++) {
            struct evmc_result r = run(h, code, code_size, NULL, 0, 100000);
            if (r.status_code != 0) { fprintf(stderr, "status %d\n", r.status_code); return 1; }
            if (r.release) r.release(&r);
        }
        for (int b = 0; b < batches; b++) {
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (int i = 0; i < 100; i++) {
                struct evmc_result r = run(h, code, code_size, NULL, 0, 100000);
                if (r.status_code != 0) { fprintf(stderr, "status %d\n", r.status_code); return 1; }
                if (r.release) r.release(&r);
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            means[b] = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / 100;
        }
        for (int i = 1; i < batches; i++)  /* insertion sort: a few dozen values */
            for (int j = i; j > 0 && means[j] < means[j - 1]; j--) {
                double t = means[j]; means[j] = means[j - 1]; means[j - 1] = t;
            }
        printf("us_per_call=%.2f median=%.2f\n", means[0], means[batches / 2]);
        free(means);
        free(h); free(code);
    } else if (!strcmp(argv[2], "misuse") && argc == 6) {
        size_t storage_size, call_size, tx_size;
        uint8_t* storage = read_file(argv[3], &storage_size);
        uint8_t* callc = read_file(argv[4], &call_size);
        uint8_t* tx = read_file(argv[5], &tx_size);
        uint8_t input[64] = {0};
        struct host_ctx* h = calloc(1, sizeof *h);
        struct evmc_message m;

        base_message(&m, NULL, 64, 100000);  /* input_data NULL, input_size 64 */
        report("null-input", run_message(h, storage, storage_size, &m));
        base_message(&m, input, (size_t)-1, 100000);  /* no buffer is that large */
        report("huge-input", run_message(h, storage, storage_size, &m));
        base_message(&m, input, 64, 100000);
        m.code = NULL; m.code_size = 5;  /* EVMC 12's msg->code */
        report("null-msg-code", run_message(h, storage, storage_size, &m));
        base_message(&m, input, 36, 300000);
        host_mode = CALL_NULL_OUTPUT;
        report("call-null-output", run_message(h, callc, call_size, &m));
        host_mode = CALL_HUGE_OUTPUT;
        report("call-huge-output", run_message(h, callc, call_size, &m));
        host_mode = TX_NULL_BLOBS;
        base_message(&m, NULL, 0, 100000);
        report("tx-null-blob-hashes", run_message(h, tx, tx_size, &m));
        host_mode = TX_NULL_INITCODES;
        report("tx-null-initcodes", run_message(h, tx, tx_size, &m));
        host_mode = HOST_OK;
        report("tx-ok", run_message(h, tx, tx_size, &m));
        base_message(&m, input, 36, 300000);
        report("call-ok", run_message(h, callc, call_size, &m));
        memset(input, 0x11, 64);
        base_message(&m, input, 64, 100000);
        report("storage-ok", run_message(h, storage, storage_size, &m));
        free(h); free(storage); free(callc); free(tx);
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[2]);
        return 2;
    }
    vm->destroy(vm);
    return 0;
}
