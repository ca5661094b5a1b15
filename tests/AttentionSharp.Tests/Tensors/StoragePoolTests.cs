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

    [Fact]
    public void EachLengthGetsTheLeastClassThatHoldsItAndAClassSizeMapsToItself()
    {
        var lengths = Enumerable.Range(0, 5000).Concat(Enumerable.Range((1 << 22) - 2000, 4000))
            .Concat([6_291_456, 18_874_368, 25_165_824, 1 << 30])
            .Concat(Enumerable.Range(0, 2000).Select(i => (int)((ulong)i * 2_654_435_761UL % (1UL << 30)) + 1));
        int previousIndex = 0, previousLength = 0;
        foreach (int length in lengths.Order())
        {
            var (index, size) = StoragePool.ClassOf(length);
            Assert.True(size >= length, $"length {length}: class size {size}");
            // Powers of two up to 2^22 floats, then at most an eighth over (a class step is 2^k / 8 < length / 8).
            Assert.True(length <= 16 ? size == 16 : length <= 1 << 22 ? size < 2 * length : 8L * (size - length) < length,
                $"length {length}: class size {size}");
            Assert.Equal(0, size % 16);                                // whole 64-byte lines
            Assert.Equal((index, size), StoragePool.ClassOf(size));
            if (length > previousLength)
                Assert.True(index >= previousIndex, $"length {length}: class {index} after {previousIndex}");
            if (index == previousIndex && length > previousLength)
                Assert.Equal(StoragePool.ClassOf(previousLength).Size, size);
            (previousIndex, previousLength) = (index, length);
        }
        // char-small's activations, (B·T, C), (B·T, 3C) and (B·T, 4C) with B·T = 16,384 and C = 384, fit their classes
        // exactly.
        foreach (int length in new[] { 6_291_456, 18_874_368, 25_165_824 })
            Assert.Equal(length, StoragePool.ClassOf(length).Size);
    }

    [Fact]
    public void AReturnedLargeBlockServesTensorsOfItsClassAndUpToAnOctaveBelow()
    {
        // 12,000,000 floats: the class (11,534,336, 12,582,912]; 11,600,000 shares it, 12,800,000 is in the next class,
        // and 8,000,000 (an octave below) takes it only when its own class has no block. Small tensors keep to their class.
        StoragePool.Clear(); // no blocks cached by earlier tests
        unsafe
        {
            var t = Tensor.Zeros(12_000_000);
            var p = (nint)t.Pointer;
            t.Dispose();
            var larger = Tensor.Zeros(12_800_000);
            Assert.NotEqual(p, (nint)larger.Pointer);
            var same = Tensor.Zeros(11_600_000);
            Assert.Equal(p, (nint)same.Pointer);
            Assert.True(same.Data.IndexOfAnyExcept(0f) < 0, "Zeros gave a block with a non-zero float.");
            same.Dispose();
            long held = MemoryMeter.CurrentBytes;
            var below = Tensor.Zeros(8_000_000);
            Assert.Equal(p, (nint)below.Pointer);
            Assert.Equal(8_000_000, below.Count);
            // The meter counts the class asked for (8,388,608 floats), not the larger block lent.
            Assert.Equal(held + 8_388_608L * sizeof(float), MemoryMeter.CurrentBytes);
            below.Dispose();
            Assert.Equal(held, MemoryMeter.CurrentBytes);
            larger.Dispose();

            var small = Tensor.Zeros(3000);
            var q = (nint)small.Pointer;
            small.Dispose();
            var smaller = Tensor.Zeros(1000);
            Assert.NotEqual(q, (nint)smaller.Pointer);
            smaller.Dispose();
            var again = Tensor.Zeros(3000);
            Assert.Equal(q, (nint)again.Pointer);
            again.Dispose();
        }
    }
}
