namespace Tmca.Engine;

public enum UnaryOp
{
    /// <summary>y = x·Φ(x), Φ the standard normal CDF (exact erf form).</summary>
    Gelu,
    Sigmoid,
    /// <summary>y = x if x ≥ 0 else alpha·x.</summary>
    LeakyRelu,
    Exp,
    Log,
    Sqrt,
    /// <summary>y = alpha·x.</summary>
    Scale,
    /// <summary>y = x + alpha.</summary>
    AddScalar,
    /// <summary>y = max(x, alpha); gradient passes where x ≥ alpha (PyTorch's clamp_min).</summary>
    ClampMin,
    Square,
    Reciprocal,
}

public enum BinaryOp { Add, Sub, Mul, Div }

/// <summary>One parameter slot of an AdamW step: the parameter, its gradient and its two moments.</summary>
public readonly record struct AdamWSlot(Tensor Param, Tensor Grad, Tensor M, Tensor V, bool Decay);

/// <summary>AdamW hyper-parameters for one step (PyTorch semantics; the step count is 1-based).</summary>
public readonly record struct AdamWStep(double Lr, double Beta1, double Beta2, double Eps, double WeightDecay, int Step);

/// <summary>
/// The primitive kernels a backend provides. Ops (forward + backward, in <see cref="Ops"/>) are written once
/// against this contract. Conventions: tensors are contiguous row-major; every output is preallocated by the
/// caller; every backward primitive ACCUMULATES into its gradient outputs (g += …), which is how the tape's
/// gradient accumulation works without temporaries; optional gradient outputs may be null (not needed).
/// </summary>
public interface IBackend
{
    string Name { get; }
    DeviceKind Device { get; }

    // ---- memory -------------------------------------------------------------------------------------
    /// <summary>A zero-filled buffer of <paramref name="count"/> elements.</summary>
    Storage Allocate(DType dtype, long count);
    /// <summary>A buffer whose contents are undefined: for outputs the kernel overwrites entirely. (With
    /// TMCA_POISON=1 the CPU backend fills it with NaN, so a kernel that misses an element fails loudly.)</summary>
    Storage AllocateUninitialized(DType dtype, long count);
    /// <summary>Copies a host array (of dst's element type) into dst.</summary>
    void Upload(Array host, Tensor dst);
    Array Download(Tensor src);
    void Download(Tensor src, Array host);
    void Copy(Tensor src, Tensor dst);
    void Fill(Tensor dst, double value);
    /// <summary>Element type conversion between float types (same element count).</summary>
    void Convert(Tensor src, Tensor dst);

    // ---- layout -------------------------------------------------------------------------------------
    /// <summary>y (+)= x permuted: y.shape[i] = x.shape[perm[i]].</summary>
    void Permute(Tensor x, int[] perm, Tensor y, bool accumulate);
    /// <summary>dst[..., dstStart+i, ...] (+)= src[..., srcStart+i, ...] for i &lt; length along <paramref name="axis"/>;
    /// other dimensions equal. Concat and its backward.</summary>
    void CopyAxisRange(Tensor src, int srcStart, Tensor dst, int dstStart, int axis, int length, bool accumulate);
    /// <summary>y (+)= x broadcast to y's shape (NumPy rules, x right-aligned).</summary>
    void BroadcastTo(Tensor x, Tensor y, bool accumulate);
    /// <summary>y (+)= x summed over the axes where y has size 1 or is missing (the adjoint of BroadcastTo).</summary>
    void SumTo(Tensor x, Tensor y, bool accumulate);

