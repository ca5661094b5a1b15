namespace AttentionSharp.Tests.Tensors;

/// <summary>
/// The storage pool is process-wide: a test running on another thread could take the block this one returned between
/// its Dispose and its next rent, so these tests run alone, after the parallel ones.
/// </summary>
[CollectionDefinition(nameof(StoragePoolTests), DisableParallelization = true)]
public sealed class StoragePoolCollection;

[Collection(nameof(StoragePoolTests))]
public class StoragePoolTests
{
    [Fact]
    public void DisposedTensorSaysSoAndStorageIsReused()
    {
        var t = Tensor.Zeros(1000);
        unsafe
        {
            var p = (nint)t.Pointer;
            t.Dispose();
            Assert.Throws<ObjectDisposedException>(() => { _ = t.Data.Length; });
            var u = Tensor.Zeros(1000);
            Assert.Equal(p, (nint)u.Pointer);
        }
    }
}
