using System.Runtime.InteropServices;

namespace AttentionSharp.IO.Onnx;

/// <summary>
/// A computation graph being built for an ONNX file: nodes in topological order, initializers (weights and constants),
/// and typed graph inputs and outputs whose dimensions may be symbolic ("batch", "sequence"). <see cref="Save"/> writes the
/// ModelProto. Field numbers are those of onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
/// ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto, StringStringEntryProto).
/// </summary>
/// <remarks>
/// A protobuf message cannot exceed 2 GB, so a model whose weights approach that size keeps them outside the .onnx file:
/// each large initializer then has data_location = EXTERNAL and external_data entries {location, offset, length} that
/// point into one sidecar file beside it (ONNX's external-data format, which ONNX Runtime reads by itself when it opens
/// the .onnx). <see cref="Save"/> does this automatically above <see cref="ExternalDataThreshold"/> or when asked.
/// </remarks>
public sealed class OnnxGraph
{
    /// <summary>The default-domain operator set the exporters target; LayerNormalization entered it at 17.</summary>
    public const int Opset = 17;

    /// <summary>IR version 8 is the one that goes with opset 17.</summary>
    public const long IrVersion = 8;

    /// <summary>TensorProto.DataType values used here.</summary>
    public enum ElementType { Float = 1, Int64 = 7 }

    /// <summary>
    /// Initializers totalling more bytes than this go to external data under <see cref="OnnxExternalData.Automatic"/>: 1 GiB,
    /// well below protobuf's 2 GB limit on one message, because the graph is assembled in memory and copied while nested.
    /// </summary>
    public const long ExternalDataThreshold = 1L << 30;

    /// <summary>
    /// Initializers smaller than this stay inside the .onnx even with external data: the shape, axis and scalar constants
    /// (a few int64s), and vectors of fewer than 32 floats, which a sidecar would only scatter.
    /// </summary>
    public const int ExternalTensorMinBytes = 128;

    /// <summary>Each tensor in the sidecar file starts at a multiple of this many bytes.</summary>
    const int ExternalAlignment = 64;

    /// <summary>An initializer kept as raw little-endian bytes until the file is written, when it goes inline or external.</summary>
    sealed record InitializerData(string Name, ElementType Type, long[] Dims, byte[] Raw);

    readonly List<ProtoWriter> _nodes = [];
    readonly List<InitializerData> _initializers = [];
    readonly List<ProtoWriter> _inputs = [];
    readonly List<ProtoWriter> _outputs = [];
    readonly HashSet<string> _names = [];
    int _counter;

    public OnnxGraph(string name) => Name = name;

    public string Name { get; }

    /// <summary>Number of nodes added so far.</summary>
    public int NodeCount => _nodes.Count;

    /// <summary>A fresh value name starting with <paramref name="hint"/>.</summary>
    public string Fresh(string hint) => $"{hint}_{_counter++}";

    /// <summary>Adds a float initializer (row-major <paramref name="values"/> of shape <paramref name="dims"/>) and returns its name.</summary>
    public string Initializer(string name, ReadOnlySpan<float> values, params long[] dims)
    {
        CheckCount(name, values.Length, dims);
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw_data is little-endian; this machine is not.");
        AddInitializer(name, ElementType.Float, bytes, dims);
        return name;
    }

    /// <summary>Adds an int64 initializer and returns its name.</summary>
    public string Initializer(string name, ReadOnlySpan<long> values, params long[] dims)
    {
        CheckCount(name, values.Length, dims);
        AddInitializer(name, ElementType.Int64, MemoryMarshal.AsBytes(values).ToArray(), dims);
        return name;
    }

    /// <summary>A one-dimensional int64 constant (shapes, axes, split sizes).</summary>
    public string Int64s(string hint, params long[] values) => Initializer(Fresh(hint), values, values.Length);

    /// <summary>A float scalar constant (rank 0).</summary>
    public string Scalar(string hint, float value) => Initializer(Fresh(hint), [value]);

    void AddInitializer(string name, ElementType type, byte[] raw, long[] dims)
    {
        Claim(name);
        _initializers.Add(new InitializerData(name, type, dims, raw));
    }

    /// <summary>The bytes of all initializers together (what decides <see cref="OnnxExternalData.Automatic"/>).</summary>
    public long InitializerBytes => _initializers.Sum(i => (long)i.Raw.Length);

