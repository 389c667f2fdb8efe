using System.Text.Json;
using Tmca.Data.Images;

namespace Tmca.Data.Synthetic;

/// <summary>Sizes and seed of a synthetic dataset.</summary>
public sealed record SyntheticOptions(int Size = 128, int Train = 1200, int Val = 200, int Test = 300, int Seed = 7);

/// <summary>
/// Chest-X-ray-like images whose segmentation needs the report. Each image shows two lungs (the patient's right
/// lung on the image's left: radiological convention), ribs, a spine and soft opacities ("lesions") placed in
/// lung zones (upper, middle, lower thirds). Some lesions are the targets: the report describes them in the
/// QaTa-COV19 template ("bilateral pulmonary infection, two infected areas, upper left lung and lower right lung.")
/// and the mask contains exactly them. The others are decoys: they look the same, sit in zones the report does
/// not mention, and are not in the mask. An image-only model cannot tell them apart; a report-guided one can.
/// Written in the per-id layout (images/, masks/, reports/, split.json).
/// </summary>
public static class SyntheticCxr
{
    public const int Version = 1;
    private static readonly string[] Zones = ["upper", "middle", "lower"];
    private static readonly string[] Counts = ["zero", "one", "two", "three", "four", "five", "six"];

    /// <summary>~/.cache/tmca/synthetic-v1-… (or $TMCA_CACHE/…), one folder per option set.</summary>
    public static string DefaultDir(SyntheticOptions o) =>
        Path.Combine(Tmca.Engine.CacheDirectory.Root, $"synthetic-v{Version}-{o.Size}px-{o.Train}-{o.Val}-{o.Test}-seed{o.Seed}");

    /// <summary>The cached dataset folder, generated first if it is not there yet.</summary>
    public static string EnsureCached(SyntheticOptions o, Action<string>? log = null)
    {
        var dir = DefaultDir(o);
        if (File.Exists(Path.Combine(dir, "split.json"))) return dir;
        log?.Invoke($"generating the synthetic dataset ({o.Train}/{o.Val}/{o.Test} images at {o.Size} px) into {dir}");
        Generate(o, dir);
        return dir;
    }

