using System.Reflection;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Tests.Kernels;

[Trait("Category", "Kernels")]
public class KernelCompilationTests
{
    /// <summary>
    /// Every range kernel is compiled fully optimised on its first call and never inlined into the tiered lambda that
    /// calls it (see <see cref="IRangeKernel"/>): its speed must not depend on what ran before it.
    /// </summary>
    [Fact]
    public void EveryRangeKernelIsCompiledOptimisedAndNotInlined()
    {
        var kernels = typeof(IRangeKernel).Assembly.GetTypes()
            .Where(t => t.IsValueType && typeof(IRangeKernel).IsAssignableFrom(t)).ToList();
        Assert.True(kernels.Count >= 20, $"found only {kernels.Count} range kernels");
        var required = MethodImplAttributes.NoInlining | MethodImplAttributes.AggressiveOptimization;
        var missing = kernels
            .Select(t => t.GetMethod(nameof(IRangeKernel.Run), BindingFlags.Public | BindingFlags.Instance)!)
            .Where(m => (m.MethodImplementationFlags & required) != required)
            .Select(m => m.DeclaringType!.FullName)
            .ToList();
        Assert.True(missing.Count == 0, "Run without NoInlining | AggressiveOptimization: " + string.Join(", ", missing));
    }
}
