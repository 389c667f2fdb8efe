// prelude.h — the CUDA built-ins for running kernels/*.cu on the CPU (the CUDA simulator, docs/cuda-sim.md).
//
// `g++ -include prelude.h kernel.cu` turns a kernel file into a shared library whose exported
// `launch_<kernel>(TmcaSimLaunch*, void** args)` runs one launch synchronously on the calling OS thread:
//   * the grid's blocks one after another (deterministic; __shared__ is plain static storage, exact for that
//     schedule: the C# side runs one simulated launch at a time in a process, so nothing here is thread_local);
//   * a block's threads as fibers (own 64 KiB stacks with a guard page) switched only at synchronisation
//     points: __syncthreads is a block barrier, warp operations meet the warp's 32 lanes only;
//   * forward (0..n-1) or reverse thread order (TMCA_SIM_FLAG_REVERSE) to expose missing barriers;
//   * a deadlock, a barrier reached from different places, or warp lanes meeting at different operations
//     is reported with the kernel, block and thread ids — never a hang;
//   * a segmentation fault inside a kernel becomes an "illegal address" error naming the kernel, block,
//     thread and address (the C# side says which buffer it missed; with memcheck, buffers end at a guard page).
// The kernels' own source is unchanged: common.cuh funnels the few built-ins they use.
#pragma once
#include <atomic>
#include <cmath>
#include <csetjmp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "the CUDA simulator's fiber switch is written for x86-64"
#endif

#define TMCA_SIM 1
// ---- instrumented builds (TMCA_SIM_PROFILE / TMCA_SIM_RACECHECK: -fsanitize=thread + hooks.cpp) ----
// The kernels' loads and stores call hooks.cpp; the scheduler below must not (its own state is not device memory,
// and a hook inside a fiber switch would see a half-switched thread), so every function of it is marked.
#ifdef TMCA_SIM_INSTRUMENTED
#include "prof.h"
#define TMCA_SIM_FN __attribute__((no_sanitize_thread))
#define TMCA_PROF(...) __VA_ARGS__
#else
#define TMCA_SIM_FN
#define TMCA_PROF(...)
#endif
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
// Every __shared__ array lands in one section, which the scheduler fills with NaN at each block start: a block
// never sees another block's (or an earlier launch's) values, just as a GPU promises nothing about them.
#define __shared__ static __attribute__((section("tmca_shared"), aligned(16)))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef dim3 uint3;

// The launch record shared with C# (SimLaunch in SimRuntime.cs): same field order and sizes.
struct TmcaSimLaunch {
    unsigned grid[3];
    unsigned block[3];
    unsigned shared_bytes;
    int flags;                       // TMCA_SIM_FLAG_*
    char* message;                   // out: the error or warnings, NUL-terminated
    int message_capacity;
    int pad;
    unsigned long long fault_address; // out: the address of an illegal access
};
enum { TMCA_SIM_FLAG_REVERSE = 1 };
enum { TMCA_SIM_OK = 0, TMCA_SIM_ERROR = 1, TMCA_SIM_ILLEGAL_ADDRESS = 2, TMCA_SIM_WARNING = 3 };

extern "C" void tmca_sim_switch(void** save_sp, void* load_sp);
// Saves the callee-saved registers on the current stack, stores its pointer in *save_sp, switches to load_sp
// and restores the registers saved there. A new fiber's stack is prepared to "return" into fiber_entry.
asm(".text\n"
    ".globl tmca_sim_switch\n"
    ".hidden tmca_sim_switch\n"
    ".type tmca_sim_switch,@function\n"
    "tmca_sim_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size tmca_sim_switch, .-tmca_sim_switch\n");

// The linker's bounds of the tmca_shared section (weak: a file without __shared__ arrays has no such section).
extern "C" char __start_tmca_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_tmca_shared[] __attribute__((weak, visibility("hidden")));

