// prof.h — what the scheduler (prelude.h, in an instrumented kernel build) and the profiler / race checker (hooks.cpp,
// built without the sanitizer) share. Only instrumented builds (TMCA_SIM_INSTRUMENTED) include it.
#pragma once

extern "C" {

// The running thread, written by the scheduler at each fiber switch (a plain store: cheaper than a call).
struct TmcaProfState {
    unsigned thread;     // linear id in its block
    unsigned block;      // linear id in the grid
    int profile;         // count requests, sectors, banks, unique bytes
    int racecheck;       // report the first unordered conflicting pair of accesses
};
extern TmcaProfState tmca_prof;

// One launch's counts (SimProfile in SimRuntime.cs: same fields, same order).
struct TmcaProfResult {
    unsigned long long load_requests, load_sectors, store_requests, store_sectors;
    unsigned long long shared_load_requests, shared_store_requests, shared_wavefronts, shared_ideal_wavefronts;
    unsigned long long unique_read, unique_written;
    unsigned long long warp_ops, divergent_warp_ops;
};

void tmca_prof_launch_begin(unsigned threads_per_block);
void tmca_prof_block_begin(unsigned block, char* static_lo, char* static_hi, unsigned char* dyn_lo, unsigned char* dyn_hi);
void tmca_prof_barrier();                                                // a __syncthreads released its block
void tmca_prof_warp_meet(unsigned warp, unsigned participants, unsigned live);   // a warp operation completed
void tmca_prof_block_end();
int tmca_prof_race(char* message, int capacity);                        // 1 and the report when a race was found

}
