namespace Tmca.Engine;

/// <summary>
/// Recycles the large native arrays (<see cref="HostArray{T}"/>) behind CPU tensors. A training step allocates hundreds
/// of megabytes of activations and gradients with the same shapes every step; mapping fresh pages for each means page
/// faults and zeroing on every step. Tensors disposed by the tape or a
/// <see cref="TensorScope"/> return their arrays here, keyed by (type, length); the next rental of that size takes
/// one back. Small arrays are left to the GC. TMCA_POISON=1 fills uninitialised rentals with NaN so that a kernel
/// that forgets to write an element cannot go unnoticed (the test suite runs with it on).
///
/// The cache is bounded so that it never holds more than the work needs (issue 19): live + cached bytes stay under a
/// high-water mark, the largest live peak of one unit of work (a training step, an evaluation batch) seen so far. A
/// step that repeats the last one's shapes finds every array it needs cached and allocates nothing; an array
/// returned above the mark is freed instead (its pages go back to the kernel at once). At the end of each unit of work
/// (the outermost <see cref="TensorScope"/> closing, <see cref="EndOfWork"/>) arrays of sizes the unit did not rent are
/// freed, so the process's peak RSS is the live peak plus little, not the live peak plus the previous step's leftovers.
/// </summary>
public static class CpuArrayPool
{
    private const long MinElements = 1024;

    private sealed class Bucket
    {
        public readonly Stack<HostBuffer> Arrays = new();
        public bool RentedThisUnit;
    }

    private static readonly Dictionary<(DType, long), Bucket> Free = new();
    /// <summary>Freed arrays' pages kept for assembling others (<see cref="PageRuns"/>), counted in the cached bytes.</summary>
    private static readonly List<(nint Ptr, long Bytes)> Spare = new();
    private static readonly object Lock = new();
    private static long _cachedBytes, _liveBytes, _peakLiveBytes, _unitPeakBytes, _highWater;
    private static long _freshBytes;
    /// <summary>True while the process holds more kernel mappings than <see cref="PageRuns.Mappings"/>' budget: no array is
    /// assembled from runs, and arrays made of several mappings are unmapped when they come back (fresh ones, a single
    /// mapping each, take their place), until the count is down to half the budget.</summary>
    private static bool _assemblyOff;
    private static long _lastMapCheck;
    [ThreadStatic] private static long _threadLive;

    /// <summary>Bytes of pooled arrays (≥ 1,024 elements) rented on this thread and not yet given back: the live
    /// tensors of the work this thread runs (tests of the tape's freeing read it; other threads' work does not show).</summary>
    public static long ThreadLiveBytes => _threadLive;

    /// <summary>Bytes of pooled arrays rented by every thread and not yet given back (parameters, optimiser moments,
    /// activations, gradients).</summary>
    public static long LiveBytes => Interlocked.Read(ref _liveBytes);

    /// <summary>The largest <see cref="LiveBytes"/> since the last <see cref="ResetPeak"/>.</summary>
    public static long PeakLiveBytes => Interlocked.Read(ref _peakLiveBytes);

    /// <summary>Bytes of free arrays the pool keeps for the next rental of their size.</summary>
    public static long CachedBytes { get { lock (Lock) return _cachedBytes; } }

    /// <summary>The largest live peak of a finished unit of work: the bound on live + cached bytes (0 until the first
    /// unit has ended; until then the bound is that unit's live peak so far).</summary>
    public static long HighWaterBytes { get { lock (Lock) return _highWater; } }

    public static bool Poison { get; set; } = TmcaSettings.Current.Poison;

    public static void ResetPeak() => Interlocked.Exchange(ref _peakLiveBytes, LiveBytes);