    // ---- elementwise --------------------------------------------------------------------------------
    void Unary(UnaryOp op, double alpha, Tensor x, Tensor y);
    /// <summary>gx += f'(x)·gy; y is the forward output (used where the derivative is cheaper from it).</summary>
    void UnaryBackward(UnaryOp op, double alpha, Tensor x, Tensor y, Tensor gy, Tensor gx);
    /// <summary>y (+)= a op b with broadcasting to y's shape.</summary>
    void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, bool accumulate);
    /// <summary>y += alpha·x (same shape).</summary>
    void Axpy(double alpha, Tensor x, Tensor y);
    /// <summary>Every element of an I64 tensor += <paramref name="value"/> (counters such as BatchNorm's
    /// num_batches_tracked: on the device, without a round trip through the host).</summary>
    void AddI64(Tensor t, long value);

    // ---- matrix multiply ----------------------------------------------------------------------------
    /// <summary>
    /// Batched row-major GEMM: for each batch i, C_i[m×n] = alpha·op(A_i)·op(B_i) + beta·C_i, where A_i starts at
    /// offA + i·strideA (m×k, or k×m when transA), B_i at offB + i·strideB (k×n, or n×k when transB), C_i at
    /// offC + i·strideC. A stride of 0 broadcasts that operand over the batch.
    /// </summary>
    void Gemm(bool transA, bool transB, int m, int n, int k, double alpha,
              Tensor a, long offA, long strideA, Tensor b, long offB, long strideB,
              double beta, Tensor c, long offC, long strideC, int batch);

    // ---- convolution --------------------------------------------------------------------------------
    /// <summary>x: B×C×H×W, w: O×(C/groups)×kh×kw, b: O or null → y: B×O×Ho×Wo.</summary>
    void Conv2d(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int pad, int groups);
    void Conv2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int stride, int pad, int groups);
    /// <summary>Transposed convolution with kernel = stride = k, no padding. x: B×C×H×W, w: C×O×k×k → y: B×O×kH×kW.</summary>
    void ConvTranspose2d(Tensor x, Tensor w, Tensor? b, Tensor y, int k);
    void ConvTranspose2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int k);

    // ---- normalisation ------------------------------------------------------------------------------
    /// <summary>x viewed as outer×C×inner, normalised over C (inner = 1: last axis; inner = H·W: channels-first).
    /// mean, rstd: outer×inner, saved for backward.</summary>
    void LayerNorm(Tensor x, Tensor? w, Tensor? b, Tensor y, Tensor mean, Tensor rstd, int outer, int c, int inner, double eps);
    /// <summary>gx, gw, gb (each may be null) receive the gradients: added to what they hold when
    /// <paramref name="accumulate"/>, else assigned (fresh, uninitialised gradients: no zero fill needed).</summary>
    void LayerNormBackward(Tensor x, Tensor? w, Tensor mean, Tensor rstd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int outer, int c, int inner, bool accumulate);
    /// <summary>x: B×C×H×W. Normalises with the batch's biased variance, updates running_var with the unbiased one.
    /// saveMean, saveInvStd: C.</summary>
    void BatchNormTrain(Tensor x, Tensor w, Tensor b, Tensor y, Tensor saveMean, Tensor saveInvStd,
                        Tensor? runMean, Tensor? runVar, double eps, double momentum);
    void BatchNormEval(Tensor x, Tensor w, Tensor b, Tensor y, Tensor runMean, Tensor runVar, double eps);
    void BatchNormBackward(Tensor x, Tensor w, Tensor saveMean, Tensor saveInvStd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb);

    // ---- softmax, embedding, normalise --------------------------------------------------------------
    /// <summary>Softmax over the last axis.</summary>
    void Softmax(Tensor x, Tensor y);
    void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx);
    /// <summary>ids: I64 (any shape) → y: ids.shape × D, rows of w: V×D.</summary>
    void Embedding(Tensor ids, Tensor w, Tensor y);
    void EmbeddingBackward(Tensor ids, Tensor gy, Tensor gw);
    /// <summary>y = x / max(‖x‖, eps) over the last axis; norm: one ‖x‖ per row, saved for backward.</summary>
    void L2Normalize(Tensor x, Tensor y, Tensor norm, double eps);
    /// <summary>gx += (gy − y·(y·gy)) / max(‖x‖, eps): reads y and the norms, not x (so x need not be kept).</summary>
    void L2NormalizeBackward(Tensor y, Tensor norm, Tensor gy, Tensor gx, double eps);

    // ---- losses -------------------------------------------------------------------------------------
    /// <summary>loss[0] = mean over all elements of BCE-with-logits(x, t); t may be soft.</summary>
    void BceWithLogits(Tensor x, Tensor t, Tensor loss);
    /// <summary>gx += gLoss[0]·(σ(x) − t)/N.</summary>
    void BceWithLogitsBackward(Tensor x, Tensor t, Tensor gLoss, Tensor gx);
    /// <summary>
    /// Symmetric InfoNCE over z: B×B with diagonal targets; same: B×B U8, 1 where pair (i,j), i≠j, shares a report
    /// (removed from both softmax denominators). loss[0] = ½(CE_rows + CE_cols); pRow, pCol: B×B softmaxes saved.
    /// </summary>
    void InfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol);
    void InfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz);

    // ---- TMCA, fused (spec §5, §8; CPU twins in Cpu/Tmca.cs, kernels in kernels/tmca.cu) ---------------
    /// <summary>
    /// Target-weighted contrastive logits of every level at once: gt B×1×S×S; per level v[l] B×N×d (unit pixel
    /// embeddings on the h×w grid that omega[l], B×h×w, has), u[l] B×d (unit text embeddings); tau [1] →
    /// z L×B×B, z[l,i,j] = ⟨Σ_p ω_i(p)·v[l][i,p], u[l][j]⟩/τ, ω from gt average-pooled to the grid (uniform when
    /// global or without target). Saves omega[l] and vbar[l] (B×d) for backward.
    /// </summary>
    void TargetLogits(Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, bool global,
                      IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar, Tensor z);
    /// <summary>Accumulates into gv[l], gu[l] and gtau (any may be null) from gz: L×B×B.</summary>
    void TargetLogitsBackward(IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar,
                              Tensor z, Tensor gz, IReadOnlyList<Tensor?> gv, IReadOnlyList<Tensor?> gu, Tensor? gtau);
    /// <summary>Symmetric masked InfoNCE of every level of z (L×B×B) at once: loss [L+1] = (mean over levels, level 0, …);
    /// pRow, pCol: L×B×B softmaxes saved.</summary>
    void MultiLevelInfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol);
    void MultiLevelInfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz);

    /// <summary>
    /// One level's similarity map and language-guided enhancement (spec §5, §6): v B×N×d unit pixel embeddings on f's
    /// h×w grid (N = h·w), u B×d unit text embeddings, f B×C×h×w, scalars a, b, gamma [1] →
    /// s = ⟨v, u⟩ (B×N), logits = a·s + b, att = σ(logits) (B×N), fOut = f ⊙ (1 + γ·att) (B×C×h×w).
    /// </summary>
    void SimilarityLgte(Tensor v, Tensor u, Tensor f, Tensor a, Tensor b, Tensor gamma, Tensor s, Tensor logits, Tensor att, Tensor fOut);
    /// <summary>
    /// Backward of <see cref="SimilarityLgte"/> together with the pixel-alignment loss mean BCE(logits, target)
    /// (target B×N): from gFOut (B×C×h×w) and gPix ([1]), either may be null; accumulates into gv, gu, gf, ga, gb,
    /// gGamma (any may be null).
    /// </summary>
    void SimilarityLgteBackward(Tensor v, Tensor u, Tensor f, Tensor a, Tensor gamma, Tensor s, Tensor att, Tensor? target,
                                Tensor? gFOut, Tensor? gPix, Tensor? gv, Tensor? gu, Tensor? gf, Tensor? ga, Tensor? gb, Tensor? gGamma);

    // ---- optimiser ----------------------------------------------------------------------------------
    /// <summary>One AdamW step over every slot (PyTorch semantics; decay only where slot.Decay). With a
    /// <paramref name="guard"/> (one F32 element, seeded by the caller): first adds the number of non-finite gradient
    /// elements to guard[0], then updates nothing at all unless guard[0] == 0 — a bad step is skipped where it runs.</summary>
    void AdamW(IReadOnlyList<AdamWSlot> slots, AdamWStep step, Tensor? guard = null);

    /// <summary>Waits for queued work (device backends); a no-op on the CPU.</summary>
    void Synchronize();
}
