using Tmca.Model.Text;
using Xunit;

namespace Tmca.Tests.Model;

/// <summary>The BERT normaliser and pre-tokeniser rules on inputs the oracle file does not cover.</summary>
public class TokenizerTests
{
    private static WordPieceTokenizer Tok() => WordPieceTokenizer.FromVocabFile(Paths.RequireShared("models/cxr-bert-specialized/vocab.txt"));

    [Fact]
    public void NormalisesAccentsCaseControlCharactersAndCjk()
    {
        Assert.Equal("cafe naive resume angstrom", WordPieceTokenizer.Normalize("Café Naïve RÉSUMÉ Ångström"));
        Assert.Equal("ab c", WordPieceTokenizer.Normalize("a\u200Bb\u0000\tc"));          // zero-width space and NUL dropped, tab → space
        Assert.Equal("x \u80BA  \u90E8 y", WordPieceTokenizer.Normalize("x\u80BA\u90E8y"));  // spaces around CJK ideographs
        Assert.Equal("istanbul", WordPieceTokenizer.Normalize("İstanbul"));                  // NFD splits off the dot, stripped before lowercasing
        Assert.Equal("σας", WordPieceTokenizer.Normalize("ΣΑΣ"));                            // final sigma
        Assert.Equal(["a", "-", "b", ",", "c", "$", "d"], WordPieceTokenizer.PreTokenize("a-b, c$d"));
    }

    [Fact]
    public void EncodesWithSpecialTokensTruncationAndPadding()
    {
        var t = Tok();
        var e = t.Encode("left lung");
        Assert.Equal(t.Cls, e.Ids[0]);
        Assert.Equal(4, e.FullLength);
        Assert.Equal(t.Sep, e.Ids[3]);
        Assert.Equal([1, 1, 1, 1, 0], e.Mask[..5]);
        Assert.All(e.Ids[4..], id => Assert.Equal(0, id));
        var longText = string.Join(" ", Enumerable.Repeat("lung", 40));
        var lt = t.Encode(longText);
        Assert.True(lt.Truncated);
        Assert.Equal(t.Sep, lt.Ids[23]);
        Assert.All(lt.Mask, m => Assert.Equal(1, m));
        // special tokens written in the text are kept whole; a word over 100 characters is [UNK]
        Assert.Equal(["[CLS]", "left", "[SEP]"], t.Tokenize("[CLS] left [SEP]"));
        Assert.Equal(["[UNK]"], t.Tokenize(new string('a', 101)));
        Assert.Equal(["[UNK]"], t.Tokenize("\u80BA"));   // a CJK character not in the vocabulary
    }

    [Fact]
    public void MissingVocabularyIsAClearError()
    {
        var e = Assert.Throws<Tmca.Engine.InputFileException>(() => WordPieceTokenizer.FromVocabFile("/nonexistent/vocab.txt"));
        Assert.Contains("/nonexistent/vocab.txt", e.Message);
    }
}

public class EmbeddedVocabTests
{
    [Fact]
    public void EmbeddedVocabularyIsTheSharedCxrBertVocabulary()
    {
        var shared = File.ReadAllBytes(Paths.RequireShared("models/cxr-bert-specialized/vocab.txt"));
        Assert.Equal(shared, WordPieceTokenizer.EmbeddedVocabBytes());
        Assert.Equal(30522, WordPieceTokenizer.CxrBert().VocabSize);
    }
}