    internal static CpuStorage Rent(DType dtype, long count, bool zero)
    {
        if (count >= MinElements)
        {
            long bytes = count * dtype.SizeOf();
            HostBuffer? a = null;
            lock (Lock)
            {
                if (!Free.TryGetValue((dtype, count), out var bucket)) Free[(dtype, count)] = bucket = new Bucket();
                bucket.RentedThisUnit = true;
                if (bucket.Arrays.Count > 0)
                {
                    a = bucket.Arrays.Pop();
                    _cachedBytes -= bytes;
                }
                AddLive(bytes);
            }
            _threadLive += bytes;
            if (a is not null)
            {
                if (zero) a.ByteSpan().Clear();
                else if (Poison) FillNaN(a);
                return new CpuStorage(a, dtype) { Pooled = true };
            }
            // A miss: the array is assembled from spare page runs (freed arrays' pages, already resident), and where
            // the pool is at its mark from cached arrays of other sizes taken apart; only the rest is fresh pages.
            HostBuffer data;
            try
            {
                var runs = HostBuffer.Maps(bytes) && !_assemblyOff ? TakeRuns(bytes) : null;
                if (runs is { Count: > 0 })
                {
                    var (ptr, pieces, reused) = PageRuns.Assemble(bytes, runs);
                    data = HostBuffer.Adopt(dtype, ptr, count, bytes, pieces);
                    if (zero) data.ByteSpan()[..(int)Math.Min(reused, bytes)].Clear();   // the fresh pages beyond are zero already
                    Interlocked.Add(ref _freshBytes, Math.Max(0, bytes - reused));
                }
                else
                {
                    Interlocked.Add(ref _freshBytes, bytes);
                    data = CpuStorage.NewBuffer(dtype, count, zero, pressure: false);
                }
            }
            catch
            {
                lock (Lock) _liveBytes -= bytes;   // nothing was rented (the runs taken are consumed by Assemble either way)
                _threadLive -= bytes;
                throw;
            }
            MakeRoom();
            if (!zero && Poison) FillNaN(data);
            return new CpuStorage(data, dtype) { Pooled = true };
        }
        var fresh = CpuStorage.Allocate(dtype, count, zero);
        if (!zero && Poison) FillNaN(fresh.Data);
        return fresh;
    }

    /// <summary>A kernel's own temporary (per-thread partials, gathered operands), from the pool like a tensor's elements,
    /// so that it neither allocates a fresh mapping every call nor sits outside the pool's accounting. Give it back
    /// with <see cref="ReturnTemp"/>.</summary>
    internal static HostArray<T> RentTemp<T>(long count, bool zero) where T : unmanaged =>
        (HostArray<T>)Rent(DTypeOf<T>(), count, zero).Data;

    internal static void ReturnTemp<T>(HostArray<T>? a) where T : unmanaged
    {
        if (a is null) return;
        if (a.LongLength >= MinElements) Return(a, DTypeOf<T>());
        else a.Free();
    }

    private static DType DTypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.F32 : typeof(T) == typeof(double) ? DType.F64 : typeof(T) == typeof(long) ? DType.I64
        : typeof(T) == typeof(byte) ? DType.U8 : throw new NotSupportedException(typeof(T).Name);

    internal static void Return(HostBuffer a, DType dtype)
    {
        long bytes = a.LongLength * dtype.SizeOf();
        _threadLive -= bytes;
        lock (Lock)
        {
            _liveBytes -= bytes;
            // Above the mark the array is freed: keeping it would make the pool hold more than the work needs.
            if (_liveBytes + _cachedBytes + bytes > Bound || (_assemblyOff && a.PieceCount > 1)) { a.Free(); return; }
            if (!Free.TryGetValue((dtype, a.LongLength), out var bucket)) Free[(dtype, a.LongLength)] = bucket = new Bucket();
            bucket.Arrays.Push(a);
            _cachedBytes += bytes;
        }
    }

