// hooks.cpp — the simulator's profiler and race checker (TMCA_SIM_PROFILE=1, TMCA_SIM_RACECHECK=1; docs/cuda-sim.md,
// "Catching bugs"). A kernel file compiled with `g++ -fsanitize=thread` calls __tsan_readN(addr) / __tsan_writeN(addr)
// before every load and store its code makes; this file, compiled WITHOUT the sanitizer and linked into the same
// shared library, defines those functions (no libtsan). The prelude's scheduler tells it which thread runs (a plain
// store to tmca_prof.thread at each fiber switch) and where the meeting points are (barriers, warp operations).
//
// What it measures per launch (Nsight Compute's first page, gpu-cost.md §3):
//   * a warp instruction = the k-th execution of one access site by each lane of a warp between two meeting points
//     (lanes run one after another between meeting points); its addresses give the 32-byte sectors of a global
//     request and the bank wavefronts of a shared one (conflicts = wavefronts − ideal);
//   * unique bytes read and written in device buffers (compulsory traffic);
//   * warp operations where fewer lanes meet than are alive (divergence).
// What it checks (racecheck, and more): a location written by one thread and read or written by another with no
// ordering between them — for shared memory, in one barrier interval (lanes of a warp are ordered by a warp
// operation between them, never by lockstep); for global memory, anywhere in one launch across blocks (blocks are
// unordered), or within a block in one barrier interval. Atomics are synchronised accesses and are not checked.
#include "prof.h"
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <unordered_map>
#include <vector>

extern "C" {
TmcaProfState tmca_prof;
}

namespace {

// ---- sites (return addresses of the instrumented accesses) -----------------------------------------------------------

std::unordered_map<uintptr_t, uint32_t> site_index;
std::vector<uintptr_t> sites;

uint32_t site_of(void* pc) {
    auto it = site_index.find((uintptr_t)pc);
    if (it != site_index.end()) return it->second;
    uint32_t i = (uint32_t)sites.size();
    sites.push_back((uintptr_t)pc);
    site_index.emplace((uintptr_t)pc, i);
    return i;
}

std::string describe_site(uint32_t s) {
    char b[300];
    Dl_info info{};
    uintptr_t pc = sites[s];
    if (dladdr((void*)pc, &info) && info.dli_fname) {
        snprintf(b, sizeof b, "%s+0x%lx%s%s", info.dli_fname, (unsigned long)(pc - (uintptr_t)info.dli_fbase),
                 info.dli_sname ? " in " : "", info.dli_sname ? info.dli_sname : "");
        return b;
    }
    snprintf(b, sizeof b, "0x%lx", (unsigned long)pc);
    return b;
}

// ---- device buffers and their shadow ----------------------------------------------------------------------------------

// One access as the race checker remembers it.
struct Acc {
    uint32_t thread = UINT32_MAX;   // linear thread id in its block (UINT32_MAX: none)
    uint32_t block = 0;             // linear block id
    uint32_t epoch = 0;             // the block's barrier count at the access
    uint32_t wepoch = 0;            // the thread's warp meeting count at the access
    uint32_t site = 0;
    uint8_t mask = 0;               // bytes of the 4-byte granule touched
};
// The shadow of one 4-byte granule: its last writer and up to two readers in this launch (gen).
struct Rec {
    uint32_t gen = 0;
    uint8_t read_bytes = 0, written_bytes = 0;   // bytes ever read / written this launch (unique traffic)
    Acc w, r1, r2;
};

struct Buffer {
    uintptr_t start = 0, end = 0;
    std::vector<Rec> shadow;   // lazily sized: one record per granule
};
std::vector<Buffer> buffers;   // sorted by start

Rec* shared_shadow = nullptr;  // one per granule of the block's shared arena(s)
size_t shared_granules = 0;
uintptr_t static_lo = 0, static_hi = 0, dyn_lo = 0, dyn_hi = 0;
uint32_t gen = 1;              // launch generation: a record of another generation is empty
uint32_t block_gen = 1;        // shared records are per block

// ---- per-warp pending instructions ------------------------------------------------------------------------------------

struct Instr {
    uint8_t shared = 0, store = 0, size = 0;
    uint32_t lanes = 0;
    uint64_t addr[32];
};
struct Warp {
    std::unordered_map<uint64_t, uint32_t> count;   // (lane, site) → executions since the last meeting point
    std::unordered_map<uint64_t, Instr> pending;    // (site, k, store) → the warp instruction
    uint32_t wepoch = 0;
};
std::vector<Warp> warps;
uint32_t block_epoch = 0;

TmcaProfResult result;
bool race_found = false;
std::string race_message;

inline uint32_t popc8(uint8_t m) { return (uint32_t)__builtin_popcount(m); }

Buffer* find_buffer(uintptr_t a) {
    size_t lo = 0, hi = buffers.size();
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (buffers[mid].start <= a) lo = mid + 1; else hi = mid;
    }
    if (lo == 0) return nullptr;
    Buffer* b = &buffers[lo - 1];
    return a < b->end ? b : nullptr;
}

