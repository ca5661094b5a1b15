namespace AttentionSharp.Autograd;

/// <summary>
/// The reverse sweep: a topological order of the graph below the root, then each node's rule from the root down
/// (micrograd's algorithm, over coarse operations). Intermediate gradients are released as soon as their node has run,
/// and the graph is freed afterwards, as PyTorch does without retain_graph.
/// </summary>
internal static class Engine
{
    public static void Backward(Tensor root, Tensor? gradient)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward() was called on a tensor that does not require a gradient: " +
                "no input of the computation had RequiresGrad set, or it ran under GradMode.NoGrad().");
        if (gradient is null && root.Count != 1)
            throw new InvalidOperationException("Backward() without a gradient needs a scalar; this tensor has shape " +
                $"{ShapeMath.Format(root.Shape)}. Pass the gradient of the loss with respect to it.");
        if (gradient is not null && !ShapeMath.SameShape(gradient.Shape, root.Shape))
            throw new ArgumentException($"The gradient has shape {ShapeMath.Format(gradient.Shape)}, the tensor " +
                $"{ShapeMath.Format(root.Shape)}.", nameof(gradient));

        var order = TopologicalOrder(root);
        if (root.Device.IsCpu) Seed(root, gradient);
        else Tensor.SeedDeviceGradient(root, gradient);
        Sweep(order);
    }

    static void Seed(Tensor root, Tensor? gradient)
    {
        var seed = root.GradBuffer();
        if (gradient is null) seed[0] += 1f;
        else
        {
            using var g = gradient.IsContiguous ? null : gradient.Copy();
            System.Numerics.Tensors.TensorPrimitives.Add(seed, (g ?? gradient).Data, seed);
        }
    }

    static void Sweep(List<Tensor> order)
    {
        using (GradMode.NoGrad())
        {
            for (int i = order.Count - 1; i >= 0; i--)
            {
                var t = order[i];
                var node = t.GradFn!;
                if (t.Grad is { } g)
                {
                    if (OpProfiler.Enabled)
                    {
                        long start = System.Diagnostics.Stopwatch.GetTimestamp();
                        node.BackwardRule(g);
                        OpProfiler.Add(node.Name, backward: true, System.Diagnostics.Stopwatch.GetTimestamp() - start);
                    }
                    else node.BackwardRule(g);
                }
                t.ReleaseGradBuffer();
                t.GradFn = null;
            }
        }
    }

    /// <summary>Non-leaf tensors reachable from root, each after all of its inputs (iterative DFS: graphs can be deep).</summary>
    static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        if (root.GradFn is null) return order;
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor Tensor, int NextInput)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.GradFn!.Inputs;
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var child = inputs[next];
                if (child.GradFn is not null && visited.Add(child)) stack.Push((child, 0));
            }
            else order.Add(t);
        }
        return order;
    }
}