    /// <summary>
    /// Before a fresh allocation (a miss; already counted live): cached arrays of other sizes are freed, largest first,
    /// until the pool is back under its mark, so that the new array takes their place in memory instead of adding to it.
    /// </summary>
    private static void MakeRoom()
    {
        lock (Lock)
        {
            if (_liveBytes + _cachedBytes <= Bound) return;
            while (Spare.Count > 0 && _liveBytes + _cachedBytes > Bound) FreeSpare();
            foreach (var (key, bucket) in Free.OrderByDescending(kv => kv.Key.Item2 * kv.Key.Item1.SizeOf()))
            {
                while (bucket.Arrays.Count > 0 && _liveBytes + _cachedBytes > Bound) Drop(key, bucket, 1);
                if (_liveBytes + _cachedBytes <= Bound) break;
            }
        }
    }

    /// <summary>
    /// Page runs for a new array of <paramref name="bytes"/> (already counted live), at most its page-rounded size:
    /// spare runs first; then, where the pool is at its mark, cached arrays taken apart, largest first. The runs leave
    /// the cache's count.
    /// </summary>
    private static List<(nint, long)> TakeRuns(long bytes)
    {
        long need = PageRuns.RoundUp(bytes), got = 0;
        var runs = new List<(nint, long)>();
        lock (Lock)
        {
            while (got < need && runs.Count < PageRuns.MaxRunsPerArray)
            {
                // out of spare runs: at the mark, the largest movable cached array is taken apart into spare runs
                if (Spare.Count == 0 && !(_liveBytes + _cachedBytes > Bound && TakeApartLargest())) break;
                var (p, b) = Spare[^1];
                Spare.RemoveAt(Spare.Count - 1);
                long take = Math.Min(b, need - got);
                if (take < b) Spare.Add((p + (nint)take, b - take));   // the tail stays spare
                runs.Add((p, take)); got += take; _cachedBytes -= take;
            }
        }
        return runs;
    }

    /// <summary>Bytes of pooled arrays allocated fresh (misses), since the process started: a steady training step that
    /// repeats its shapes should add little here (diagnostics, the pool's tests).</summary>
    public static long FreshBytes => Interlocked.Read(ref _freshBytes);

    /// <summary>What live + cached may reach (under Lock): the high-water mark, or during the first unit of work, whose
    /// needs are not known yet, its live peak so far.</summary>
    private static long Bound => Math.Max(_highWater, _unitPeakBytes);

    private static void AddLive(long bytes)   // under Lock
    {
        _liveBytes += bytes;
        if (_liveBytes > _peakLiveBytes) _peakLiveBytes = _liveBytes;
        if (_liveBytes > _unitPeakBytes) _unitPeakBytes = _liveBytes;
    }

    /// <summary>
    /// The end of a unit of work (called when the outermost <see cref="TensorScope"/> closes): the high-water mark
    /// becomes the largest live peak of any unit so far, arrays of sizes this unit did not rent are dropped (a batch
    /// shape that changed, an evaluation after training), the cache is cut back under the mark, and a full collection
    /// </summary>
    public static void EndOfWork()
    {
        CheckMappings();
        lock (Lock)
        {
            _highWater = Math.Max(_highWater, _unitPeakBytes);
            foreach (var (key, bucket) in Free)
            {
                if (!bucket.RentedThisUnit) ToSpare(key, bucket, bucket.Arrays.Count);   // pages kept for other sizes
                bucket.RentedThisUnit = false;
            }
            while (Spare.Count > 0 && _liveBytes + _cachedBytes > _highWater) FreeSpare();
            if (_liveBytes + _cachedBytes > _highWater)
                foreach (var (key, bucket) in Free.OrderByDescending(kv => kv.Key.Item2))
                {
                    while (bucket.Arrays.Count > 0 && _liveBytes + _cachedBytes > _highWater) Drop(key, bucket, 1);
                    if (_liveBytes + _cachedBytes <= _highWater) break;
                }
            _unitPeakBytes = _liveBytes;
        }
    }

    /// <summary>Empties the cache and forgets the high-water mark (tests; a program between unrelated workloads).</summary>
    public static void Clear()
    {
        lock (Lock)
        {
            foreach (var (key, bucket) in Free) Drop(key, bucket, bucket.Arrays.Count);
            Free.Clear();
            while (Spare.Count > 0) FreeSpare();
            _highWater = 0;
            _unitPeakBytes = _liveBytes;
        }
    }