std::string who(const Acc& a, bool shared) {
    char b[200];
    snprintf(b, sizeof b, "block %u, thread %u%s at %s", a.block, a.thread, shared ? "" : "", describe_site(a.site).c_str());
    return b;
}

// Whether an earlier access `e` is ordered before the current one of thread t (block b, epoch, warp epoch).
bool ordered(const Acc& e, uint32_t t, uint32_t b, uint32_t ep, uint32_t wep) {
    if (e.thread == UINT32_MAX) return true;
    if (e.block != b) return false;                   // blocks of one launch are unordered
    if (e.thread == t) return true;                   // program order
    if (e.epoch != ep) return true;                   // a __syncthreads between them
    if (e.thread / 32 == t / 32 && e.wepoch != wep) return true;   // a warp operation of their warp between them
    return false;
}

void report(const char* kind, bool shared, uintptr_t addr, const Acc& earlier, const char* earlier_kind, const Acc& now, const char* now_kind) {
    if (race_found) return;
    race_found = true;
    char b[200];
    if (shared) snprintf(b, sizeof b, "shared memory at offset %lu", (unsigned long)(addr - (addr >= dyn_lo && addr < dyn_hi ? dyn_lo : static_lo)));
    else {
        Buffer* buf = find_buffer(addr);
        snprintf(b, sizeof b, "global memory at 0x%lx (offset %lu of the device buffer at 0x%lx)", (unsigned long)addr,
                 (unsigned long)(addr - buf->start), (unsigned long)buf->start);
    }
    race_message = std::string("race (") + kind + ") on " + b + ": " + earlier_kind + " by " + who(earlier, shared) + ", then " + now_kind +
                   " by " + who(now, shared) + " with no barrier, warp operation or atomic between them";
}

void check(Rec& r, bool shared, uintptr_t granule, uint8_t mask, bool store, uint32_t site) {
    uint32_t g = shared ? block_gen : gen;
    if (r.gen != g) { r = Rec{}; r.gen = g; }
    uint8_t& seen = store ? r.written_bytes : r.read_bytes;
    if (!shared) (store ? result.unique_written : result.unique_read) += popc8(mask & ~seen);
    seen |= mask;
    if (!tmca_prof.racecheck) return;
    uint32_t t = tmca_prof.thread, b = tmca_prof.block, ep = block_epoch, wep = warps[t / 32].wepoch;
    Acc now{t, b, ep, wep, site, mask};
    if ((r.w.mask & mask) && !ordered(r.w, t, b, ep, wep))
        report(store ? "write after write" : "read after write", shared, granule, r.w, "written", now, store ? "written" : "read");
    if (store) {
        if ((r.r1.mask & mask) && !ordered(r.r1, t, b, ep, wep)) report("write after read", shared, granule, r.r1, "read", now, "written");
        if ((r.r2.mask & mask) && !ordered(r.r2, t, b, ep, wep)) report("write after read", shared, granule, r.r2, "read", now, "written");
        r.w = now;
    } else if (r.r1.thread == UINT32_MAX || (r.r1.thread == t && r.r1.block == b)) r.r1 = now;
    else r.r2 = now;
}

