using System.Numerics.Tensors;

namespace AttentionSharp;

// Element-wise arithmetic with NumPy/PyTorch broadcasting. The backward of a broadcast operand sums the gradient over
// the dimensions it was broadcast along.
public sealed unsafe partial class Tensor
{
    public static Tensor operator +(Tensor a, Tensor b) => Binary(BinaryOp.Add, a, b);
    public static Tensor operator -(Tensor a, Tensor b) => Binary(BinaryOp.Sub, a, b);
    public static Tensor operator *(Tensor a, Tensor b) => Binary(BinaryOp.Mul, a, b);
    public static Tensor operator /(Tensor a, Tensor b) => Binary(BinaryOp.Div, a, b);
    public static Tensor operator -(Tensor a) => a.Scale(-1f);
    public static Tensor operator +(Tensor a, float b) => a.AddScalar(b);
    public static Tensor operator +(float a, Tensor b) => b.AddScalar(a);
    public static Tensor operator -(Tensor a, float b) => a.AddScalar(-b);
    public static Tensor operator -(float a, Tensor b) => b.Scale(-1f).AddScalar(a);
    public static Tensor operator *(Tensor a, float b) => a.Scale(b);
    public static Tensor operator *(float a, Tensor b) => b.Scale(a);
    public static Tensor operator /(Tensor a, float b) => a.Scale(1f / b);

    static Tensor BinaryNoGrad(BinaryOp op, Tensor a, Tensor b)
    {
        var shape = ShapeMath.Broadcast(a.Shape, b.Shape);
        var result = Uninitialized(shape);
        Strided.Binary(op, result.Pointer, shape,
            a.Pointer, ShapeMath.BroadcastStrides(a.Shape, a.Strides, shape),
            b.Pointer, ShapeMath.BroadcastStrides(b.Shape, b.Strides, shape), accumulate: false);
        return result;
    }

    static Tensor Binary(BinaryOp op, Tensor a, Tensor b)
    {
        if (a._memory is not null || b._memory is not null)
            return op == BinaryOp.Add
                ? DeviceAdd(a, b)
                : throw new NotSupportedException($"{op} runs on the CPU only; of element-wise operations a device runs Add.");
        var result = BinaryNoGrad(op, a, b);
        return Record(result, op.ToString(), [a, b], g =>
        {
            if (a.RequiresGrad)
            {
                // ∂(a+b)/∂a = 1, ∂(a−b)/∂a = 1, ∂(a·b)/∂a = b, ∂(a/b)/∂a = 1/b
                using var ga = op switch
                {
                    BinaryOp.Mul => BinaryNoGrad(BinaryOp.Mul, g, b),
                    BinaryOp.Div => BinaryNoGrad(BinaryOp.Div, g, b),
                    _ => null,
                };
                a.AccumulateBroadcastGrad(ga ?? g);
            }
            if (b.RequiresGrad)
            {
                // ∂(a+b)/∂b = 1, ∂(a−b)/∂b = −1, ∂(a·b)/∂b = a, ∂(a/b)/∂b = −a/b² = −result/b
                Tensor? gb = null;
                switch (op)
                {
                    case BinaryOp.Sub: gb = g.Copy(); TensorPrimitives.Negate(gb.Data, gb.Data); break;
                    case BinaryOp.Mul: gb = BinaryNoGrad(BinaryOp.Mul, g, a); break;
                    case BinaryOp.Div:
                        using (var q = BinaryNoGrad(BinaryOp.Div, g, b))
                        {
                            gb = BinaryNoGrad(BinaryOp.Mul, q, result);
                            TensorPrimitives.Negate(gb.Data, gb.Data);
                        }
                        break;
                }
                b.AccumulateBroadcastGrad(gb ?? g);
                gb?.Dispose();
            }
        });
    }

    /// <summary>
    /// Adds <paramref name="g"/> (in a broadcast result's shape) into this tensor's gradient, summing over broadcast
    /// dimensions.
    /// </summary>
    internal void AccumulateBroadcastGrad(Tensor g)
    {
        if (ShapeMath.SameShape(g.Shape, Shape))
        {
            var dense = GradBufferToSet(out bool set);
            if (set) Kernels.Simd.ElementWise.Copy(dense, g.Data);
            else Kernels.Simd.ElementWise.Add(dense, dense, g.Data);
            return;
        }
        var buf = GradBuffer();
        var dstStrides = ShapeMath.BroadcastStrides(Shape, ShapeMath.ContiguousStrides(_shape), g.Shape);
        fixed (float* dst = buf) Strided.SumInto(dst, dstStrides, g.Pointer, g.ShapeArray);
    }