namespace tmca_sim {

enum State : int { READY, RUNNING, AT_BARRIER, AT_WARP, DONE };
enum WarpOp : int { SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR, SYNCWARP, BALLOT, ANY, ALL };
static const char* const WarpOpName[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                                         "__syncwarp", "__ballot_sync", "__any_sync", "__all_sync"};

constexpr size_t STACK_BYTES = 64 * 1024;
constexpr unsigned MAX_THREADS = 1024;

struct Fiber {
    void* sp;
    char* map;          // guard page + stack
    State state;
    dim3 tid;
    unsigned linear;
    const char* site_file; int site_line;         // where it waits at a barrier
    int op; unsigned mask; int width; int param;  // the warp operation it waits at
    uint64_t value, result;
};

constexpr unsigned MAX_WARPS = MAX_THREADS / 32;

struct Scheduler {
    Fiber* fibers = nullptr;
    unsigned capacity = 0, nthreads = 0;
    void* main_sp = nullptr;
    Fiber* cur = nullptr;
    bool in_fiber = false, in_launch = false, failed = false, warned_exit = false, warned_source = false;
    dim3 block_dim, grid_dim, block_idx;
    void (*body)(void*) = nullptr;
    void* ctx = nullptr;
    unsigned char* dyn = nullptr;
    size_t dyn_capacity = 0, dyn_bytes = 0;
    const char* kernel = "";
    std::string error, warnings;
    sigjmp_buf fault_jump;
    void* fault_address = nullptr;
    unsigned live[MAX_WARPS];      // lanes of each warp that have not exited
    unsigned waiting[MAX_WARPS];   // lanes of each warp parked at a warp operation
};
static Scheduler S;   // one launch at a time (SimRuntime holds a lock): plain static, no TLS lookups

TMCA_SIM_FN inline std::string where(const Fiber* f) {
    char b[160];
    snprintf(b, sizeof b, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", S.kernel, S.block_idx.x, S.block_idx.y, S.block_idx.z,
             f->tid.x, f->tid.y, f->tid.z);
    return b;
}

// ---- fibers -------------------------------------------------------------------------------------------

TMCA_SIM_FN static void fiber_entry() {
    S.body(S.ctx);
    S.cur->state = DONE;
    S.live[S.cur->linear >> 5]--;
    tmca_sim_switch(&S.cur->sp, S.main_sp);
    __builtin_trap();   // a finished fiber is never resumed
}

TMCA_SIM_FN inline void prepare(Fiber* f) {
    uintptr_t top = ((uintptr_t)(f->map + getpagesize() + STACK_BYTES)) & ~(uintptr_t)15;
    void** sp = (void**)(top - 64);
    for (int i = 0; i < 6; i++) sp[i] = nullptr;   // r15 r14 r13 r12 rbx rbp
    sp[6] = (void*)&fiber_entry;                   // `ret` lands here with rsp ≡ 8 (mod 16), as after a call
    sp[7] = nullptr;
    f->sp = sp;
}

TMCA_SIM_FN inline bool ensure_fibers(unsigned n) {
    if (n <= S.capacity) return true;
    auto* fs = (Fiber*)calloc(n, sizeof(Fiber));
    if (!fs) return false;
    if (S.fibers) memcpy(fs, S.fibers, S.capacity * sizeof(Fiber));
    size_t page = getpagesize();
    for (unsigned i = S.capacity; i < n; i++) {
        void* m = mmap(nullptr, page + STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return false;
        mprotect(m, page, PROT_NONE);   // overflowing a fiber's stack faults instead of corrupting its neighbour
        fs[i].map = (char*)m;
    }
    free(S.fibers);
    S.fibers = fs;
    S.capacity = n;
    return true;
}

TMCA_SIM_FN inline void park(State st) {
    Fiber* f = S.cur;
    f->state = st;
    asm volatile("" ::: "memory");
    tmca_sim_switch(&f->sp, S.main_sp);
    asm volatile("" ::: "memory");
}

// Records an error found inside a fiber and goes back to the scheduler for good.
[[noreturn]] TMCA_SIM_FN inline void fail(const std::string& message) {
    if (!S.failed) { S.failed = true; S.error = message; }
    S.live[S.cur->linear >> 5]--;
    park(DONE);
    __builtin_trap();
}

TMCA_SIM_FN inline void warn_once(bool& flag, const std::string& message) {
    if (flag) return;
    flag = true;
    S.warnings += message + "\n";
}

// ---- synchronisation ----------------------------------------------------------------------------------

TMCA_SIM_FN inline void syncthreads(const char* file, int line) {
    Fiber* f = S.cur;
    f->site_file = file;
    f->site_line = line;
    park(AT_BARRIER);
}

TMCA_SIM_FN inline uint64_t lane_value(const Fiber* p, int src_lane, unsigned base) {
    unsigned idx = base + (unsigned)src_lane;
    if (idx < S.nthreads) {
        const Fiber* s = &S.fibers[idx];
        if (s->state == AT_WARP || s == S.cur) {
            if ((p->mask >> src_lane) & 1u) return s->value;
        }
    }
    warn_once(S.warned_source, "lane " + std::to_string(p->linear & 31) + " read lane " + std::to_string(src_lane) +
              " which is not in the operation's mask or has exited (undefined on a GPU; its own value was used): " + where(p));
    return p->value;
}

// Whether the warp operation that lane `f` waits at (or has just arrived at) can complete: every other lane of
// f's mask that exists and has not exited is parked at it. If so, computes every participant's result and wakes
// them. Returns 1 (completed), 0 (not yet) or -1 (lanes meet at different operations: *error says how).
TMCA_SIM_FN inline int try_complete_warp(Fiber* f, std::string* error) {
    unsigned base = f->linear & ~31u;
    for (unsigned l = 0; l < 32; l++) {
        unsigned idx = base + l;
        if (idx >= S.nthreads || !((f->mask >> l) & 1u)) continue;
        Fiber* p = &S.fibers[idx];
        if (p == f || p->state == DONE) continue;
        if (p->state != AT_WARP) return 0;
        if (p->op != f->op || p->mask != f->mask) {
            char b[16];
            snprintf(b, sizeof b, "%08x", f->mask);
            *error = std::string("warp lanes meet at different operations: ") + WarpOpName[f->op] + " (mask 0x" + b + ") at " +
                     where(f) + ", " + WarpOpName[p->op] + " at thread " + std::to_string(p->linear);
            return -1;
        }
    }
    uint64_t ballot = 0; bool any = false, all = true;
    for (unsigned l = 0; l < 32; l++) {
        unsigned idx = base + l;
        if (idx >= S.nthreads || !((f->mask >> l) & 1u) || S.fibers[idx].state == DONE) continue;
        if (S.fibers[idx].value != 0) { ballot |= 1ull << l; any = true; } else all = false;
    }
    for (unsigned l = 0; l < 32; l++) {
        unsigned idx = base + l;
        if (idx >= S.nthreads || !((f->mask >> l) & 1u)) continue;
        Fiber* p = &S.fibers[idx];
        if (p->state == DONE) continue;
        int w = p->width, lane = (int)l;
        int sub = lane & ~(w - 1), pos = lane & (w - 1);
        switch (p->op) {
            case SHFL_IDX: p->result = lane_value(p, sub + ((p->param % w) + w) % w, base); break;
            case SHFL_UP: p->result = pos - p->param < 0 ? p->value : lane_value(p, lane - p->param, base); break;
            case SHFL_DOWN: p->result = pos + p->param >= w ? p->value : lane_value(p, lane + p->param, base); break;
            case SHFL_XOR: { int src = lane ^ p->param; p->result = src >= sub + w ? p->value : lane_value(p, src, base); break; }
            case BALLOT: p->result = ballot; break;
            case ANY: p->result = any; break;
            case ALL: p->result = all; break;
            default: p->result = 0; break;
        }
    }
    for (unsigned l = 0; l < 32; l++) {
        unsigned idx = base + l;
        if (idx < S.nthreads && ((f->mask >> l) & 1u) && S.fibers[idx].state == AT_WARP) {
            S.fibers[idx].state = READY;
            S.waiting[base >> 5]--;
        }
    }
#ifdef TMCA_SIM_INSTRUMENTED
    unsigned participants = 0, alive = 0;
    for (unsigned l = 0; l < 32; l++) {
        unsigned idx = base + l;
        if (idx >= S.nthreads || S.fibers[idx].state == DONE) continue;
        alive |= 1u << l;
        if ((f->mask >> l) & 1u) participants |= 1u << l;
    }
    tmca_prof_warp_meet(base >> 5, participants, alive);
#endif
    return 1;
}

TMCA_SIM_FN inline uint64_t warp_meet(int op, unsigned mask, uint64_t value, int param, int width) {
    Fiber* f = S.cur;
    unsigned w = f->linear >> 5;
    if (!((mask >> (f->linear & 31)) & 1u))
        fail(std::string(WarpOpName[op]) + " called by a lane that is not in its own mask: " + where(f));
    if (width <= 0 || width > 32 || (width & (width - 1)))
        fail(std::string(WarpOpName[op]) + ": width " + std::to_string(width) + " is not a power of two up to 32: " + where(f));
    f->op = op; f->mask = mask; f->value = value; f->param = param; f->width = width;
    // The common case, a full mask with lanes still to come: park without scanning the warp.
    if (mask == 0xffffffffu && S.waiting[w] + 1 < S.live[w]) {
        S.waiting[w]++;
        park(AT_WARP);
        return f->result;
    }
    std::string error;
    int r = try_complete_warp(f, &error);
    if (r < 0) fail(error);
    if (r == 0) { S.waiting[w]++; park(AT_WARP); }
    return f->result;
}

template <class T> TMCA_SIM_FN inline uint64_t to_bits(T v) { static_assert(sizeof(T) <= 8); uint64_t b = 0; memcpy(&b, &v, sizeof(T)); return b; }
template <class T> TMCA_SIM_FN inline T from_bits(uint64_t b) { T v; memcpy(&v, &b, sizeof(T)); return v; }

// ---- the scheduler ------------------------------------------------------------------------------------

TMCA_SIM_FN inline std::string list(const char* what, const std::string& ids) { return ids.empty() ? "" : std::string("; ") + what + ": " + ids; }

TMCA_SIM_FN inline int run_block(int flags) {
    unsigned n = S.nthreads;
    bool reverse = flags & TMCA_SIM_FLAG_REVERSE;
    for (unsigned i = 0; i < n; i++) {
        Fiber* f = &S.fibers[i];
        f->state = READY;
        f->linear = i;
        f->tid = dim3(i % S.block_dim.x, i / S.block_dim.x % S.block_dim.y, i / (S.block_dim.x * S.block_dim.y));
        prepare(f);
    }
    for (unsigned w = 0; w < (n + 31) / 32; w++) { S.live[w] = n - w * 32 < 32 ? n - w * 32 : 32; S.waiting[w] = 0; }
    if (S.dyn_bytes) memset(S.dyn, 0xff, S.dyn_bytes);   // NaN-filled, like memory nobody wrote
    if (__start_tmca_shared && __stop_tmca_shared > __start_tmca_shared)
        memset(__start_tmca_shared, 0xff, (size_t)(__stop_tmca_shared - __start_tmca_shared));
    TMCA_PROF(tmca_prof_block_begin(S.block_idx.x + S.grid_dim.x * (S.block_idx.y + S.grid_dim.y * S.block_idx.z),
                                    __start_tmca_shared, __stop_tmca_shared, S.dyn, S.dyn + S.dyn_bytes);)
    for (;;) {
        bool ran = false;
        for (unsigned k = 0; k < n; k++) {
            Fiber* f = &S.fibers[reverse ? n - 1 - k : k];
            if (f->state != READY) continue;
            S.cur = f;
            TMCA_PROF(tmca_prof.thread = f->linear;)
            f->state = RUNNING;
            S.in_fiber = true;
            tmca_sim_switch(&S.main_sp, f->sp);
            S.in_fiber = false;
            if (S.failed) return TMCA_SIM_ERROR;
            ran = true;
        }
        if (ran) continue;
        unsigned done = 0, barrier = 0, warp = 0;
        Fiber* first = nullptr;
        bool same_site = true;
        for (unsigned i = 0; i < n; i++) {
            Fiber* f = &S.fibers[i];
            if (f->state == DONE) done++;
            else if (f->state == AT_WARP) warp++;
            else if (f->state == AT_BARRIER) {
                barrier++;
                if (!first) first = f;
                else if (f->site_line != first->site_line || strcmp(f->site_file, first->site_file) != 0) same_site = false;
            }
        }
        if (done == n) { TMCA_PROF(tmca_prof_block_end();) return TMCA_SIM_OK; }
        if (warp > 0) {
            // A lane that exited may have been the last one a warp operation waited for.
            bool woke = false;
            for (unsigned i = 0; i < n && !woke; i++) {
                Fiber* f = &S.fibers[i];
                if (f->state != AT_WARP) continue;
                std::string error;
                int r = try_complete_warp(f, &error);
                if (r < 0) { S.failed = true; S.error = error; return TMCA_SIM_ERROR; }
                woke = r > 0;
            }
            if (woke) continue;
        }
        if (warp == 0 && same_site) {
            if (done > 0)
                warn_once(S.warned_exit, std::to_string(done) + " thread(s) exited while " + std::to_string(barrier) +
                          " wait at __syncthreads (" + first->site_file + ":" + std::to_string(first->site_line) +
                          "); a GPU counts exited threads as arrived, but this is undefined behaviour: " + where(first));
            TMCA_PROF(tmca_prof_barrier();)
            for (unsigned i = 0; i < n; i++) if (S.fibers[i].state == AT_BARRIER) S.fibers[i].state = READY;
            continue;
        }
        // Nothing can run and the barrier cannot complete: say who waits where.
        std::string sites, warps, exited;
        for (unsigned i = 0; i < n; i++) {
            Fiber* f = &S.fibers[i];
            if (f->state == AT_BARRIER) sites += (sites.empty() ? "" : ", ") + std::to_string(i) + "@" + f->site_file + ":" + std::to_string(f->site_line);
            else if (f->state == AT_WARP) warps += (warps.empty() ? "" : ", ") + std::to_string(i) + "@" + WarpOpName[f->op];
            else if (f->state == DONE) exited += (exited.empty() ? "" : ", ") + std::to_string(i);
        }
        if (sites.size() > 600) sites = sites.substr(0, 600) + "…";
        if (warps.size() > 600) warps = warps.substr(0, 600) + "…";
        if (exited.size() > 300) exited = exited.substr(0, 300) + "…";
        char head[200];
        snprintf(head, sizeof head, "%s in kernel %s, block (%u,%u,%u)",
                 warp == 0 ? "divergent __syncthreads (threads wait at different barriers)" : "deadlock", S.kernel,
                 S.block_idx.x, S.block_idx.y, S.block_idx.z);
        S.failed = true;
        S.error = std::string(head) + list("waiting at __syncthreads (thread@line)", sites) + list("waiting at warp operations", warps) +
                  list("exited", exited);
        return TMCA_SIM_ERROR;
    }
}

static struct sigaction previous_segv, previous_bus;

TMCA_SIM_FN static void on_fault(int sig, siginfo_t* info, void* uc) {
    if (S.in_launch) {
        S.fault_address = info->si_addr;
        siglongjmp(S.fault_jump, 1);
    }
    struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;   // not ours: the runtime's handler
    if (prev.sa_flags & SA_SIGINFO) { if (prev.sa_sigaction) prev.sa_sigaction(sig, info, uc); }
    else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) prev.sa_handler(sig);
    else { signal(sig, SIG_DFL); raise(sig); }
}

TMCA_SIM_FN inline void put_message(TmcaSimLaunch* L, const std::string& m) {
    if (!L->message || L->message_capacity <= 0) return;
    size_t n = m.size() < (size_t)L->message_capacity - 1 ? m.size() : (size_t)L->message_capacity - 1;
    memcpy(L->message, m.data(), n);
    L->message[n] = 0;
}

TMCA_SIM_FN inline int run_grid(TmcaSimLaunch* L, const char* kernel, void (*body)(void*), void* ctx) {
    S.kernel = kernel; S.body = body; S.ctx = ctx;
    S.failed = false; S.error.clear(); S.warnings.clear(); S.warned_exit = S.warned_source = false;
    S.block_dim = dim3(L->block[0], L->block[1], L->block[2]);
    S.grid_dim = dim3(L->grid[0], L->grid[1], L->grid[2]);
    S.nthreads = L->block[0] * L->block[1] * L->block[2];
    L->fault_address = 0;
    if (S.nthreads == 0 || S.nthreads > MAX_THREADS) {
        put_message(L, std::string("kernel ") + kernel + ": " + std::to_string(S.nthreads) + " threads per block (1 to 1024 allowed)");
        return TMCA_SIM_ERROR;
    }
    if (!ensure_fibers(S.nthreads)) { put_message(L, "out of host memory for fiber stacks"); return TMCA_SIM_ERROR; }
    S.dyn_bytes = L->shared_bytes;
    if (S.dyn_bytes > S.dyn_capacity) {
        free(S.dyn);
        S.dyn = (unsigned char*)aligned_alloc(64, (S.dyn_bytes + 63) / 64 * 64);
        S.dyn_capacity = S.dyn ? S.dyn_bytes : 0;
        if (!S.dyn) { put_message(L, "out of host memory for dynamic shared memory"); return TMCA_SIM_ERROR; }
    }

    // An alternate signal stack, so that a fiber's stack overflow can still be reported.
    static char* alt = nullptr;
    stack_t old_alt{}, new_alt{};
    sigaltstack(nullptr, &old_alt);
    bool own_alt = old_alt.ss_flags & SS_DISABLE;
    if (own_alt) {
        if (!alt) alt = (char*)malloc(1 << 16);
        new_alt.ss_sp = alt; new_alt.ss_size = 1 << 16; new_alt.ss_flags = 0;
        sigaltstack(&new_alt, nullptr);
    }
    struct sigaction sa{};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);

