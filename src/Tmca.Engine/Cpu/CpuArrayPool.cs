namespace Tmca.Engine;

/// <summary>
/// Recycles the large arrays behind CPU tensors. A training step allocates hundreds of megabytes of
/// activations and gradients with the same shapes every step; handing them back to the garbage collector
/// means large-object-heap collections and zeroing on every step. Tensors disposed by the tape or a
/// <see cref="TensorScope"/> return their arrays here, keyed by (type, length); the next rental of that size takes
/// one back. Small arrays are left to the GC. TMCA_POISON=1 fills uninitialised rentals with NaN so that a kernel
/// that forgets to write an element cannot go unnoticed (the test suite runs with it on).
///
/// The cache is bounded so that it never holds more than the work needs (issue 19): live + cached bytes stay under a
/// high-water mark, the largest live peak of one unit of work (a training step, an evaluation batch) seen so far. A
/// step that repeats the last one's shapes finds every array it needs cached and allocates nothing; an array
/// returned above the mark goes to the GC instead. At the end of each unit of work (the outermost
/// <see cref="TensorScope"/> closing, <see cref="EndOfWork"/>) arrays of sizes the unit did not rent are dropped, and
/// when that frees a lot a full collection gives the memory back, so the process's peak RSS is the live peak plus
/// little, not the live peak plus the previous step's leftovers.
/// </summary>
public static class CpuArrayPool
{
    private const long MinElements = 1024;
    /// <summary>Cached bytes freed by a trim above which the trim runs a full collection (the dropped arrays are large
    /// objects: without one they stay in the heap until the GC's own budget runs out).</summary>
    private const long CollectAfterBytes = 64L << 20;

    private sealed class Bucket
    {
        public readonly Stack<Array> Arrays = new();
        public bool RentedThisUnit;
    }

    private static readonly Dictionary<(DType, long), Bucket> Free = new();
    private static readonly object Lock = new();
    private static long _cachedBytes, _liveBytes, _peakLiveBytes, _unitPeakBytes, _highWater;
    private static long _droppedSinceCollect;
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
            Array? a = null;
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
                if (zero) Array.Clear(a);
                else if (Poison) FillNaN(a);
                return new CpuStorage(a, dtype) { Pooled = true };
            }
            MakeRoom(bytes);
            var data = CpuStorage.Allocate(dtype, count).Data;
            if (!zero && Poison) FillNaN(data);
            return new CpuStorage(data, dtype) { Pooled = true };
        }
        var fresh = CpuStorage.Allocate(dtype, count);
        if (!zero && Poison) FillNaN(fresh.Data);
        return fresh;
    }

    internal static void Return(Array a, DType dtype)
    {
        long bytes = (long)a.Length * dtype.SizeOf();
        _threadLive -= bytes;
        lock (Lock)
        {
            _liveBytes -= bytes;
            // Above the mark the array goes to the GC: keeping it would make the pool hold more than the work needs.
            if (_liveBytes + _cachedBytes + bytes > Bound) { _droppedSinceCollect += bytes; return; }
            if (!Free.TryGetValue((dtype, a.Length), out var bucket)) Free[(dtype, a.Length)] = bucket = new Bucket();
            bucket.Arrays.Push(a);
            _cachedBytes += bytes;
        }
    }

    /// <summary>
    /// Before a fresh allocation of <paramref name="bytes"/> (a miss; already counted live): cached arrays of other
    /// sizes go, largest first, until the pool is back under its mark, and once the arrays let go since the last
    /// collection pass <see cref="CollectAfterBytes"/> a full collection reclaims them first — so that the new array
    /// takes their place in the heap instead of growing it. Without this a step whose shapes do not repeat exactly
    /// grows the process by the garbage the GC has not yet collected (on the tiny step, ≈1 GiB above the live peak).
    /// </summary>
    private static void MakeRoom(long bytes)
    {
        bool collect;
        lock (Lock)
        {
            if (_liveBytes + _cachedBytes > Bound)
                foreach (var (key, bucket) in Free.OrderByDescending(kv => kv.Key.Item2 * kv.Key.Item1.SizeOf()))
                {
                    while (bucket.Arrays.Count > 0 && _liveBytes + _cachedBytes > Bound) Drop(key, bucket, 1);
                    if (_liveBytes + _cachedBytes <= Bound) break;
                }
            collect = _droppedSinceCollect >= Math.Max(CollectAfterBytes, bytes);
            if (collect) _droppedSinceCollect = 0;
        }
        if (collect) Collect();
    }

    private static void Collect()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);
        Interlocked.Increment(ref _collections);
    }

    private static long _collections;
    /// <summary>Full collections the pool has asked for (diagnostics: a steady training step should need none).</summary>
    public static long Collections => Interlocked.Read(ref _collections);

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
    /// runs when that let go of more than <see cref="CollectAfterBytes"/>.
    /// </summary>
    public static void EndOfWork()
    {
        bool collect;
        lock (Lock)
        {
            _highWater = Math.Max(_highWater, _unitPeakBytes);
            foreach (var (key, bucket) in Free)
            {
                if (!bucket.RentedThisUnit) Drop(key, bucket, bucket.Arrays.Count);
                bucket.RentedThisUnit = false;
            }
            if (_liveBytes + _cachedBytes > _highWater)
                foreach (var (key, bucket) in Free.OrderByDescending(kv => kv.Key.Item2))
                {
                    while (bucket.Arrays.Count > 0 && _liveBytes + _cachedBytes > _highWater) Drop(key, bucket, 1);
                    if (_liveBytes + _cachedBytes <= _highWater) break;
                }
            _unitPeakBytes = _liveBytes;
            collect = _droppedSinceCollect > CollectAfterBytes;
            if (collect) _droppedSinceCollect = 0;
        }
        if (collect) Collect();
    }

    /// <summary>Empties the cache and forgets the high-water mark (tests; a program between unrelated workloads).</summary>
    public static void Clear()
    {
        lock (Lock)
        {
            foreach (var (key, bucket) in Free) Drop(key, bucket, bucket.Arrays.Count);
            Free.Clear();
            _highWater = 0;
            _unitPeakBytes = _liveBytes;
            _droppedSinceCollect = 0;
        }
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);
    }

    private static void Drop((DType, long) key, Bucket bucket, int n)   // under Lock
    {
        long bytes = key.Item2 * key.Item1.SizeOf();
        for (int i = 0; i < n; i++) { bucket.Arrays.Pop(); _cachedBytes -= bytes; _droppedSinceCollect += bytes; }
    }

    private static void FillNaN(Array a)
    {
        switch (a)
        {
            case float[] f: f.AsSpan().Fill(float.NaN); break;
            case double[] d: d.AsSpan().Fill(double.NaN); break;
            case long[] l: l.AsSpan().Fill(long.MinValue); break;
            case byte[] b: b.AsSpan().Fill(0xCD); break;
        }
    }
}
