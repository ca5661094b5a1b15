namespace AttentionSharp.Autograd;

/// <summary>
/// The reverse sweep: a topological order of the graph below the root, then each node's rule from the root down
/// (micrograd's algorithm, over coarse operations). Intermediate gradients are released as soon as their node has run,
/// and the graph is freed afterwards, as PyTorch does without retain_graph.
/// </summary>
internal static class Engine
{
    public static void Backward(Tensor root, Tensor? gradient, Action<Tensor>? gradientReady = null)
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
        var ready = gradientReady is null ? null : LeavesDoneAt(order);
        if (root.Device.IsCpu) Seed(root, gradient);
        else Tensor.SeedDeviceGradient(root, gradient);
        Sweep(order, ready, gradientReady);
    }

    /// <summary>
    /// For each position of <paramref name="order"/>, the leaves that need a gradient and receive their last part of it
    /// from that node: the sweep runs the order backwards, so a leaf is done after the lowest position that reads it.
    /// </summary>
    static List<Tensor>?[] LeavesDoneAt(List<Tensor> order)
    {
        var last = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int i = order.Count - 1; i >= 0; i--)
            foreach (var input in order[i].GradFn!.Inputs)
                if (input.GradFn is null && input.RequiresGrad) last[input] = i;
        var done = new List<Tensor>?[order.Count];
        foreach (var (leaf, i) in last) (done[i] ??= []).Add(leaf);
        return done;
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

    static void Sweep(List<Tensor> order, List<Tensor>?[]? ready, Action<Tensor>? gradientReady)
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
                if (ready?[i] is { } leaves)
                    foreach (var leaf in leaves) gradientReady!(leaf);
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