    /// <summary>The sidecar file that <see cref="Save"/> writes for <paramref name="path"/> when the weights go to external data.</summary>
    public static string ExternalDataPath(string path) => Path.GetFullPath(path) + ".data";

    /// <summary>Whether <see cref="Save"/> with <paramref name="mode"/> writes external data for this graph.</summary>
    public bool UsesExternalData(OnnxExternalData mode) => mode switch
    {
        OnnxExternalData.Always => true,
        OnnxExternalData.Never => false,
        _ => InitializerBytes > ExternalDataThreshold,
    };

    /// <summary>
    /// TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9, external_data = 13 (StringStringEntryProto: key = 1,
    /// value = 2), data_location = 14 (EXTERNAL = 1). <paramref name="external"/> is (file name, offset) or null for inline data.
    /// </summary>
    static ProtoWriter TensorProto(InitializerData i, (string Location, long Offset)? external)
    {
        var t = new ProtoWriter();
        if (i.Dims.Length > 0) t.PackedInt64(1, i.Dims);
        t.Int32(2, (int)i.Type).String(8, i.Name);
        if (external is not { } e) return t.Bytes(9, i.Raw);
        foreach (var (key, value) in new[] { ("location", e.Location), ("offset", e.Offset.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                                             ("length", i.Raw.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)) })
            t.Message(13, new ProtoWriter().String(1, key).String(2, value));
        return t.Int32(14, 1);
    }

    /// <summary>Declares a graph input; dimensions are ints (fixed) or strings (symbolic).</summary>
    public void Input(string name, ElementType type, params object[] dims)
    {
        Claim(name);
        _inputs.Add(ValueInfo(name, type, dims));
    }

    /// <summary>Declares a graph output; dimensions are ints (fixed) or strings (symbolic).</summary>
    public void Output(string name, ElementType type, params object[] dims) => _outputs.Add(ValueInfo(name, type, dims));

    /// <summary>Adds a node of the default domain and returns the name of its (first) output.</summary>
    public string Node(string opType, string[] inputs, params (string Name, object Value)[] attributes) =>
        NodeMulti(opType, inputs, 1, attributes)[0];

    /// <summary>Adds a node with <paramref name="outputCount"/> outputs and returns their names.</summary>
    public string[] NodeMulti(string opType, string[] inputs, int outputCount, params (string Name, object Value)[] attributes)
    {
        var outputs = new string[outputCount];
        for (int i = 0; i < outputCount; i++) outputs[i] = Fresh(opType.ToLowerInvariant());
        NodeNamed(opType, inputs, outputs, attributes);
        return outputs;
    }

    /// <summary>Adds a node whose outputs have the given names (e.g. the graph's output).</summary>
    public void NodeNamed(string opType, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
        var n = new ProtoWriter();
        foreach (var i in inputs) n.String(1, i);
        foreach (var o in outputs) { Claim(o); n.String(2, o); }
        n.String(3, $"{opType}_{_nodes.Count}").String(4, opType);
        foreach (var (name, value) in attributes) n.Message(5, Attribute(name, value));
        _nodes.Add(n);
    }