void flush_warp(Warp& w) {
    for (auto& kv : w.pending) {
        const Instr& in = kv.second;
        if (!in.shared) {
            uint64_t sec[64]; int n = 0;
            for (int l = 0; l < 32; l++) {
                if (!((in.lanes >> l) & 1u)) continue;
                uint64_t first = in.addr[l] >> 5, last = (in.addr[l] + in.size - 1) >> 5;
                for (uint64_t s = first; s <= last && n < 64; s++) sec[n++] = s;
            }
            std::sort(sec, sec + n);
            uint64_t distinct = (uint64_t)(std::unique(sec, sec + n) - sec);
            if (in.store) { result.store_requests++; result.store_sectors += distinct; }
            else { result.load_requests++; result.load_sectors += distinct; }
        } else {
            // 32 banks of 4 bytes; 8- and 16-byte accesses are served in groups of 16 / 8 lanes (common practice).
            int group = in.size >= 16 ? 8 : in.size == 8 ? 16 : 32;
            uint64_t wavefronts = 0, ideal = 0;
            for (int g0 = 0; g0 < 32; g0 += group) {
                uint64_t words[32][32]; int nw[32] = {0};
                bool any = false;
                for (int l = g0; l < g0 + group; l++) {
                    if (!((in.lanes >> l) & 1u)) continue;
                    any = true;
                    for (uint64_t a = in.addr[l] & ~3ull; a < in.addr[l] + in.size; a += 4) {
                        uint64_t word = a >> 2; int bank = (int)(word & 31);
                        bool dup = false;
                        for (int i = 0; i < nw[bank]; i++) if (words[bank][i] == word) { dup = true; break; }
                        if (!dup && nw[bank] < 32) words[bank][nw[bank]++] = word;
                    }
                }
                if (!any) continue;
                int worst = 1;
                for (int k = 0; k < 32; k++) worst = std::max(worst, nw[k]);
                wavefronts += (uint64_t)worst;
                ideal += 1;
            }
            if (in.store) { result.shared_store_requests++; } else { result.shared_load_requests++; }
            result.shared_wavefronts += wavefronts;
            result.shared_ideal_wavefronts += ideal;
        }
    }
    w.pending.clear();
    w.count.clear();
}

inline void access(void* addr, int size, bool store, void* pc) {
    uintptr_t a = (uintptr_t)addr;
    bool shared = (a >= static_lo && a < static_hi) || (a >= dyn_lo && a < dyn_hi);
    Buffer* buf = nullptr;
    if (!shared) {
        buf = find_buffer(a);
        if (!buf) return;   // locals, kernel arguments, the simulator's own state: not device memory
    }
    uint32_t t = tmca_prof.thread;
    if (t / 32 >= warps.size()) return;
    uint32_t site = site_of(pc);
    if (tmca_prof.profile) {
        Warp& w = warps[t / 32];
        uint64_t lane = t & 31;
        uint32_t k = w.count[(lane << 40) | site]++;
        Instr& in = w.pending[((uint64_t)site << 24) ^ ((uint64_t)k << 1) ^ (store ? 1 : 0)];
        in.shared = shared; in.store = store; in.size = (uint8_t)size;
        in.lanes |= 1u << lane;
        in.addr[lane] = a;
    }
    // the shadow, granule by granule
    for (uintptr_t g = a & ~(uintptr_t)3; g < a + (uintptr_t)size; g += 4) {
        uint8_t mask = 0;
        for (int i = 0; i < 4; i++) if (g + i >= a && g + i < a + (uintptr_t)size) mask |= (uint8_t)(1u << i);
        Rec* r;
        if (shared) {
            size_t idx = g >= dyn_lo && g < dyn_hi ? (g - dyn_lo) / 4 + (static_hi - static_lo) / 4 : (g - static_lo) / 4;
            if (idx >= shared_granules) continue;
            r = &shared_shadow[idx];
        } else {
            size_t idx = (g - buf->start) / 4;
            if (buf->shadow.empty()) buf->shadow.resize((buf->end - buf->start + 3) / 4);
            if (idx >= buf->shadow.size()) continue;
            r = &buf->shadow[idx];
        }
        check(*r, shared, g, mask, store, site);
    }
}

} // namespace