    int rc = TMCA_SIM_OK;
    S.in_launch = true;
    TMCA_PROF(tmca_prof_launch_begin(S.nthreads);)
    if (sigsetjmp(S.fault_jump, 1) == 0) {
        for (unsigned z = 0; z < S.grid_dim.z && rc == TMCA_SIM_OK; z++)
            for (unsigned y = 0; y < S.grid_dim.y && rc == TMCA_SIM_OK; y++)
                for (unsigned x = 0; x < S.grid_dim.x && rc == TMCA_SIM_OK; x++) {
                    S.block_idx = dim3(x, y, z);
                    rc = run_block(L->flags);
#ifdef TMCA_SIM_INSTRUMENTED
                    char race[2048];
                    if (rc == TMCA_SIM_OK && tmca_prof_race(race, sizeof race)) { S.failed = true; S.error = std::string(race) + " (kernel " + kernel + ")"; rc = TMCA_SIM_ERROR; }
#endif
                }
    } else {
        // A fault: inside a thread (the usual case) or in the scheduler itself.
        rc = TMCA_SIM_ILLEGAL_ADDRESS;
        L->fault_address = (unsigned long long)(uintptr_t)S.fault_address;
        char b[64];
        snprintf(b, sizeof b, "%p", S.fault_address);
        std::string what = "illegal address " + std::string(b);
        if (S.in_fiber && S.cur) {
            char* guard = S.cur->map;
            bool overflow = (char*)S.fault_address >= guard && (char*)S.fault_address < guard + getpagesize();
            S.error = (overflow ? "stack overflow of a thread (" + std::to_string(STACK_BYTES / 1024) + " KiB) at " : what + " in ") + where(S.cur);
        } else
            S.error = what + " in the simulator's scheduler, kernel " + kernel;
        S.in_fiber = false;
    }
    S.in_launch = false;
    sigaction(SIGSEGV, &previous_segv, nullptr);
    sigaction(SIGBUS, &previous_bus, nullptr);
    if (own_alt) { stack_t off{}; off.ss_flags = SS_DISABLE; sigaltstack(&off, nullptr); }