    /// <summary>this · s.</summary>
    public Tensor Scale(float s)
    {
        var x = Contiguous();
        var result = Uninitialized(_shape);
        TensorPrimitives.Multiply(x.Data, s, result.Data);
        return Record(result, "Scale", [x], g =>
        {
            if (!x.RequiresGrad) return;
            var buf = x.GradBuffer();
            TensorPrimitives.MultiplyAdd(g.Data, s, buf, buf);
        });
    }

    /// <summary>this + s.</summary>
    public Tensor AddScalar(float s)
    {
        var x = Contiguous();
        var result = Uninitialized(_shape);
        TensorPrimitives.Add(x.Data, s, result.Data);
        return Record(result, "AddScalar", [x], g =>
        {
            if (!x.RequiresGrad) return;
            var buf = x.GradBuffer();
            TensorPrimitives.Add(buf, g.Data, buf);
        });
    }

    /// <summary>
    /// Applies a unary function; <paramref name="derivative"/>(x, y, dy, dx) writes dy ⊙ f′(x) (it may use the saved
    /// output y) into a scratch span that is then added to the gradient.
    /// </summary>
    Tensor Unary(string name, SpanAction forward, DerivativeAction derivative)
    {
        var x = Contiguous();
        var result = Uninitialized(_shape);
        forward(x.Data, result.Data);
        return Record(result, name, [x], g =>
        {
            if (!x.RequiresGrad) return;
            using var tmp = Uninitialized(x._shape);
            derivative(x.Data, result.Data, g.Data, tmp.Data);
            var buf = x.GradBuffer();
            TensorPrimitives.Add(buf, tmp.Data, buf);
        });
    }

    delegate void SpanAction(ReadOnlySpan<float> x, Span<float> y);
    delegate void DerivativeAction(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx);

    /// <summary>eˣ; d/dx = eˣ = y.</summary>
    public Tensor Exp() => Unary("Exp", TensorPrimitives.Exp, (x, y, dy, dx) => TensorPrimitives.Multiply(dy, y, dx));

    /// <summary>ln x; d/dx = 1/x.</summary>
    public Tensor Log() => Unary("Log", TensorPrimitives.Log, (x, y, dy, dx) => TensorPrimitives.Divide(dy, x, dx));

    /// <summary>√x; d/dx = 1/(2√x) = 1/(2y).</summary>
    public Tensor Sqrt() => Unary("Sqrt", TensorPrimitives.Sqrt, (x, y, dy, dx) =>
    {
        TensorPrimitives.Divide(dy, y, dx);
        TensorPrimitives.Multiply(dx, 0.5f, dx);
    });

    /// <summary>tanh x; d/dx = 1 − y².</summary>
    public Tensor Tanh() => Unary("Tanh", TensorPrimitives.Tanh, (x, y, dy, dx) =>
    {
        TensorPrimitives.Multiply(y, y, dx);
        TensorPrimitives.Subtract(1f, dx, dx);
        TensorPrimitives.Multiply(dx, dy, dx);
    });

    /// <summary>σ(x) = 1/(1 + e⁻ˣ); d/dx = y(1 − y).</summary>
    public Tensor Sigmoid() => Unary("Sigmoid", TensorPrimitives.Sigmoid, (x, y, dy, dx) =>
    {
        TensorPrimitives.Subtract(1f, y, dx);
        TensorPrimitives.Multiply(dx, y, dx);
        TensorPrimitives.Multiply(dx, dy, dx);
    });

    /// <summary>x²; d/dx = 2x.</summary>
    public Tensor Square() => Unary("Square", (x, y) => TensorPrimitives.Multiply(x, x, y), (x, y, dy, dx) =>
    {
        TensorPrimitives.Multiply(x, dy, dx);
        TensorPrimitives.Multiply(dx, 2f, dx);
    });

    /// <summary>
    /// Adds <paramref name="other"/> (same shape) into this tensor in place; for parameters and buffers, never
    /// recorded.
    /// </summary>
    public void Add_(Tensor other, float alpha = 1f)
    {
        if (!ShapeMath.SameShape(Shape, other.Shape))
            throw new ArgumentException($"Add_ needs equal shapes; got {ShapeMath.Format(Shape)} " +
                $"and {ShapeMath.Format(other.Shape)}.", nameof(other));
        var o = other.IsContiguous ? other : other.Copy();
        TensorPrimitives.MultiplyAdd(o.Data, alpha, Data, Data);
        if (!ReferenceEquals(o, other)) o.Dispose();
    }

    /// <summary>Multiplies this tensor by <paramref name="s"/> in place; never recorded.</summary>
    public void Mul_(float s) => TensorPrimitives.Multiply(Data, s, Data);

    /// <summary>Sets every element to <paramref name="value"/> in place; never recorded.</summary>
    public void Fill_(float value) => Data.Fill(value);
}