// ---- what the scheduler (prelude.h) calls -----------------------------------------------------------------------------

extern "C" {

void tmca_prof_launch_begin(unsigned threads_per_block) {
    gen++;
    result = TmcaProfResult{};
    race_found = false;
    race_message.clear();
    warps.assign((threads_per_block + 31) / 32, Warp{});
}

void tmca_prof_block_begin(unsigned block, char* slo, char* shi, unsigned char* dlo, unsigned char* dhi) {
    tmca_prof.block = block;
    static_lo = (uintptr_t)slo; static_hi = (uintptr_t)shi; dyn_lo = (uintptr_t)dlo; dyn_hi = (uintptr_t)dhi;
    size_t need = (static_hi - static_lo + 3) / 4 + (dyn_hi - dyn_lo + 3) / 4;
    if (need > shared_granules) { free(shared_shadow); shared_shadow = (Rec*)calloc(need, sizeof(Rec)); shared_granules = shared_shadow ? need : 0; }
    block_gen++;
    block_epoch = 0;
    for (auto& w : warps) { w.wepoch = 0; w.pending.clear(); w.count.clear(); }
}

void tmca_prof_barrier() {
    for (auto& w : warps) flush_warp(w);
    block_epoch++;
}

void tmca_prof_warp_meet(unsigned warp, unsigned participants, unsigned live) {
    if (warp >= warps.size()) return;
    flush_warp(warps[warp]);
    warps[warp].wepoch++;
    result.warp_ops++;
    if (__builtin_popcount(participants) < __builtin_popcount(live)) result.divergent_warp_ops++;
}

void tmca_prof_block_end() {
    for (auto& w : warps) flush_warp(w);
}

int tmca_prof_race(char* message, int capacity) {
    if (!race_found) return 0;
    snprintf(message, (size_t)capacity, "%s", race_message.c_str());
    return 1;
}

// ---- what the C# side calls (exported) --------------------------------------------------------------------------------

__attribute__((visibility("default"))) void tmca_prof_configure(int profile, int racecheck, const unsigned long long* ranges, int count) {
    tmca_prof.profile = profile;
    tmca_prof.racecheck = racecheck;
    std::vector<Buffer> next;
    next.reserve((size_t)count);
    for (int i = 0; i < count; i++) {
        uintptr_t s = (uintptr_t)ranges[2 * i], e = s + (uintptr_t)ranges[2 * i + 1];
        Buffer b; b.start = s; b.end = e;
        for (auto& old : buffers)
            if (old.start == s && old.end == e) { b.shadow.swap(old.shadow); break; }   // keep a live buffer's shadow
        next.push_back(std::move(b));
    }
    std::sort(next.begin(), next.end(), [](const Buffer& x, const Buffer& y) { return x.start < y.start; });
    buffers.swap(next);
}

__attribute__((visibility("default"))) void tmca_prof_result(TmcaProfResult* out) { *out = result; }

// ---- the sanitizer's entry points ---------------------------------------------------------------------------------------

void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_read1(void* a) { access(a, 1, false, __builtin_return_address(0)); }
void __tsan_read2(void* a) { access(a, 2, false, __builtin_return_address(0)); }
void __tsan_read4(void* a) { access(a, 4, false, __builtin_return_address(0)); }
void __tsan_read8(void* a) { access(a, 8, false, __builtin_return_address(0)); }
void __tsan_read16(void* a) { access(a, 16, false, __builtin_return_address(0)); }
void __tsan_write1(void* a) { access(a, 1, true, __builtin_return_address(0)); }
void __tsan_write2(void* a) { access(a, 2, true, __builtin_return_address(0)); }
void __tsan_write4(void* a) { access(a, 4, true, __builtin_return_address(0)); }
void __tsan_write8(void* a) { access(a, 8, true, __builtin_return_address(0)); }
void __tsan_write16(void* a) { access(a, 16, true, __builtin_return_address(0)); }
void __tsan_unaligned_read2(void* a) { access(a, 2, false, __builtin_return_address(0)); }
void __tsan_unaligned_read4(void* a) { access(a, 4, false, __builtin_return_address(0)); }
void __tsan_unaligned_read8(void* a) { access(a, 8, false, __builtin_return_address(0)); }
void __tsan_unaligned_read16(void* a) { access(a, 16, false, __builtin_return_address(0)); }
void __tsan_unaligned_write2(void* a) { access(a, 2, true, __builtin_return_address(0)); }
void __tsan_unaligned_write4(void* a) { access(a, 4, true, __builtin_return_address(0)); }
void __tsan_unaligned_write8(void* a) { access(a, 8, true, __builtin_return_address(0)); }
void __tsan_unaligned_write16(void* a) { access(a, 16, true, __builtin_return_address(0)); }
void __tsan_read_range(void* a, unsigned long n) { for (unsigned long i = 0; i < n; i += 4) access((char*)a + i, n - i < 4 ? (int)(n - i) : 4, false, __builtin_return_address(0)); }
void __tsan_write_range(void* a, unsigned long n) { for (unsigned long i = 0; i < n; i += 4) access((char*)a + i, n - i < 4 ? (int)(n - i) : 4, true, __builtin_return_address(0)); }
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
void __tsan_volatile_read4(void* a) { access(a, 4, false, __builtin_return_address(0)); }
void __tsan_volatile_write4(void* a) { access(a, 4, true, __builtin_return_address(0)); }

// Atomics are synchronised accesses: performed, counted as traffic by neither the race checker nor the sector counts.
#define TMCA_ATOMIC_OPS(N, T)                                                                                   \
    T __tsan_atomic##N##_load(const volatile T* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); }       \
    void __tsan_atomic##N##_store(volatile T* a, T v, int) { __atomic_store_n(a, v, __ATOMIC_SEQ_CST); }        \
    T __tsan_atomic##N##_exchange(volatile T* a, T v, int) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_add(volatile T* a, T v, int) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_sub(volatile T* a, T v, int) { return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_and(volatile T* a, T v, int) { return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_or(volatile T* a, T v, int) { return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST); }   \
    T __tsan_atomic##N##_fetch_xor(volatile T* a, T v, int) { return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST); } \
    int __tsan_atomic##N##_compare_exchange_strong(volatile T* a, T* e, T d, int, int) {                        \
        return __atomic_compare_exchange_n(a, e, d, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); }               \
    int __tsan_atomic##N##_compare_exchange_weak(volatile T* a, T* e, T d, int, int) {                          \
        return __atomic_compare_exchange_n(a, e, d, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); }                \
    T __tsan_atomic##N##_compare_exchange_val(volatile T* a, T e, T d, int, int) {                              \
        __atomic_compare_exchange_n(a, &e, d, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return e; }
TMCA_ATOMIC_OPS(8, unsigned char)
TMCA_ATOMIC_OPS(16, unsigned short)
TMCA_ATOMIC_OPS(32, unsigned int)
TMCA_ATOMIC_OPS(64, unsigned long long)
void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) {}

} // extern "C"