    if (rc != TMCA_SIM_OK) { put_message(L, S.error); return rc; }
    if (!S.warnings.empty()) { put_message(L, S.warnings); return TMCA_SIM_WARNING; }
    return TMCA_SIM_OK;
}

// One launch of kernel k: every thread calls k with the arguments read from args[i] (cuLaunchKernel's layout:
// args[i] points at the i-th parameter's value).
template <typename... P> struct Call {
    void (*k)(P...);
    void** args;
    template <size_t... I> TMCA_SIM_FN void run(std::index_sequence<I...>) { k(*reinterpret_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(args[I])...); }
    TMCA_SIM_FN static void thunk(void* self) { static_cast<Call*>(self)->run(std::index_sequence_for<P...>{}); }
};

template <typename... P>
TMCA_SIM_FN inline int launch(TmcaSimLaunch* L, const char* name, void (*k)(P...), void** args) {
    Call<P...> c{k, args};
    return run_grid(L, name, &Call<P...>::thunk, &c);
}

TMCA_SIM_FN inline unsigned char* dynamic_shared() { return S.dyn; }

} // namespace tmca_sim

#define TMCA_SIM_EXPORT(name) \
    extern "C" __attribute__((visibility("default"))) int launch_##name(TmcaSimLaunch* L, void** args) { \
        return tmca_sim::launch(L, #name, &name, args); }

extern "C" __attribute__((visibility("default"))) int tmca_sim_abi() { return 1; }

// ---- the built-ins the kernels see --------------------------------------------------------------------

#define threadIdx (tmca_sim::S.cur->tid)
#define blockIdx (tmca_sim::S.block_idx)
#define blockDim (tmca_sim::S.block_dim)
#define gridDim (tmca_sim::S.grid_dim)
#define warpSize 32
#define __syncthreads() tmca_sim::syncthreads(__FILE__, __LINE__)

inline void __syncwarp(unsigned mask = 0xffffffffu) { tmca_sim::warp_meet(tmca_sim::SYNCWARP, mask, 0, 0, 32); }
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return tmca_sim::from_bits<T>(tmca_sim::warp_meet(tmca_sim::SHFL_IDX, mask, tmca_sim::to_bits(v), src, width)); }
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return tmca_sim::from_bits<T>(tmca_sim::warp_meet(tmca_sim::SHFL_UP, mask, tmca_sim::to_bits(v), (int)delta, width)); }
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return tmca_sim::from_bits<T>(tmca_sim::warp_meet(tmca_sim::SHFL_DOWN, mask, tmca_sim::to_bits(v), (int)delta, width)); }
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return tmca_sim::from_bits<T>(tmca_sim::warp_meet(tmca_sim::SHFL_XOR, mask, tmca_sim::to_bits(v), lane_mask, width)); }
inline unsigned __ballot_sync(unsigned mask, int pred) { return (unsigned)tmca_sim::warp_meet(tmca_sim::BALLOT, mask, pred != 0, 0, 32); }
inline int __any_sync(unsigned mask, int pred) { return (int)tmca_sim::warp_meet(tmca_sim::ANY, mask, pred != 0, 0, 32); }
inline int __all_sync(unsigned mask, int pred) { return (int)tmca_sim::warp_meet(tmca_sim::ALL, mask, pred != 0, 0, 32); }