    /// <summary>Writes the dataset; the folder appears complete or not at all (built beside it, then renamed).</summary>
    public static void Generate(SyntheticOptions o, string outDir)
    {
        if (o.Size < 32) throw new ArgumentException("synthetic images need at least 32 px");
        outDir = Path.GetFullPath(outDir);
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new IOException($"{outDir}: folder exists and is not empty");
        var tmp = outDir.TrimEnd('/') + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            foreach (var sub in new[] { "images", "masks", "reports" }) Directory.CreateDirectory(Path.Combine(tmp, sub));
            var split = new Dictionary<string, List<string>> { ["train"] = new(), ["val"] = new(), ["test"] = new() };
            int total = o.Train + o.Val + o.Test;
            // One generator per image, seeded from (seed, index): images are independent of how many are made.
            Parallel.For(0, total, i =>
            {
                var rng = new Xoshiro((ulong)o.Seed * 1_000_003UL + (ulong)i);
                var (image, mask, report) = Sample(rng, o.Size);
                string id = $"synth_{i:D5}";
                var pixels = new byte[image.Length];
                for (int p = 0; p < image.Length; p++) pixels[p] = (byte)Math.Clamp((int)Math.Round(image[p] * 255), 0, 255);
                ImageIO.SaveGreyPng(Path.Combine(tmp, "images", id + ".png"), pixels, o.Size, o.Size);
                ImageIO.SaveGreyPng(Path.Combine(tmp, "masks", id + ".png"), mask.Select(m => (byte)(m * 255)).ToArray(), o.Size, o.Size);
                File.WriteAllText(Path.Combine(tmp, "reports", id + ".txt"), report + "\n");
            });
            for (int i = 0; i < total; i++)
                split[i < o.Train ? "train" : i < o.Train + o.Val ? "val" : "test"].Add($"synth_{i:D5}");
            File.WriteAllText(Path.Combine(tmp, "split.json"), JsonSerializer.Serialize(split, new JsonSerializerOptions { WriteIndented = true }));
            File.WriteAllText(Path.Combine(tmp, "README.txt"),
                $"Synthetic chest-X-ray-like dataset v{Version} (tmca synth): {o.Train} train, {o.Val} val, {o.Test} test images at {o.Size} px, seed {o.Seed}.\n" +
                "Targets are the lesions the report describes; decoy lesions elsewhere are in neither the report nor the mask.\n" +
                "Radiological convention: the patient's left lung is on the image's right.\n");
            Directory.CreateDirectory(Path.GetDirectoryName(outDir)!);
            if (Directory.Exists(outDir)) Directory.Delete(outDir);
            Directory.Move(tmp, outDir);
        }
        catch
        {
            try { Directory.Delete(tmp, true); } catch { /* keep the original error */ }
            throw;
        }
    }

    /// <summary>One image (values in [0, 1]), its mask and its report.</summary>
    public static (float[] Image, byte[] Mask, string Report) Sample(Xoshiro rng, int S)
    {
        // Geometry in units of the image side. Lung 0 is on the image's left (the patient's right lung).
        double cy = 0.52 + rng.Uniform(-0.02, 0.02), ry = 0.29 + rng.Uniform(-0.02, 0.02), rx = 0.15 + rng.Uniform(-0.015, 0.015);
        double[] cx = [0.30 + rng.Uniform(-0.02, 0.02), 0.70 + rng.Uniform(-0.02, 0.02)];

        // Choose target cells (lung, zone) and decoy cells among the rest.
        var cells = Enumerable.Range(0, 6).ToList();
        rng.Shuffle(cells);
        double u = rng.NextDouble();
        int nTarget = u < 0.4 ? 1 : u < 0.75 ? 2 : 3;
        int nDecoy = rng.NextDouble() < 0.6 ? 1 : 2;
        var targets = cells.Take(nTarget).ToList();
        var decoys = cells.Skip(nTarget).Take(nDecoy).ToList();

        var lesions = new List<(double X, double Y, double A, double B, double Theta, double Gain, bool Target)>();
        foreach (var (cell, isTarget) in targets.Select(c => (c, true)).Concat(decoys.Select(c => (c, false))))
        {
            int lung = cell / 3, zone = cell % 3;
            double zoneTop = cy - ry + zone * (2 * ry / 3), zoneH = 2 * ry / 3;
            double y = zoneTop + zoneH * rng.Uniform(0.3, 0.7);
            double half = rx * Math.Sqrt(Math.Max(0.05, 1 - Math.Pow((y - cy) / ry, 2)));
            double x = cx[lung] + rng.Uniform(-0.45, 0.45) * half;
            lesions.Add((x, y, rng.Uniform(0.045, 0.07), rng.Uniform(0.04, 0.065), rng.Uniform(0, Math.PI), rng.Uniform(0.22, 0.32), isTarget));
        }

        var img = new float[S * S];
        var mask = new byte[S * S];
        // a few soft blobs of "anatomy noise" shared by the whole image
        var blobs = Enumerable.Range(0, 12).Select(_ => (X: rng.NextDouble(), Y: rng.NextDouble(), R: rng.Uniform(0.03, 0.1), G: rng.Uniform(-0.05, 0.05))).ToArray();
        double ribPhase = rng.Uniform(0, 1), ribFreq = rng.Uniform(6.5, 7.5);
        for (int py = 0; py < S; py++)
            for (int px = 0; px < S; px++)
            {
                double x = (px + 0.5) / S, y = (py + 0.5) / S;
                double torso = Sigmoid((0.46 - Math.Abs(x - 0.5)) / 0.02);
                double v = 0.08 + torso * (0.42 + 0.12 * y);
                v += 0.22 * Math.Exp(-Math.Pow((x - 0.5) / 0.03, 2)) * torso;                                   // spine
                double lung = 0;
                for (int l = 0; l < 2; l++)
                {
                    double d = Math.Sqrt(Math.Pow((x - cx[l]) / rx, 2) + Math.Pow((y - cy) / ry, 2));
                    lung = Math.Max(lung, Sigmoid((1 - d) / 0.04));
                }
                v -= 0.28 * lung;                                                                             // air-filled lungs are dark
                v += 0.07 * torso * Math.Pow(Math.Max(0, Math.Sin(2 * Math.PI * (y * ribFreq + ribPhase + 0.6 * Math.Abs(x - 0.5)))), 6);   // ribs
                foreach (var b in blobs) v += b.G * Math.Exp(-(Math.Pow(x - b.X, 2) + Math.Pow(y - b.Y, 2)) / (b.R * b.R));
                bool target = false;
                foreach (var les in lesions)
                {
                    double dx = x - les.X, dy = y - les.Y, c = Math.Cos(les.Theta), s = Math.Sin(les.Theta);
                    double q = Math.Pow((dx * c + dy * s) / les.A, 2) + Math.Pow((-dx * s + dy * c) / les.B, 2);
                    if (q < 2.5) v += les.Gain * Math.Exp(-1.2 * q * q);                                        // soft opacity
                    if (q <= 1 && les.Target) target = true;
                }
                v += 0.025 * rng.Normal();
                img[py * S + px] = (float)Math.Clamp(v, 0, 1);
                mask[py * S + px] = target ? (byte)1 : (byte)0;
            }
        return (img, mask, Report(targets));
    }

    /// <summary>The QaTa-COV19 template: laterality, count, then zones of the (patient's) left and right lungs.</summary>
    internal static string Report(List<int> targetCells)
    {
        // cell = lung·3 + zone; lung 0 is the image's left = the patient's right lung.
        string Side(int lung)
        {
            var zones = targetCells.Where(c => c / 3 == lung).Select(c => c % 3).Order().ToList();
            if (zones.Count == 0) return "";
            string z = zones.Count == 3 ? "all" : string.Join(" ", zones.Select(i => Zones[i]));
            return $"{z} {(lung == 1 ? "left" : "right")} lung";
        }
        var parts = new[] { Side(1), Side(0) }.Where(p => p.Length > 0).ToList();
        string lat = parts.Count == 2 ? "bilateral" : "unilateral";
        int n = targetCells.Count;
        return $"{lat} pulmonary infection, {Counts[n]} infected area{(n == 1 ? "" : "s")}, {string.Join(" and ", parts)}.";
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
}
