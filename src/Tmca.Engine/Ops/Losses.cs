namespace Tmca.Engine;

// Losses: BCE with logits (mean), soft Dice, symmetric masked InfoNCE. Each returns a one-element tensor.
public static partial class Ops
{
    /// <summary>Mean binary cross-entropy with logits; <paramref name="target"/> may be soft (in [0, 1]).</summary>
    public static Tensor BceWithLogits(Tensor logits, Tensor target)
    {
        var loss = New(logits, 1);
        Op.Run("bce_with_logits", logits.Backend, loss, Tape.Wants(logits),
            () => logits.Backend.BceWithLogits(logits, target, loss),
            () => logits.Backend.BceWithLogitsBackward(logits, target, loss.Grad!, logits.GradOrZeros()), saves: [logits, target]);
        return loss;
    }

    /// <summary>Soft Dice: mean over the batch of 1 − (2Σpy + eps)/(Σp + Σy + eps), p = σ(logits). logits, target: B×….</summary>
    public static Tensor SoftDiceLoss(Tensor logits, Tensor target, double eps = 1.0)
    {
        int B = logits.Shape[0];
        var keep = new int[logits.Rank];
        Array.Fill(keep, 1); keep[0] = B;
        var p = Sigmoid(logits);
        var inter = SumTo(Mul(p, target), keep);
        var sp = SumTo(p, keep);
        var sy = SumTo(target, keep);
        var num = AddScalar(Scale(inter, 2.0), eps);
        var den = AddScalar(Add(sp, sy), eps);
        return Mean(AddScalar(Neg(Div(num, den)), 1.0));
    }

    /// <summary>
    /// Symmetric InfoNCE over a B×B logit matrix z (image i vs text j) with the matching pairs on the diagonal.
    /// <paramref name="sameReport"/> (U8 B×B) marks off-diagonal pairs that share a report: they are not negatives
    /// and leave both softmax denominators.
    /// </summary>
    public static Tensor InfoNce(Tensor z, Tensor sameReport)
    {
        var loss = New(z, 1);
        var pRow = NewLike(z);
        var pCol = NewLike(z);
        Op.Run("infonce", z.Backend, loss, Tape.Wants(z),
            () => z.Backend.InfoNce(z, sameReport, loss, pRow, pCol),
            () => z.Backend.InfoNceBackward(pRow, pCol, loss.Grad!, z.GradOrZeros()), scratch: [pRow, pCol]);
        return loss;
    }
}