// Atomics: blocks run one at a time, but launches from several host threads may share a buffer.
inline float atomicAdd(float* a, float v) { return std::atomic_ref<float>(*a).fetch_add(v); }
inline double atomicAdd(double* a, double v) { return std::atomic_ref<double>(*a).fetch_add(v); }
inline int atomicAdd(int* a, int v) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
inline int atomicMax(int* a, int v) { int o = __atomic_load_n(a, __ATOMIC_SEQ_CST); while (o < v && !__atomic_compare_exchange_n(a, &o, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return o; }
inline int atomicMin(int* a, int v) { int o = __atomic_load_n(a, __ATOMIC_SEQ_CST); while (o > v && !__atomic_compare_exchange_n(a, &o, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return o; }
inline int atomicExch(int* a, int v) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
inline float atomicExch(float* a, float v) { return std::atomic_ref<float>(*a).exchange(v); }
inline int atomicCAS(int* a, int expected, int desired) { __atomic_compare_exchange_n(a, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return expected; }
inline unsigned atomicCAS(unsigned* a, unsigned expected, unsigned desired) { __atomic_compare_exchange_n(a, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return expected; }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long e, unsigned long long d) { __atomic_compare_exchange_n(a, &e, d, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return e; }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// Math: glibc stands in for the GPU's intrinsics (results differ in the last bits: parity uses tolerances).
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T> inline T __ldg(const T* p) { return *p; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

// ==== tensor cores (common.cuh's TF32_ROUND and MMA_TF32_M16N8K8) ==========================================
// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 emulated exactly as the PTX ISA lays out its fragments
// (g = lane >> 2, t = lane % 4): A a0 (g,t) a1 (g+8,t) a2 (g,t+4) a3 (g+8,t+4); B b0 (t,g) b1 (t+4,g);
// C/D d0 (g,2t) d1 (g,2t+1) d2 (g+8,2t) d3 (g+8,2t+1). Every lane posts its fragments, the warp meets, each lane
// computes its four outputs from the others' fragments, and the warp meets again before anyone may post the next
// operation's fragments. The products of TF32 values are exact in float; they are summed in k order.
namespace tmca_sim {
struct MmaFragments { unsigned a[4], b[2]; };
static MmaFragments mma_posted[MAX_WARPS][32];

// cvt.rna.tf32.f32: keep 10 mantissa bits, round to nearest with ties away from zero; NaN stays NaN, ±Inf stays ±Inf.
inline unsigned tf32_rna(float x) {
    unsigned u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x007fffffu) ? 0x7fffffffu : u;
    return (u + 0x1000u) & 0xffffe000u;
}

inline float tf32_value(unsigned bits) { float f; memcpy(&f, &bits, 4); return f; }

inline void mma_tf32_m16n8k8(float* d, const unsigned* a, const unsigned* b) {
    Fiber* f = S.cur;
    unsigned w = f->linear >> 5, lane = f->linear & 31;
    if (S.live[w] != 32)
        fail("mma.sync.m16n8k8 needs all 32 lanes of the warp, " + std::to_string(S.live[w]) + " are there: " + where(f));
    MmaFragments& mine = mma_posted[w][lane];
    for (int i = 0; i < 4; i++) mine.a[i] = a[i];
    for (int i = 0; i < 2; i++) mine.b[i] = b[i];
    warp_meet(SYNCWARP, 0xffffffffu, 0, 0, 32);   // every lane's fragments are posted
    const MmaFragments* all = mma_posted[w];
    int g = (int)lane >> 2, t = (int)lane & 3;
    float out[4];
    for (int i = 0; i < 4; i++) {
        int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        float acc = d[i];
        for (int k = 0; k < 8; k++) {
            // A(row, k) is held by lane (row % 8)·4 + k % 4, register (row ≥ 8) + 2·(k ≥ 4); B(k, col) by lane col·4 + k % 4, register (k ≥ 4)
            float av = tf32_value(all[(row & 7) * 4 + (k & 3)].a[(row >= 8 ? 1 : 0) + (k >= 4 ? 2 : 0)]);
            float bv = tf32_value(all[col * 4 + (k & 3)].b[k >= 4 ? 1 : 0]);
            acc += av * bv;
        }
        out[i] = acc;
    }
    warp_meet(SYNCWARP, 0xffffffffu, 0, 0, 32);   // every lane has read: the next operation may post
    for (int i = 0; i < 4; i++) d[i] = out[i];
}
} // namespace tmca_sim