    /// <summary>At most once a second (reading /proc/self/maps costs about a millisecond): switches assembly off above
    /// the mapping budget, freeing the spare runs and the cached arrays made of several mappings, and on again below half.</summary>
    private static void CheckMappings(bool force = false)
    {
        if (!OperatingSystem.IsLinux()) return;
        long now = Environment.TickCount64;
        if (!force && now - Interlocked.Read(ref _lastMapCheck) < 1000) return;
        Interlocked.Exchange(ref _lastMapCheck, now);
        var (count, budget) = PageRuns.Mappings();
        budget = MappingBudgetOverride ?? budget;
        lock (Lock)
        {
            if (count > budget)
            {
                _assemblyOff = true;
                while (Spare.Count > 0) FreeSpare();
                foreach (var (key, bucket) in Free)
                {
                    var keep = bucket.Arrays.Where(a => a.PieceCount == 1).ToList();
                    long bytes = key.Item2 * key.Item1.SizeOf();
                    foreach (var a in bucket.Arrays) if (a.PieceCount > 1) { a.Free(); _cachedBytes -= bytes; }
                    bucket.Arrays.Clear();
                    for (int i = keep.Count - 1; i >= 0; i--) bucket.Arrays.Push(keep[i]);
                }
            }
            else if (count < budget / 2) _assemblyOff = false;
        }
    }

    /// <summary>Tests and diagnostics: a mapping budget to use instead of half of vm.max_map_count (null: that).</summary>
    public static int? MappingBudgetOverride { get; set; }

    /// <summary>Whether a miss is assembled from page runs now (checks the process's mappings against the budget first).</summary>
    public static bool AssemblesFromPageRuns() { CheckMappings(force: true); lock (Lock) return !_assemblyOff && OperatingSystem.IsLinux(); }

    private static void FreeSpare()   // under Lock
    {
        var (p, b) = Spare[^1];
        Spare.RemoveAt(Spare.Count - 1);
        PageRuns.Unmap(p, b);
        _cachedBytes -= b;
    }

    /// <summary>Takes the largest cached array whose pages can move apart into spare runs; false when there is none.</summary>
    private static bool TakeApartLargest()   // under Lock
    {
        var largest = Free.Where(kv => kv.Value.Arrays.Count > 0 && kv.Value.Arrays.Peek().Movable)
                          .OrderByDescending(kv => kv.Key.Item2 * kv.Key.Item1.SizeOf()).FirstOrDefault();
        if (largest.Value is null) return false;
        ToSpare(largest.Key, largest.Value, 1);
        return true;
    }

    /// <summary>Takes <paramref name="n"/> cached arrays of a bucket apart into spare runs (pages kept; others freed).</summary>
    private static void ToSpare((DType, long) key, Bucket bucket, int n)   // under Lock
    {
        long bytes = key.Item2 * key.Item1.SizeOf();
        for (int i = 0; i < n; i++)
        {
            var a = bucket.Arrays.Pop();
            _cachedBytes -= bytes;
            if (!a.Movable) { a.Free(); continue; }
            foreach (var run in a.Detach()) { Spare.Add(run); _cachedBytes += run.Bytes; }
        }
    }

    private static void Drop((DType, long) key, Bucket bucket, int n)   // under Lock
    {
        long bytes = key.Item2 * key.Item1.SizeOf();
        for (int i = 0; i < n; i++) { bucket.Arrays.Pop().Free(); _cachedBytes -= bytes; }
    }

    private static void FillNaN(HostBuffer a)
    {
        switch (a)
        {
            case HostArray<float> f: f.AsSpan().Fill(float.NaN); break;
            case HostArray<double> d: d.AsSpan().Fill(double.NaN); break;
            case HostArray<long> l: l.AsSpan().Fill(long.MinValue); break;
            case HostArray<byte> b: b.AsSpan().Fill(0xCD); break;
        }
    }
}