    /// <summary>
    /// Writes the ModelProto to <paramref name="path"/>, each file through a temporary name, then renamed. With external
    /// data (<see cref="UsesExternalData"/>), initializers of at least <see cref="ExternalTensorMinBytes"/> go to the sidecar
    /// <see cref="ExternalDataPath"/>, written first, and the .onnx refers to it by file name; the two must stay side by side.
    /// Returns the sidecar's path, or null when everything is inside the .onnx.
    /// </summary>
    public string? Save(string path, string producerVersion, string docString, OnnxExternalData externalData = OnnxExternalData.Automatic)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string? sidecar = null;
        var locations = new Dictionary<string, (string, long)>(StringComparer.Ordinal);
        if (UsesExternalData(externalData))
        {
            sidecar = ExternalDataPath(full);
            var sidecarTemp = sidecar + $".tmp-{Environment.ProcessId}";
            using (var stream = new FileStream(sidecarTemp, FileMode.Create, FileAccess.Write))
                foreach (var i in _initializers.Where(i => i.Raw.Length >= ExternalTensorMinBytes))
                {
                    long padding = (ExternalAlignment - stream.Position % ExternalAlignment) % ExternalAlignment;
                    for (long k = 0; k < padding; k++) stream.WriteByte(0);
                    locations[i.Name] = (Path.GetFileName(sidecar), stream.Position);
                    stream.Write(i.Raw);
                }
            File.Move(sidecarTemp, sidecar, overwrite: true);
        }
        else if (InitializerBytes >= int.MaxValue)
            throw new InvalidOperationException($"The weights take {InitializerBytes:N0} bytes, beyond the 2 GB an ONNX file can hold inside itself; " +
                                                "save them as external data (OnnxExternalData.Automatic or Always).");
        var temp = full + $".tmp-{Environment.ProcessId}";
        File.WriteAllBytes(temp, Serialize(producerVersion, docString, locations));
        File.Move(temp, full, overwrite: true);
        return sidecar;
    }

    /// <summary>The serialised ModelProto with every initializer inline (for a graph under 2 GB).</summary>
    public byte[] ToArray(string producerVersion, string docString) => Serialize(producerVersion, docString, new Dictionary<string, (string, long)>());

    byte[] Serialize(string producerVersion, string docString, Dictionary<string, (string Location, long Offset)> external)
    {
        // GraphProto: node = 1, name = 2, initializer = 5, doc_string = 10, input = 11, output = 12.
        var g = new ProtoWriter();
        foreach (var n in _nodes) g.Message(1, n);
        g.String(2, Name);
        foreach (var i in _initializers) g.Message(5, TensorProto(i, external.TryGetValue(i.Name, out var e) ? e : null));
        foreach (var i in _inputs) g.Message(11, i);
        foreach (var o in _outputs) g.Message(12, o);
        // ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6, graph = 7, opset_import = 8;
        // OperatorSetIdProto: domain = 1, version = 2.
        var model = new ProtoWriter()
            .Int64(1, IrVersion).String(2, "AttentionSharp").String(3, producerVersion).String(6, docString)
            .Message(7, g)
            .Message(8, new ProtoWriter().String(1, "").Int64(2, Opset));
        return model.ToArray();
    }

    static ProtoWriter ValueInfo(string name, ElementType type, object[] dims)
    {
        // TensorShapeProto.Dimension: dim_value = 1, dim_param = 2; TensorShapeProto: dim = 1.
        var shape = new ProtoWriter();
        foreach (var d in dims)
        {
            var dim = d switch
            {
                int v => new ProtoWriter().Int64(1, v),
                long v => new ProtoWriter().Int64(1, v),
                string s => new ProtoWriter().String(2, s),
                _ => throw new ArgumentException($"A dimension must be an int or a symbol name; got {d?.GetType().Name ?? "null"}."),
            };
            shape.Message(1, dim);
        }
        // TypeProto.Tensor: elem_type = 1, shape = 2; TypeProto: tensor_type = 1; ValueInfoProto: name = 1, type = 2.
        var tensor = new ProtoWriter().Int32(1, (int)type).Message(2, shape);
        return new ProtoWriter().String(1, name).Message(2, new ProtoWriter().Message(1, tensor));
    }

    static ProtoWriter Attribute(string name, object value)
    {
        // AttributeProto: name = 1, f = 2, i = 3, floats = 7, ints = 8, type = 20 (FLOAT = 1, INT = 2, FLOATS = 6, INTS = 7).
        var a = new ProtoWriter().String(1, name);
        switch (value)
        {
            case float f: a.Float(2, f).Int32(20, 1); break;
            case int i: a.Int64(3, i).Int32(20, 2); break;
            case long l: a.Int64(3, l).Int32(20, 2); break;
            case long[] ints: a.PackedInt64(8, ints).Int32(20, 7); break;
            default: throw new ArgumentException($"Attribute '{name}': unsupported value type {value.GetType().Name}.");
        }
        return a;
    }

    void Claim(string name)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"The ONNX graph already has a value named '{name}'.");
    }

    static void CheckCount(string name, int count, long[] dims)
    {
        long expected = 1;
        foreach (var d in dims) expected *= d;
        if (expected != count) throw new ArgumentException($"Initializer '{name}': shape [{string.Join(", ", dims)}] holds {expected} values; got {count}.");
    }
}

/// <summary>Where an ONNX file keeps its weights.</summary>
public enum OnnxExternalData
{
    /// <summary>Inside the .onnx unless the initializers total more than <see cref="OnnxGraph.ExternalDataThreshold"/>.</summary>
    Automatic,

    /// <summary>The large initializers in a sidecar file, whatever the model's size.</summary>
    Always,

    /// <summary>Everything inside the .onnx (fails beyond protobuf's 2 GB).</summary>
    Never,
}
