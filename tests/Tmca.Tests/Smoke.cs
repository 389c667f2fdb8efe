using Xunit;
namespace Tmca.Tests;
public class Smoke { [Fact] public void One() => Assert.Equal(2, 1 + 1); }
